"""The ``nnrange`` command line.

    nnrange bounds MODEL --lo 0 --hi 1 [--method ibp] [--json]
    nnrange info MODEL

Exit codes: 0 success, 3 usage or input error (bad file, unsupported op, bad box).
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_OK = 0
EXIT_INPUT_ERROR = 3

_EPILOG = """\
exit codes:
  0  success
  3  usage or input error (missing/corrupt file, unsupported operator, malformed box)
"""


def _numbers(values: list[str]) -> list[float] | float:
    """Parse ``--lo 0 0.5`` or ``--lo 0,0.5`` (a single number broadcasts)."""
    out: list[float] = []
    for v in values:
        for part in v.replace(",", " ").split():
            try:
                out.append(float(part))
            except ValueError:
                raise argparse.ArgumentTypeError(f"not a number: {part!r}") from None
    return out[0] if len(out) == 1 else out


def _parser() -> argparse.ArgumentParser:
    from .engines import ENGINES

    p = argparse.ArgumentParser(
        prog="nnrange",
        description="Proven outer and attained inner bounds of a neural network's outputs.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser(
        "bounds",
        help="bound every output over an input box",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("model", help="an .onnx, .keras or .h5 file")
    b.add_argument(
        "--lo",
        nargs="+",
        required=True,
        metavar="X",
        help="lower input bounds: one number for all inputs, or one per input",
    )
    b.add_argument(
        "--hi",
        nargs="+",
        required=True,
        metavar="X",
        help="upper input bounds: one number for all inputs, or one per input",
    )
    b.add_argument(
        "--method",
        default="auto",
        help=f"engine: auto, {', '.join(sorted(ENGINES))} (default: auto)",
    )
    b.add_argument(
        "--inner",
        default="fast",
        choices=["fast", "thorough", "off"],
        help="inner-bound search (samples + gradient attack) attached to the result "
        "(default: fast)",
    )
    b.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    b.add_argument("--json", action="store_true", help="print the result as JSON")

    i = sub.add_parser("info", help="show the layer graph nnrange builds from a model")
    i.add_argument("model", help="an .onnx, .keras or .h5 file")
    i.add_argument("--json", action="store_true", help="print the layer table as JSON")
    return p


def _version() -> str:
    from . import __version__

    return f"nnrange {__version__}"


def _cmd_bounds(args) -> int:
    from .api import bounds

    lo, hi = _numbers(args.lo), _numbers(args.hi)
    result = bounds(
        args.model,
        lo,
        hi,
        method=args.method,
        inner=False if args.inner == "off" else args.inner,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(f"model: {args.model}")
        print(result)
    return EXIT_OK


def _cmd_info(args) -> int:
    from .loaders import load

    graph = load(args.model)
    rows = graph.summary()
    if args.json:
        print(
            json.dumps(
                {
                    "input_shape": list(graph.input_shape),
                    "output_shape": list(graph.output_shape),
                    "nodes": rows,
                },
                indent=2,
            )
        )
        return EXIT_OK
    print(f"model: {args.model}")
    print(
        f"input shape {graph.input_shape} -> output shape {graph.output_shape}, {len(graph)} nodes"
    )
    w = max([4] + [len(r["name"]) for r in rows])
    print(f"{'name':<{w}}  {'op':<10} {'kind':<10} {'output shape':<16} {'params':>8}  attributes")
    for r in rows:
        print(
            f"{r['name']:<{w}}  {r['op']:<10} {r['kind']:<10} {str(tuple(r['shape'])):<16} "
            f"{r['params']:>8}  {r['attrs']}"
        )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    from .errors import NNRangeError

    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except argparse.ArgumentTypeError as exc:
        parser.print_usage(sys.stderr)
        print(f"nnrange: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except SystemExit as exc:  # argparse exits 2 on usage errors; we document 3
        return EXIT_INPUT_ERROR if exc.code not in (0, None) else EXIT_OK
    commands = {"bounds": _cmd_bounds, "info": _cmd_info}
    try:
        return commands[args.command](args)
    except argparse.ArgumentTypeError as exc:
        print(f"nnrange: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except NNRangeError as exc:
        print(f"nnrange: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR


if __name__ == "__main__":
    sys.exit(main())
