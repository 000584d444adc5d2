"""The ``nnrange`` command line.

    nnrange bounds MODEL (--lo X.. --hi X.. | --box FILE | --center FILE --eps E | --vnnlib FILE)
    nnrange verify MODEL PROPERTY.vnnlib [--timeout 60] [--vnncomp-out FILE] [--json]
    nnrange info MODEL [--json]

Exit codes: 0 success / property holds, 1 property violated, 2 unknown or stopped by the time
limit, 3 usage or input error, 4 internal error (a bug).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

EXIT_OK = 0
EXIT_VIOLATED = 1
EXIT_UNKNOWN = 2
EXIT_INPUT_ERROR = 3
EXIT_INTERNAL_ERROR = 4

_EXIT_CODES = """\
exit codes:
  0  success: bounds computed, property holds, model described
  1  the property is violated (verify; the counterexample is re-checked and printed)
  2  unknown: verify undecided within --timeout, or bounds stopped by --timeout
     (the bounds printed are still sound, only looser)
  3  usage or input error: missing or corrupt file, unsupported operator, malformed box or
     property, unknown method
  4  internal error: a bug in nnrange (please report it with the model and the command)
"""

_BOX_FORMAT = """\
box formats:
  --lo X.. --hi X..      one number for every input, or one per input ("0 0.5" or "0,0.5")
  --box FILE.json        {"lo": ..., "hi": ...}: each a number, a flat list with one value per
                         input, a nested list in the model's input shape, or a list of such
                         boxes (several boxes are bounded in one batched run)
  --center FILE.npy --eps E
                         the L-inf ball [center - E, center + E] around a saved numpy array
                         (input shape or flat); --clip-lo/--clip-hi clip it, e.g. to [0, 1]
  --vnnlib FILE.vnnlib   the input box(es) of a VNN-LIB property
