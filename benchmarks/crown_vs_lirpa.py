"""Tightness and speed of ibp / crown / alpha-crown next to auto_LiRPA's figures (one thread).

    python benchmarks/crown_vs_lirpa.py [--repeat 5] [--only ACAS|mnist|verivital]

Reads ../shared/benchmarks/reference/lirpa_bounds.json (auto_LiRPA 0.7.1 on this machine kind)
and prints per case: mean output width and median time of each nnrange method (crown-every:
crown with both slope sets on every layer, ``two_slopes=True``; crown-adaptive: CROWN's adaptive
slopes only, ``two_slopes=False``), the reference's
width and time for the matching method, and the time ratio (reference / nnrange; > 1 means
nnrange is faster). The verivital conv nets (no reference figures) are timed on their first
property box.
"""

from __future__ import annotations

import argparse
import json

from common import benchmarks_dir, interleaved_medians, single_thread

single_thread()

import numpy as np  # noqa: E402

import nnrange  # noqa: E402
from nnrange.box import Box  # noqa: E402
from nnrange.engines import ENGINES  # noqa: E402
from nnrange.spec import load_vnnlib  # noqa: E402

METHODS = [  # nnrange method, engine options, matching reference method
    ("ibp", {}, "IBP"),
    ("crown-textbook", {"intersect_ibp": False}, "CROWN_nosparse"),
    ("crown", {}, "CROWN"),
    ("crown-every", {"two_slopes": True}, "CROWN"),
    ("crown-adaptive", {"two_slopes": False}, "CROWN"),
    ("alpha-crown", {}, "alpha-CROWN"),
]


def _run(method, options, graph, box):
    engine = ENGINES["crown" if method.startswith("crown-") else method]
    return engine.run(graph, box, **options)


def _cases(root, ref, only):
    """(label, family, graph, box, ref_net) for every reference case and verivital net."""
    out = []
    for net, box_id in sorted({(r["net"], r["box_id"]) for r in ref["records"]}):
        if only and only.lower() not in net.lower():
            continue
        sub = "acasxu" if net.startswith("ACAS") else "mnistfc"
        suffix = "_batch_2000.onnx" if net.startswith("ACAS") else ".onnx"
        graph = nnrange.load(root / sub / f"{net}{suffix}")
        b = ref["boxes"][box_id]
        box = Box.from_bounds(b["lower"], b["upper"], graph.input_shape)
        label = f"{net.replace('ACASXU_run2a_', 'acas ')} {box_id}"
        out.append((label, sub, graph, box, (net, box_id)))
    if not only or "verivital" in only.lower():
        for name in ("Convnet_maxpool", "Convnet_avgpool"):
            graph = nnrange.load(root / "verivital" / f"{name}.onnx")
            spec_dir = "maxpool_specs" if "max" in name else "avgpool_specs"
            prop = sorted((root / "verivital" / "specs" / spec_dir).glob("*.vnnlib"))[0]
            case = load_vnnlib(prop).cases[0]
            box = Box.from_bounds(case.lo, case.hi, graph.input_shape)
            out.append((f"{name} {prop.stem}", "verivital", graph, box, None))
    return out


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    root = benchmarks_dir()
    with open(root / "reference" / "lirpa_bounds.json") as f:
        ref = json.load(f)
    recs = {(r["net"], r["box_id"], r["method"]): r for r in ref["records"]}
    methods = [m for m in METHODS if m[0] in ENGINES or m[0].startswith("crown-")]
    cases = _cases(root, ref, args.only)
    jobs = {
        (i, method): (lambda m=method, o=options, g=graph, bx=box: _run(m, o, g, bx))
        for i, (_, _, graph, box, _) in enumerate(cases)
        for method, options, _ in methods
    }
    widths = {key: float(np.mean((r := fn()).upper - r.lower)) for key, fn in jobs.items()}
    times = interleaved_medians(jobs, args.repeat)
    print(
        f"median of {args.repeat} warm runs (in rounds over all cases), one thread; "
        "width = mean over outputs of upper - lower"
    )
    head = (
        f"{'case':<30} {'method':<15} {'width':>11} {'ref width':>11} {'time':>9} "
        f"{'ref time':>9} {'speedup':>8}"
    )
    print(head)
    print("-" * len(head))
    totals = {}
    for i, (label, sub, _, _, key) in enumerate(cases):
        for method, _, ref_method in methods:
            t = times[(i, method)]
            r = recs.get((*key, ref_method)) if key else None
            rt = r.get("seconds_median_1thread") if r else None
            speed = f"{rt / t:>7.1f}x" if rt else ""
            rw = f"{r['mean_width']:>11.5g}" if r else ""
            print(
                f"{label:<30} {method:<15} {widths[(i, method)]:>11.5g} {rw:>11} "
                f"{t * 1e3:>7.2f}ms {(rt or 0) * 1e3:>7.2f}ms {speed}"
            )
            if rt:
                totals.setdefault((sub, method), []).append(rt / t)
        s = recs.get((*key, "sampled_uniform")) if key else None
        if s:
            print(f"{label:<30} {'sampled 10k':<15} {s['mean_width']:>11.5g}")
    print("\nmedian speedup (reference time / nnrange time) per network family and method:")
    for (sub, method), ratios in sorted(totals.items()):
        print(f"  {sub:<8} {method:<15} {np.median(ratios):6.1f}x  (min {min(ratios):.1f}x)")


if __name__ == "__main__":
    main()
