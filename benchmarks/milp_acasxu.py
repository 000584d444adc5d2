"""Exact ACAS Xu output ranges by ``method="milp"`` next to the reference MILP's.

    python benchmarks/milp_acasxu.py [--time-limit 30] [--only 3_3] [--box prop_4] [--cbc]
                                     [--no-tighten] [--threads 1]

Reads ../shared/benchmarks/reference/acasxu_exact.json (an independent MILP with input
splitting, HiGHS, gap 1e-6) and prints one row per (network, box, output): nnrange's proven
[min, max], the reference's exact [min, max], whether they agree within 1e-4 (a timed-out solve
agrees when its sound bounds contain the reference range), the solver status per direction, and
the time of both directions next to the reference's. One MILP per (network, box) serves all
outputs. Boxes where CROWN leaves more than 64 neurons unstable (property 1: 242) are split
(``milp.run``'s ``split``; input splitting with LP-tightened MILP leaves, to a gap of 1e-6), as
the reference itself had to: one big-M MILP over such a box does not close in minutes.
Totals of both times are printed at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

from common import benchmarks_dir, single_thread

single_thread()


import nnrange  # noqa: E402
from nnrange.box import Box  # noqa: E402
from nnrange.engines import milp  # noqa: E402

AGREE = 1e-4


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=30.0, help="seconds per solve")
    ap.add_argument("--only", default="", help="substring of the network name")
    ap.add_argument("--box", default="", help="box id (e.g. prop_4)")
    ap.add_argument("--cbc", action="store_true", help="solve with CBC instead of HiGHS")
    ap.add_argument("--no-tighten", action="store_true", help="CROWN bounds only, no LP pass")
    ap.add_argument("--threads", type=int, default=None, help="HiGHS threads")
    ap.add_argument("--no-split", action="store_true", help="one MILP per box, however wide")
    args = ap.parse_args()
    root = benchmarks_dir()
    ref = json.loads((root / "reference" / "acasxu_exact.json").read_text())
    cases = defaultdict(list)
    for rec in ref["records"]:
        if args.only in rec["net"] and args.box in rec["box_id"]:
            cases[(rec["net"], rec["box_id"])].append(rec)
    head = (
        f"{'net':<9} {'box':<7} {'out':>3} {'milp min':>11} {'milp max':>11} {'ref min':>11} "
        f"{'ref max':>11}  agree {'status':<16} {'time':>7} {'ref t':>7}"
    )
    print(head)
    print("-" * len(head))
    n_agree = n_total = 0
    closed_diffs: list[float] = []
    total_t = total_ref = 0.0
    for (net, box_id), recs in cases.items():
        graph = nnrange.load(root / "acasxu" / f"{net}_batch_2000.onnx")
        lo, hi = recs[0]["box_lo"], recs[0]["box_hi"]
        box = Box.from_bounds(lo, hi, graph.input_shape)
        t0 = time.perf_counter()
        r = milp.run(
            graph,
            box,
            solve_time_limit=args.time_limit,
            solver="cbc" if args.cbc else "highs",
            tighten=None if args.no_tighten else "lp",
            threads=args.threads,
            split=False if args.no_split else None,
        )
        wall = time.perf_counter() - t0
        info = r.info["milp"]["boxes"][0]
        solves = {(s["output"], s["sense"]): s for s in info["solves"]}
        for rec in sorted(recs, key=lambda q: q["output"]):
            j = rec["output"]
            lo_j, hi_j = float(r.lower[j]), float(r.upper[j])
            s_max, s_min = solves[(j, "max")], solves[(j, "min")]
            closed = {"optimal", "cutoff"}
            ok_lo = (
                abs(lo_j - rec["min"]) <= AGREE
                if s_min["status"] in closed
                else lo_j <= rec["min"] + AGREE
            )
            ok_hi = (
                abs(hi_j - rec["max"]) <= AGREE
                if s_max["status"] in closed
                else hi_j >= rec["max"] - AGREE
            )
            agree = ok_lo and ok_hi
            if s_min["status"] in closed:
                closed_diffs.append(abs(lo_j - rec["min"]))
            if s_max["status"] in closed:
                closed_diffs.append(abs(hi_j - rec["max"]))
            n_agree += agree
            n_total += 1
            status = f"{s_min['status'][:7]}/{s_max['status'][:7]}"
            print(
                f"{net.replace('ACASXU_run2a_', ''):<9} {box_id:<7} {j:>3} {lo_j:>11.6f} "
                f"{hi_j:>11.6f} {rec['min']:>11.6f} {rec['max']:>11.6f}  "
                f"{'yes' if agree else 'NO':<5} {status:<16} "
                f"{s_min['seconds'] + s_max['seconds']:>7.1f} {rec['seconds']:>7.1f}"
            )
        tight = info.get("tighten", {})
        how = (
            f"split into {info['pieces']} pieces ({info['unstable']} unstable neurons)"
            if info.get("split")
            else f"{info['binaries']} binaries after LP tightening ({tight.get('seconds', 0.0):.1f}"
            f" s), build {info['build_seconds']:.2f} s"
        )
        print(
            f"  {net} {box_id}: {how}, wall {wall:.1f} s, status {r.status.value}, "
            f"witness mismatches {len(r.info['witness_mismatch'])}"
        )
        total_t += wall
        total_ref += sum(rec["seconds"] for rec in recs)
    print(f"total: nnrange {total_t:.0f} s, reference {total_ref:.0f} s")
    print(
        f"agree: {n_agree}/{n_total} (timed-out directions count when their bounds contain "
        "the reference)"
    )
    if closed_diffs:
        print(
            f"closed directions: {len(closed_diffs)}, largest |nnrange - reference| "
            f"{max(closed_diffs):.2e}"
        )


if __name__ == "__main__":
    main()
