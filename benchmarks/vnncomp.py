"""Run a VNN-COMP instance list through ``nnrange.verify`` (in process) and score the answers.

    python benchmarks/vnncomp.py [INSTANCES] [--answers FILE] [--timeout-cap S]
                                 [--every N] [--limit N] [--offset K] [--first-try S] [--quiet]

INSTANCES is a VNN-COMP csv (network, property, timeout in seconds; paths relative to the csv's
folder) or the name of a benchmark folder (acasxu, mnistfc, verivital, test) under
``$NNRANGE_BENCHMARKS`` or ``../shared/benchmarks`` beside the repository (default: acasxu).
``--answers`` reads published answers (columns onnx, vnnlib, answer, tools_disagreed,
fastest_tool, fastest_seconds, as in acasxu/vnncomp2021_answers.csv) and marks every result
right, wrong or unknown, printing the fastest published tool and its time alongside (measured on
the competition's hardware, not this machine). ``--every N`` keeps every N-th instance (after
``--offset``), ``--limit N`` the first N of those; ``--timeout-cap`` lowers every timeout.

A "violated" answer is re-checked: the counterexample must lie in the property's box and its
output, by ONNX Runtime when installed (else nnrange's forward pass), in the unsafe region.
Prints one line per instance, then a summary: counts by result, wrong answers, total and median
time, and counts per property. Ctrl-C stops early and still prints the summary. The exit
status is 1 when some answer is wrong, else 0.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from common import ROOT

sys.path.insert(0, str(ROOT))

import nnrange  # noqa: E402
from nnrange.cli import check_counterexample  # noqa: E402
from nnrange.errors import NNRangeError  # noqa: E402
from nnrange.progress import Progress  # noqa: E402
from nnrange.spec import load_vnnlib  # noqa: E402
from nnrange.verify import Verdict, verify  # noqa: E402


@dataclass
class Instance:
    network: Path
    prop: Path
    timeout: float
    net_key: str  # as written in the csv
    prop_key: str


@dataclass
class Answer:
    answer: str  # holds | violated
    disagreed: bool
    fastest_tool: str
    fastest_seconds: float | None


@dataclass
class Outcome:
    instance: Instance
    result: str  # holds | violated | unknown | error
    seconds: float
    expected: str | None
    mark: str  # right | wrong | unknown (nnrange undecided) | - (no published answer)
    cex: str  # ok | BAD | - (violated answers only)
    detail: str


def benchmarks_root() -> Path | None:
    import os

    env = os.environ.get("NNRANGE_BENCHMARKS")
    path = Path(env) if env else ROOT.parent / "shared" / "benchmarks"
    return path if path.is_dir() else None


def instances_csv(spec: str | None) -> Path:
    """The csv named on the command line, or the instances csv of a benchmark folder."""
    if spec and Path(spec).is_file():
        return Path(spec)
    root = benchmarks_root()
    name = spec or "acasxu"
    if root is None:
        sys.exit(
            f"{name}: not a file, and no benchmark folder found (set NNRANGE_BENCHMARKS or "
            "provide ../shared/benchmarks)"
        )
    folder = root / name
    found = sorted(folder.glob("*instances*.csv")) if folder.is_dir() else []
    if not found:
        sys.exit(f"{spec}: neither a csv file nor a benchmark folder with an instances csv")
    return found[0]


def read_instances(path: Path) -> list[Instance]:
    out = []
    with open(path, newline="") as f:
        for k, row in enumerate(csv.reader(f), start=1):
            row = [c.strip() for c in row]
            if not row or not any(row) or row[0].startswith("#"):
                continue
            if len(row) < 3:
                sys.exit(f"{path}:{k}: expected network,property,timeout; got {row}")
            try:
                timeout = float(row[2])
            except ValueError:
                if k == 1:  # a header line
                    continue
                sys.exit(f"{path}:{k}: timeout {row[2]!r} is not a number")
            out.append(
                Instance(path.parent / row[0], path.parent / row[1], timeout, row[0], row[1])
            )
    return out


def _key(net: str, prop: str) -> tuple[str, str]:
    return Path(net).name, Path(prop).name


def read_nnenum(path: Path) -> dict[tuple[str, str], tuple[str, float]]:
    """nnenum's answer and wall seconds per instance from the reference subset csv."""
    with open(path, newline="") as f:
        return {
            _key(r["onnx"], r["vnnlib"]): (r["nnenum_answer"], float(r["wall_s"]))
            for r in csv.DictReader(f)
        }


def read_answers(path: Path) -> dict[tuple[str, str], Answer]:
    if not Path(path).is_file():
        sys.exit(f"answers file not found: {path} (drop --answers to run without one)")
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            sec = row.get("fastest_seconds", "")
            out[_key(row["onnx"], row["vnnlib"])] = Answer(
                answer=row["answer"].strip().lower(),
                disagreed=row.get("tools_disagreed", "0").strip() not in ("", "0"),
                fastest_tool=row.get("fastest_tool", "").strip(),
                fastest_seconds=float(sec) if sec.strip() else None,
            )
    return out


