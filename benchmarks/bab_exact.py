"""Exact output ranges by branch and bound against the independent ACAS Xu reference.

For every record of ``reference/acasxu_exact.json`` (net, property box, output): bab's proven
[lower, upper], the reference [min, max], whether both sides agree within the tolerance, the
status and the time, next to the reference solver's time.

    python benchmarks/bab_exact.py [--time-limit 60] [--atol 1e-4] [--limit N]
                                   [--boxes prop_3,prop_4] [--nets 2_1,3_3]
                                   [--branching auto|rank|strong|mixed]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from common import benchmarks_dir, single_thread

single_thread()

import nnrange  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per output")
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--limit", type=int, default=None, help="first N records only")
    p.add_argument("--boxes", default=None, help="comma-separated box ids (default: all)")
    p.add_argument("--nets", default=None, help="comma-separated nets, e.g. 2_1 (default: all)")
    p.add_argument("--branching", default="auto", choices=["auto", "rank", "strong", "mixed"])
    args = p.parse_args()
    root = benchmarks_dir()
    records = json.loads((root / "reference" / "acasxu_exact.json").read_text())["records"]
    if args.boxes:
        records = [r for r in records if r["box_id"] in args.boxes.split(",")]
    if args.nets:
        records = [r for r in records if r["net"].split("_", 2)[2] in args.nets.split(",")]
    records = records[: args.limit]
    graphs: dict[str, nnrange.Graph] = {}
    print(
        f"{'net':<18}{'box':<8}{'out':>4} {'bab lower':>12} {'ref min':>12} {'bab upper':>12} "
        f"{'ref max':>12}  agree  status   {'s':>6} {'ref s':>6}"
    )
    agree_n, times = 0, []
    for r in records:
        net = r["net"]
        if net not in graphs:
            graphs[net] = nnrange.load(root / "acasxu" / f"{net}_batch_2000.onnx")
        j = r["output"]
        t0 = time.perf_counter()
        res = nnrange.bounds(
            graphs[net],
            r["box_lo"],
            r["box_hi"],
            method="bab",
            outputs=[j],
            atol=args.atol,
            time_limit=2 * args.time_limit,
            inner=False,
            branching=args.branching,
        )
        dt = time.perf_counter() - t0
        times.append(dt)
        lo, hi = float(res.lower[j]), float(res.upper[j])
        slack = args.atol + 1e-6  # the reference itself is exact to a MIP gap of 1e-6
        ok = abs(lo - r["min"]) <= slack and abs(hi - r["max"]) <= slack
        agree_n += ok
        print(
            f"{net[13:]:<18}{r['box_id']:<8}{j:>4} {lo:>12.6f} {r['min']:>12.6f} {hi:>12.6f} "
            f"{r['max']:>12.6f}  {'yes' if ok else 'NO':<5}  {res.status.value:<7} {dt:>6.1f} "
            f"{r['seconds']:>6.1f}",
            flush=True,
        )
    print(
        f"\n{agree_n}/{len(records)} agree within {args.atol:g}; median time "
        f"{np.median(times):.1f} s, total {sum(times):.0f} s"
    )


if __name__ == "__main__":
    main()