"""


class UsageError(Exception):
    """A mistake on the command line (exit code 3)."""


# ---------------------------------------------------------------------------------- parsing
def _numbers(values: list[str], what: str) -> list[float] | float:
    """Parse ``--lo 0 0.5`` or ``--lo 0,0.5`` (a single number broadcasts)."""
    out: list[float] = []
    for v in values:
        if any(not p.strip() for p in v.split(",")):
            raise UsageError(f"{what}: empty value in {v!r} (stray comma?)")
        for part in v.replace(",", " ").split():
            try:
                out.append(float(part))
            except ValueError:
                raise UsageError(f"{what}: not a number: {part!r}") from None
    if not out:
        raise UsageError(f"{what}: no numbers given")
    return out[0] if len(out) == 1 else out


def _indices(text: str) -> list[int]:
    """``--outputs 0,3`` -> [0, 3]."""
    try:
        out = [int(p) for p in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected output indices such as 0,3, got {text!r}"
        ) from None
    if not out:
        raise argparse.ArgumentTypeError("no output index given")
    return list(dict.fromkeys(out))  # each output once, in the order given


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return v


def _nonnegative(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def _count(text: str, minimum: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
    return v


def _seed(text: str) -> int:
    return _count(text, 0)


def _workers(text: str) -> int:
    return _count(text, 1)


def _number(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return v


def _method_help() -> str:
    """The methods section of ``bounds --help``, from the engine registry."""
    import textwrap

    from .engines import ENGINES

    entries = [
        (
            "auto",
            "CROWN plus the inner search; with --tolerance or --exact it escalates "
            "(thorough inner search, then alpha-CROWN, then bab) while a gap stays open",
        ),
    ]
    for name, eng in ENGINES.items():
        gives = "+".join(
            g for g, on in (("outer", eng.gives_outer), ("inner", eng.gives_inner)) if on
        )
        entries.append((name, f"[{gives}] {eng.summary}"))
    lines = ["methods (--method):"]
    for name, text in entries:
        wrapped = textwrap.wrap(text, 80)
        lines.append(f"  {name:<13} {wrapped[0]}")
        lines.extend(f"  {'':<13} {more}" for more in wrapped[1:])
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    from .engines import ENGINES

    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="nnrange",
        description="Proven outer and attained inner bounds of a neural network's outputs over\n"
        "an input box, and VNN-LIB property verification.",
        epilog=_EXIT_CODES,
        formatter_class=fmt,
    )
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, metavar="{bounds,verify,info}")

    b = sub.add_parser(
        "bounds",
        help="bound every output over an input box",
        description="Bound every output of MODEL over an input box: proven lower/upper bounds,\n"
        "values attained by witness inputs, and where the two meet (exact).",
        epilog=_BOX_FORMAT + "\n" + _method_help() + "\n" + _EXIT_CODES,
        formatter_class=fmt,
    )
    b.add_argument("model", help="an .onnx, .keras or .h5 file")
    src = b.add_argument_group("input box (give exactly one source)")
    src.add_argument("--lo", nargs="+", metavar="X", help="lower input bounds")
    src.add_argument("--hi", nargs="+", metavar="X", help="upper input bounds")
    src.add_argument("--box", metavar="FILE", help='a JSON file {"lo": ..., "hi": ...}')
    src.add_argument("--center", metavar="FILE", help="a .npy array: centre of an L-inf ball")
    src.add_argument("--eps", type=_nonnegative, metavar="E", help="radius of the L-inf ball")
    src.add_argument("--clip-lo", type=_number, metavar="X", help="clip the ball from below")
    src.add_argument("--clip-hi", type=_number, metavar="X", help="clip the ball from above")
    src.add_argument("--vnnlib", metavar="FILE", help="use the input box(es) of a property")
    b.add_argument(
        "--method",
        default="auto",
        help=f"auto (default) or one engine: {', '.join(ENGINES)} (see below)",
    )
    b.add_argument(
        "--timeout",
        type=_positive,
        metavar="SECONDS",
        help="time limit: checked between the engines of 'auto'; engines with their own "
        "limit (such as milp) get it for the whole run",
    )
    b.add_argument(
        "--exact", action="store_true", help="with auto: escalate until every range is exact"
    )
    b.add_argument(
        "--tolerance",
        type=_nonnegative,
        metavar="T",
        help="gap (absolute, each side) that counts as closed; with auto: escalate until met",
    )
    b.add_argument(
        "--outputs", type=_indices, metavar="I,J", help="show only these outputs (0-based)"
    )
    b.add_argument(
        "--inner",
        default="fast",
        choices=["fast", "thorough", "off"],
        help="inner-bound search (samples + gradient attack) attached to the result "
        "(default: fast)",
    )
    b.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    b.add_argument(
        "--plot",
        metavar="OUT.png",
        help="also draw sampled outputs against the bounds (box 0) into this image",
    )
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.add_argument("--quiet", "-q", action="store_true", help="no progress display on stderr")

    v = sub.add_parser(
        "verify",
        help="decide a VNN-LIB property: holds, violated or unknown",
        description="Decide whether some input in the property's box(es) drives the outputs into\n"
        "its unsafe region. 'violated' comes with a counterexample, re-checked here by a\n"
        "forward pass (and by ONNX Runtime when it is installed).",
        epilog=_EXIT_CODES,
        formatter_class=fmt,
    )
    v.add_argument("model", help="an .onnx, .keras or .h5 file")
    v.add_argument("property", help="a .vnnlib file")
    v.add_argument(
        "--timeout", type=_positive, default=60.0, metavar="SECONDS", help="(default: 60)"
    )
    v.add_argument(
        "--vnncomp-out",
        metavar="FILE",
        help="also write the result in VNN-COMP format: unsat, sat followed by the "
        "counterexample ((X_0 v) ... (Y_0 v) ...), timeout, unknown or error",
    )
    v.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    v.add_argument(
        "--workers",
        type=_workers,
        default=None,
        metavar="N",
        help="processes for the long branch-and-bound round (default: all cores)",
    )
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.add_argument("--quiet", "-q", action="store_true", help="no progress display on stderr")

    i = sub.add_parser(
        "info",
        help="show the layer graph nnrange builds and which engines handle it",
        description="List the layer graph nnrange builds from MODEL (name, op, output shape,\n"
        "parameters, attributes) with a column per engine saying whether it handles each layer.",
        epilog=_EXIT_CODES,
        formatter_class=fmt,
    )
    i.add_argument("model", help="an .onnx, .keras or .h5 file")
    i.add_argument("--json", action="store_true", help="print the layer table as JSON")
    return p


def _version() -> str:
    from . import __version__

    return f"nnrange {__version__}"


# ---------------------------------------------------------------------------------- boxes
@dataclass
class _BoxSource:
    """Where the box came from, and its raw bounds (validated later against the model)."""

    lo: Any
    hi: Any
    source: str
    file: str | None = None
    extra: dict = field(default_factory=dict)


def _box_source(args) -> _BoxSource:
    """Read the one box source given on the command line (files are read, not validated)."""
    import numpy as np

    given = []
    if args.lo is not None or args.hi is not None:
        given.append("--lo/--hi")
    if args.box is not None:
        given.append("--box")
    if args.center is not None or args.eps is not None:
        given.append("--center/--eps")
    if args.vnnlib is not None:
        given.append("--vnnlib")
    if not given:
        raise UsageError(
            "the input box is required: give --lo/--hi, --box FILE, --center FILE --eps E, "
            "or --vnnlib FILE"
        )
    if len(given) > 1:
        raise UsageError(
            f"give exactly one box source, not {' and '.join(given)} (see 'nnrange bounds --help')"
        )
    if (args.clip_lo is not None or args.clip_hi is not None) and given[0] != "--center/--eps":
        raise UsageError("--clip-lo/--clip-hi only apply to an L-inf ball (--center/--eps)")
    kind = given[0]
    if kind == "--lo/--hi":
        if args.lo is None or args.hi is None:
            raise UsageError("--lo and --hi go together: give both")
        return _BoxSource(_numbers(args.lo, "--lo"), _numbers(args.hi, "--hi"), "--lo/--hi")
    if kind == "--box":
        data = _read_json(args.box)
        if not isinstance(data, dict) or "lo" not in data or "hi" not in data:
            found = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise UsageError(
                f'{args.box}: a box file is a JSON object {{"lo": ..., "hi": ...}}; found {found}'
            )
        return _BoxSource(data["lo"], data["hi"], args.box, file=args.box)
    if kind == "--center/--eps":
        if args.center is None or args.eps is None:
            raise UsageError("--center and --eps go together: give both")
        a = -np.inf if args.clip_lo is None else args.clip_lo
        z = np.inf if args.clip_hi is None else args.clip_hi
        if a > z:
            raise UsageError(f"--clip-lo {args.clip_lo} is above --clip-hi {args.clip_hi}")
        center = _read_npy(args.center)
        lo, hi = center - args.eps, center + args.eps
        with np.errstate(invalid="ignore"):  # non-numeric or NaN centres are the box's to refuse
            apart = np.flatnonzero((hi < a) | (lo > z))
        if apart.size:
            i = int(apart[0])
            raise UsageError(
                f"--clip-lo/--clip-hi [{a:g}, {z:g}] do not meet the ball around {args.center} "
                f"at input {i} (centre {float(center.reshape(-1)[i]):g} +- {args.eps:g}"
                f"{f', and {apart.size - 1} more input(s)' if apart.size > 1 else ''}): "
                "clipping would leave a box outside the ball; check the centre or the clip range"
            )
        extra = {"center": args.center, "eps": args.eps, "clip": [args.clip_lo, args.clip_hi]}
        return _BoxSource(
            np.clip(lo, a, z),
            np.clip(hi, a, z),
            f"{args.center} +- {args.eps:g}",
            file=args.center,
            extra=extra,
        )
    from .spec.vnnlib import load_vnnlib

    prop = load_vnnlib(args.vnnlib)
    lo = np.stack([c.lo for c in prop.cases])
    hi = np.stack([c.hi for c in prop.cases])
    if len(prop.cases) == 1:
        lo, hi = lo[0], hi[0]
    return _BoxSource(lo, hi, args.vnnlib, file=args.vnnlib)


def _read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a JSON file") from None
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not a text file ({exc})") from None


def _read_npy(path: str):
    import numpy as np

    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a .npy file") from None
    except (ValueError, OSError, EOFError) as exc:
        why = "" if "pickle" in str(exc) else f" ({exc})"
        raise UsageError(f"{path}: not a numpy .npy array file{why}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise UsageError(f"{path}: expected a numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64)


# ---------------------------------------------------------------------------------- bounds
def _accepts(engine, name: str) -> bool:
    """Does ``engine.run`` take a keyword argument ``name``?"""
    try:
        params = inspect.signature(engine.run).parameters
    except (TypeError, ValueError):
        return False
    if name in params:
        return params[name].kind is not inspect.Parameter.POSITIONAL_ONLY
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _select_outputs(result, idx: list[int]):
    """A copy of ``result`` restricted to the outputs ``idx`` (names keep the indices)."""
    import numpy as np

    from .result import BoundsResult

    b, n = result.n_boxes, result.n_outputs

    def cols(a):
        return None if a is None else np.asarray(a).reshape(b, n)[:, idx]

    def wits(a):
        if a is None:
            return None
        a = np.asarray(a)
        return a.reshape(b, n, -1)[:, idx].reshape(b, len(idx), *result.input_shape)

    names = result.output_names or [str(j) for j in range(n)]
    return BoundsResult(
        n_boxes=b,
        n_outputs=len(idx),
        input_shape=result.input_shape,
        output_shape=(len(idx),),
        lower=cols(result.lower),
        upper=cols(result.upper),
        inner_lower=cols(result.inner_lower),
        inner_upper=cols(result.inner_upper),
        witness_lower=wits(result.witness_lower),
        witness_upper=wits(result.witness_upper),
        method=result.method,
        engines=result.engines,
        timings=result.timings,
        status=result.status,
        batched=result.batched,
        atol=result.atol,
        rtol=result.rtol,
        output_names=[names[j] for j in idx],
        info=result.info,
    )


def _engine_options(args, bar) -> tuple[dict, list[str]]:
    """Options for a single named engine: its own time limit, outputs, progress callback."""
    from .api import resolve_method

    if args.method.lower() == "auto":  # the chain's engines that search per output take it
        return ({} if args.outputs is None else {"outputs": list(args.outputs)}), []
    engine = resolve_method(args.method)
    opts: dict = {}
    notes: list[str] = []
    if args.timeout is not None and not _accepts(engine, "time_limit"):
        notes.append(f"{engine.name} has no time limit of its own: --timeout does not apply to it")
    if args.outputs is not None and _accepts(engine, "outputs"):
        opts["outputs"] = list(args.outputs)
    if bar.enabled and _accepts(engine, "progress"):

        def progress(info: dict) -> None:
            bar.update(done=info.get("done"), total=info.get("total"))

        opts["progress"] = progress
    return opts, notes


def _cmd_bounds(args) -> int:
    import numpy as np

    from .api import bounds, resolve_method
    from .box import Box
    from .errors import BoxError
    from .loaders import load
    from .progress import Progress
    from .result import Status

    if args.method.lower() != "auto":
        resolve_method(args.method)  # unknown methods fail before any work
    if args.plot:  # before the work, not after it: a bad path would throw the bounds away
        folder = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(folder):
            raise UsageError(f"--plot {args.plot}: folder {folder} does not exist")
    src = _box_source(args)
    graph = load(args.model)
    try:
        box = Box.from_bounds(src.lo, src.hi, graph.input_shape)
    except BoxError as exc:
        raise BoxError(f"{src.file}: {exc}" if src.file else str(exc)) from None
    outputs = args.outputs
    if outputs is not None:
        bad = [j for j in outputs if not 0 <= j < graph.output_size]
        if bad:
            raise UsageError(
                f"--outputs {','.join(map(str, bad))}: the model has {graph.output_size} "
                f"output(s), numbered 0 to {graph.output_size - 1}"
            )
    label = f"bounds ({args.method}{f', {box.n} boxes' if box.batched else ''})"
    with Progress(label, enabled=not args.quiet, tick=True) as bar:
        options, notes = _engine_options(args, bar)
        t0 = time.perf_counter()
        result = bounds(
            graph,
            box.lo if box.batched else box.lo[0],
            box.hi if box.batched else box.hi[0],
            method=args.method,
            inner=False if args.inner == "off" else args.inner,
            tolerance=args.tolerance,
            exact=args.exact,
            time_limit=args.timeout,
            seed=args.seed,
            **options,
        )
        wall = time.perf_counter() - t0
    shown = result if outputs is None else _select_outputs(result, list(outputs))
    if args.plot:
        _plot(args.plot, graph, result, box, outputs)
        notes.append(f"histogram written to {args.plot}")
    code = EXIT_UNKNOWN if result.status == Status.TIMEOUT else EXIT_OK
    if args.json:
        lo, hi = box.lo.reshape(box.n, -1), box.hi.reshape(box.n, -1)
        data = {
            "model": args.model,
            "box": {
                "source": src.source,
                "n_boxes": box.n,
                "lo": (lo if box.batched else lo[0]).tolist(),
                "hi": (hi if box.batched else hi[0]).tolist(),
                **src.extra,
            },
            "outputs": None if outputs is None else list(outputs),
            **shown.to_dict(),
            "seconds": wall,
            "notes": notes,
        }
        print(json.dumps(data, indent=2))
        return code
    print(f"model: {args.model}")
    n_in = graph.input_size
    if box.batched:
        print(f"box: {src.source} ({box.n} boxes, {n_in} inputs each)")
        for k in range(box.n):
            print(f"\nbox {k}:")
            print(shown.table(box=k))
        print()
    else:
        print(f"box: {src.source} ({n_in} input{'s' if n_in != 1 else ''})")
        print(shown.table())
    if outputs is not None:
        print(f"(outputs {','.join(map(str, outputs))} of {graph.output_size})")
    status = result.status.value
    print(
        f"engines: {'+'.join(result.engines)}   status: {status}   time: {wall:.3g} s   "
        f"exact: {int(np.sum(shown.exact))} of {np.size(shown.exact)}"
    )
    for note in notes:
        print(f"note: {note}")
    return code


def _plot(path: str, graph, result, box, outputs) -> None:
    """Sampled outputs against the bounds of box 0, drawn with matplotlib's Agg backend."""
    from .errors import NNRangeError

    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError as exc:
        raise NNRangeError("--plot needs matplotlib: pip install nnrange[plot]") from exc
    import matplotlib.pyplot as plt

    from . import viz

    fig = viz.histogram(result, graph, outputs=outputs, lo=box.lo[0], hi=box.hi[0])
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise NNRangeError(f"--plot {path}: cannot write the figure ({exc})") from exc
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------------- verify
def check_counterexample(graph, prop, x, model_path: str) -> dict:
    """Re-run a counterexample: the graph's forward pass (and ONNX Runtime when available)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64).reshape(graph.input_shape)
    flat = x.reshape(-1)
    y = np.asarray(graph.forward(x), dtype=np.float64).reshape(-1)
    inside = [k for k, c in enumerate(prop.cases) if np.all(c.lo <= flat) and np.all(flat <= c.hi)]
    unsafe = [k for k in inside if prop.is_unsafe(y[: prop.n_outputs], case=k)]
    check: dict = {
        "input_in_box": bool(inside),
        "forward_unsafe": bool(unsafe),
        "box": unsafe[0] if unsafe else (inside[0] if inside else None),
        "output": y.tolist(),
        "onnxruntime_unsafe": None,
        "onnxruntime_output": None,
    }
    y_ort = _onnxruntime_output(model_path, x)
    if y_ort is not None:
        check["onnxruntime_output"] = y_ort.tolist()
        check["onnxruntime_unsafe"] = any(
            prop.is_unsafe(y_ort[: prop.n_outputs], case=k) for k in inside
        )
    return check


def _onnxruntime_output(model_path: str, x):
    """The model's output at ``x`` from ONNX Runtime (float32), or None when unavailable."""
    if not str(model_path).lower().endswith(".onnx"):
        return None
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import numpy as np

    try:
        sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        out = sess.run(None, {inp.name: x.astype(np.float32).reshape(shape)})[0]
    except Exception:  # noqa: BLE001 - a runtime that cannot run the model only skips a check
        return None
    return np.asarray(out, dtype=np.float64).reshape(-1)