_SYNONYMS = {"unsat": "holds", "sat": "violated"}


def run_one(
    inst: Instance, timeout: float, first_try: float, seed: int, bar: Progress, workers=None
):
    """(result, seconds, counterexample check, detail) of one instance."""

    def progress(info: dict) -> None:
        text = f"lower {info['lower']:.4g}  open {info.get('open', 0)}" if "lower" in info else ""
        bar.update(done=info.get("done"), total=info.get("total"), text=text)

    t0 = time.perf_counter()
    try:
        r = verify(
            inst.network,
            inst.prop,
            timeout=timeout,
            first_try=first_try,
            seed=seed,
            workers=workers,
            progress=progress if bar.enabled else None,
        )
    except NNRangeError as exc:
        return "error", time.perf_counter() - t0, "-", str(exc).splitlines()[0]
    seconds = time.perf_counter() - t0
    if r.verdict != Verdict.VIOLATED:
        return r.verdict.value, seconds, "-", r.detail
    graph = nnrange.load(inst.network)
    prop = load_vnnlib(inst.prop)
    check = check_counterexample(graph, prop, r.counterexample, str(inst.network))
    ort = check["onnxruntime_unsafe"]
    ok = check["input_in_box"] and (check["forward_unsafe"] if ort is None else ort)
    return "violated", seconds, "ok" if ok else "BAD", r.detail


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("instances", nargs="?", help="instances csv or benchmark folder name")
    ap.add_argument("--answers", type=Path, help="published answers csv")
    ap.add_argument("--timeout-cap", type=float, help="cap every instance's timeout (seconds)")
    ap.add_argument("--every", type=int, default=1, help="keep every N-th instance")
    ap.add_argument("--offset", type=int, default=0, help="start at this instance (0-based)")
    ap.add_argument("--limit", type=int, help="run at most N instances")
    ap.add_argument("--first-try", type=float, default=1.0, help="verify()'s first_try")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--nnenum",
        type=Path,
        help="reference/nnenum_acasxu_subset.csv: run only its instances, nnenum side by side",
    )
    ap.add_argument("--workers", type=int, default=None, help="verify()'s workers (default: all)")
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    args = ap.parse_args()
    if args.every < 1 or args.offset < 0 or (args.limit is not None and args.limit < 1):
        ap.error("--every and --limit must be >= 1, --offset >= 0")

    path = instances_csv(args.instances)
    listed = read_instances(path)
    chosen = listed[args.offset :: args.every][: args.limit]
    nnenum = read_nnenum(args.nnenum) if args.nnenum else {}
    if nnenum:
        chosen = [i for i in chosen if _key(i.net_key, i.prop_key) in nnenum]
    answers = read_answers(args.answers) if args.answers else {}
    cap = args.timeout_cap
    print(f"instances: {path} ({len(chosen)} of {len(listed)} run)")
    if args.answers:
        print(f"answers: {args.answers}")
    print(
        f"timeout: {'as listed' if cap is None else f'listed, capped at {cap:g} s'}; "
        f"first try {args.first_try:g} s per box/region pair; nnrange {nnrange.__version__}"
    )
    wn = max([7] + [len(Path(i.network).stem) for i in chosen])
    wp = max([8] + [len(Path(i.prop_key).with_suffix("").as_posix()) for i in chosen])
    head = (
        f"{'#':>4}  {'network':<{wn}}  {'property':<{wp}}  {'result':<8}  {'expected':<9}  "
        f"{'mark':<7}  {'cex':<3}  {'time s':>7}  published fastest"
    )
    print(head)
    print("-" * len(head))
    outcomes: list[Outcome] = []
    try:
        for k, inst in enumerate(chosen):
            timeout = inst.timeout if cap is None else min(inst.timeout, cap)
            label = f"{k + 1}/{len(chosen)} {Path(inst.network).stem} {Path(inst.prop).stem}"
            with Progress(label, enabled=not args.quiet, tick=True) as bar:
                result, seconds, cex, detail = run_one(
                    inst, timeout, args.first_try, args.seed, bar, args.workers
                )
            ans = answers.get(_key(inst.net_key, inst.prop_key))
            expected = _SYNONYMS.get(ans.answer, ans.answer) if ans else None
            if expected is None:
                mark = "-"  # no published answer to compare with
            elif result not in ("holds", "violated"):
                mark = "unknown"
            elif result == expected and cex != "BAD":
                mark = "right"
            else:
                mark = "wrong"
            outcomes.append(Outcome(inst, result, seconds, expected, mark, cex, detail))
            exp = "-" if expected is None else expected + ("*" if ans.disagreed else "")
            fastest = (
                f"{ans.fastest_tool} {ans.fastest_seconds:.3g} s"
                if ans and ans.fastest_seconds is not None
                else "-"
            )
            print(
                f"{k + 1:>4}  {Path(inst.network).stem:<{wn}}  "
                f"{Path(inst.prop_key).with_suffix('').as_posix():<{wp}}  {result:<8}  "
                f"{exp:<9}  {mark:<7}  {cex:<3}  {seconds:>7.2f}  {fastest}",
                flush=True,
            )
            if result == "error":
                print(f"      error: {detail}", flush=True)
            if nnenum:
                n_ans, n_sec = nnenum[_key(inst.net_key, inst.prop_key)]
                print(f"      nnenum (this machine, 60 s timeout): {n_ans} in {n_sec:.2f} s")
    except KeyboardInterrupt:
        print(f"\ninterrupted after {len(outcomes)} of {len(chosen)} instances")
    summarize(outcomes, answers)
    if nnenum:
        ref = [nnenum[_key(o.instance.net_key, o.instance.prop_key)] for o in outcomes]
        ours = sum(o.result in ("holds", "violated") for o in outcomes)
        theirs = sum(a in ("holds", "violated") for a, _ in ref)
        print(
            f"  side by side with nnenum on these {len(outcomes)}: decided nnrange {ours}, "
            f"nnenum {theirs}; total time nnrange {sum(o.seconds for o in outcomes):.1f} s, "
            f"nnenum {sum(t for _, t in ref):.1f} s"
        )
    return 1 if any(o.mark == "wrong" for o in outcomes) else 0