def vnncomp_text(verdict: str, x=None, y=None) -> str:
    """The VNN-COMP result file: ``unsat``, ``sat`` with ``((X_0 v) ... (Y_0 v) ...)``,
    ``timeout``, ``unknown`` or ``error``."""
    if verdict != "sat":
        return verdict + "\n"
    import numpy as np

    xs = np.asarray(x, dtype=np.float64).reshape(-1)
    ys = np.asarray(y, dtype=np.float64).reshape(-1)
    rows = [f"(X_{i} {float(v)!r})" for i, v in enumerate(xs)]
    rows += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(ys)]
    return "sat\n(" + "\n ".join(rows) + ")\n"


def _write_text(path: str, text: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the result file ({exc.strerror})") from None


def _cmd_verify(args) -> int:
    from .errors import NNRangeError

    try:
        return _verify(args)
    except (NNRangeError, UsageError):
        if args.vnncomp_out:
            try:
                with open(args.vnncomp_out, "w") as f:
                    f.write("error\n")
            except OSError:
                pass
        raise


def _verify(args) -> int:
    import numpy as np

    from .loaders import load
    from .progress import Progress
    from .spec.vnnlib import load_vnnlib
    from .verify import Verdict, verify

    prop = load_vnnlib(args.property)
    graph = load(args.model)
    n_regions = sum(len(c.unsafe) for c in prop.cases)
    t0 = time.perf_counter()
    with Progress("verify", enabled=not args.quiet, tick=True) as bar:

        def progress(info: dict) -> None:
            parts = []
            if "lower" in info:
                parts.append(f"lower {info['lower']:.4g}")
            if "open" in info:
                parts.append(f"open {info['open']}")
            if "pieces" in info:
                parts.append(f"pieces {info['pieces']}")
            bar.update(done=info.get("done"), total=info.get("total"), text="  ".join(parts))

        result = verify(
            graph,
            prop,
            timeout=args.timeout,
            progress=progress if bar.enabled else None,
            seed=args.seed,
            workers=args.workers,
        )
    wall = time.perf_counter() - t0
    verdict = result.verdict
    detail = result.detail
    check = None
    if verdict == Verdict.VIOLATED:
        check = check_counterexample(graph, prop, result.counterexample, args.model)
        if not (check["input_in_box"] and check["forward_unsafe"]):
            detail = (
                f"{detail}; but the counterexample failed the re-check (input in a box: "
                f"{check['input_in_box']}, output unsafe: {check['forward_unsafe']}); "
                "this is a bug in nnrange, please report it"
            )
            verdict = Verdict.UNKNOWN
    timed_out = verdict == Verdict.UNKNOWN and result.seconds >= 0.99 * args.timeout
    code = {Verdict.HOLDS: EXIT_OK, Verdict.VIOLATED: EXIT_VIOLATED}.get(verdict, EXIT_UNKNOWN)
    x = y = None
    if verdict == Verdict.VIOLATED:
        x = np.asarray(result.counterexample, dtype=np.float64).reshape(-1)
        y = np.asarray(
            check["onnxruntime_output"]
            if check["onnxruntime_output"] is not None
            else check["output"]
        )
    if args.vnncomp_out:
        word = {Verdict.HOLDS: "unsat", Verdict.VIOLATED: "sat"}.get(
            verdict, "timeout" if timed_out else "unknown"
        )
        _write_text(args.vnncomp_out, vnncomp_text(word, x, y))
    if args.json:
        data = {
            "model": args.model,
            "property": args.property,
            "verdict": verdict.value,
            "detail": detail,
            "seconds": result.seconds,
            "wall_seconds": wall,
            "timeout": args.timeout,
            "timed_out": timed_out,
            "pieces": result.pieces,
            "boxes": len(prop.cases),
            "unsafe_regions": n_regions,
            "counterexample": None if x is None else x.tolist(),
            "output": None if check is None else check["output"],
            "check": check,
            "vnncomp_out": args.vnncomp_out,
        }
        print(json.dumps(data, indent=2))
        return code
    print(f"model: {args.model}")
    print(
        f"property: {args.property} ({len(prop.cases)} box{'es' if len(prop.cases) != 1 else ''}, "
        f"{n_regions} unsafe region{'s' if n_regions != 1 else ''})"
    )
    pieces = f"{result.pieces} piece{'s' if result.pieces != 1 else ''}"
    print(f"result: {verdict.value} ({detail}; {result.seconds:.3g} s, {pieces})")
    if check is not None and verdict == Verdict.VIOLATED:
        print(f"counterexample X ({x.size} inputs): {_fmt_vector(x)}")
        print(f"output Y at X ({len(check['output'])} outputs): {_fmt_vector(check['output'])}")
        print(f"re-check: forward pass lands in the unsafe region of box {check['box']}: yes")
        if check["onnxruntime_unsafe"] is not None:
            ok = "yes" if check["onnxruntime_unsafe"] else "NO (float32 rounding at the border)"
            print(f"re-check: ONNX Runtime (float32) lands in the unsafe region: {ok}")
    if args.vnncomp_out:
        print(f"wrote {args.vnncomp_out} (VNN-COMP format)")
    return code


def _fmt_vector(v) -> str:
    import numpy as np

    return np.array2string(
        np.asarray(v, dtype=np.float64).reshape(-1),
        precision=9,
        max_line_width=100,
        threshold=24,
        edgeitems=6,
        separator=", ",
    )


# ---------------------------------------------------------------------------------- info
def engine_support(graph) -> dict[str, dict]:
    """Per registered engine: does it handle ``graph``, and the layers it refuses.

    An engine may expose ``supports(graph) -> str | None`` (None: handled); engines without it
    handle every node kind the loaders produce. Layers an engine refuses are the ones its
    reason names (``'layer'``), and every layer of the same op as a named one.
    """
    from .engines import ENGINES

    rows = graph.summary()
    out: dict[str, dict] = {}
    for name, eng in ENGINES.items():
        check = getattr(eng, "supports", None)
        reason = check(graph) if callable(check) else None
        if reason is None:
            refused: set[str] = set()
        else:
            named = [r for r in rows if f"'{r['name']}'" in reason]
            ops = {r["op"] for r in named}
            refused = (
                {
                    r["name"]
                    for r in rows
                    if r["name"] in {n["name"] for n in named} or r["op"] in ops
                }
                if named
                else {r["name"] for r in rows}
            )
        out[name] = {
            "supported": reason is None,
            "reason": reason,
            "refused_layers": sorted(refused),
            "gives_outer": eng.gives_outer,
            "gives_inner": eng.gives_inner,
            "summary": eng.summary,
        }
    return out


def _cmd_info(args) -> int:
    from .loaders import load

    graph = load(args.model)
    rows = graph.summary()
    support = engine_support(graph)
    for r in rows:
        r["engines"] = {e: r["name"] not in s["refused_layers"] for e, s in support.items()}
    params = sum(r["params"] for r in rows)
    if args.json:
        data = {
            "model": args.model,
            "input_shape": list(graph.input_shape),
            "output_shape": list(graph.output_shape),
            "parameters": params,
            "nodes": rows,
            "engines": support,
        }
        print(json.dumps(data, indent=2))
        return EXIT_OK
    print(f"model: {args.model}")
    print(
        f"input shape {graph.input_shape} -> output shape {graph.output_shape}, "
        f"{len(graph)} nodes, {params} parameters"
    )
    w = max([4] + [len(r["name"]) for r in rows])
    wo = max([2] + [len(r["op"]) for r in rows])
    ws = max([12] + [len(str(tuple(r["shape"]))) for r in rows])
    engines = list(support)
    head = f"{'name':<{w}}  {'op':<{wo}}  {'output shape':<{ws}}  {'params':>8}  "
    head += "  ".join(engines) + "  attributes"
    print(head)
    for r in rows:
        marks = "  ".join(f"{'yes' if r['engines'][e] else 'no':<{len(e)}}" for e in engines)
        print(
            f"{r['name']:<{w}}  {r['op']:<{wo}}  {str(tuple(r['shape'])):<{ws}}  "
            f"{r['params']:>8}  {marks}  {r['attrs']}".rstrip()
        )
    for e, s in support.items():
        if s["reason"] is not None:
            print(f"{e}: {s['reason']}")
    return EXIT_OK


# ---------------------------------------------------------------------------------- main
#: Options whose values may be negative numbers; argparse takes "-1e-3" or "-inf" for an option
#: name (only plain forms like "-1" and "-0.5" count as numbers to it).
_NUMBER_OPTIONS = ("--lo", "--hi", "--clip-lo", "--clip-hi")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _glue_numbers(argv: list[str]) -> list[str]:
    """``--lo -1e-3 -2`` -> ``--lo=-1e-3,-2``, so every number reaches the option."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg in _NUMBER_OPTIONS:
            values = []
            while i < len(argv) and _is_number(argv[i]) and (arg in ("--lo", "--hi") or not values):
                values.append(argv[i])
                i += 1
            out.append(f"{arg}={','.join(values)}" if values else arg)
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    from .errors import NNRangeError

    parser = _parser()
    try:
        args = parser.parse_args(_glue_numbers(sys.argv[1:] if argv is None else list(argv)))
    except SystemExit as exc:  # argparse exits 2 on usage errors; we document 3
        return EXIT_INPUT_ERROR if exc.code not in (0, None) else EXIT_OK
    commands = {"bounds": _cmd_bounds, "verify": _cmd_verify, "info": _cmd_info}
    try:
        return commands[args.command](args)
    except UsageError as exc:
        print(f"nnrange {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except NNRangeError as exc:
        from .errors import UnsoundBoundError

        print(f"nnrange {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR if isinstance(exc, UnsoundBoundError) else EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("nnrange: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception:
        import traceback

        traceback.print_exc()
        print(
            "nnrange: internal error (a bug in nnrange); please report it with the model and "
            "the command line",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