def summarize(outcomes: list[Outcome], answers: dict) -> None:
    if not outcomes:
        print("\nno instance finished")
        return
    times = [o.seconds for o in outcomes]
    results = Counter(o.result for o in outcomes)
    marks = Counter(o.mark for o in outcomes)
    print(f"\nsummary of {len(outcomes)} instance(s)")
    print("  results: " + ", ".join(f"{r} {results[r]}" for r in sorted(results)))
    if answers:
        print(
            f"  against published answers: right {marks['right']}, wrong {marks['wrong']}, "
            f"unknown {marks['unknown']}"
        )
    bad = [o for o in outcomes if o.cex == "BAD"]
    if any(o.result == "violated" for o in outcomes):
        n_v = sum(o.result == "violated" for o in outcomes)
        print(f"  counterexamples re-checked: {n_v - len(bad)} of {n_v} valid")
    wrong = [o for o in outcomes if o.mark == "wrong"]
    if wrong:
        print("  WRONG answers:")
        for o in wrong:
            note = (
                " (published tools disagreed here)" if o.expected and _disagreed(o, answers) else ""
            )
            print(
                f"    {Path(o.instance.network).stem} {Path(o.instance.prop_key).stem}: "
                f"nnrange {o.result}, published {o.expected}{note}; cex {o.cex}"
            )
    else:
        print("  wrong answers: none")
    print(f"  time: total {sum(times):.1f} s, median {statistics.median(times):.2f} s")
    solved = [o for o in outcomes if o.mark == "right"]
    fast = [
        (o, answers[_key(o.instance.net_key, o.instance.prop_key)].fastest_seconds)
        for o in solved
        if answers.get(_key(o.instance.net_key, o.instance.prop_key))
    ]
    fast = [(o, f) for o, f in fast if f is not None]
    if fast:
        theirs = [f for _, f in fast]
        ours = [o.seconds for o, _ in fast]
        print(
            f"  on the {len(fast)} right answers: nnrange median {statistics.median(ours):.2f} s, "
            f"published fastest median {statistics.median(theirs):.2f} s (their hardware); "
            f"nnrange faster on {sum(a < b for a, b in zip(ours, theirs, strict=True))}"
        )
    per_prop: dict[str, Counter] = defaultdict(Counter)
    for o in outcomes:
        name = Path(o.instance.prop_key).with_suffix("").as_posix()
        per_prop[name][o.result] += 1
        if o.mark == "wrong":
            per_prop[name]["WRONG"] += 1
    print("  per property:")
    kinds = ["holds", "violated", "unknown", "error", "WRONG"]
    w = max(len(p) for p in per_prop)
    for name in sorted(per_prop, key=_natural):
        c = per_prop[name]
        cells = "  ".join(f"{k} {c[k]}" for k in kinds if c[k])
        print(f"    {name:<{w}}  {sum(c[k] for k in kinds[:4]):>3} run: {cells}")


def _disagreed(o: Outcome, answers: dict) -> bool:
    ans = answers.get(_key(o.instance.net_key, o.instance.prop_key))
    return bool(ans and ans.disagreed)


def _natural(name: str):
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


if __name__ == "__main__":
    sys.exit(main())
