"""Exact output ranges by branch and bound against the independent ACAS Xu reference.

For every record of ``reference/acasxu_exact.json`` (net, property box, output): bab's proven
[lower, upper], the reference [min, max], whether both sides agree within the tolerance, the
status and the time, next to the reference solver's time.

    python benchmarks/bab_exact.py [--time-limit 60] [--atol 1e-4] [--limit N]
                                   [--boxes prop_3,prop_4] [--nets 2_1,3_3]
                                   [--branching auto|rank|strong|mixed]
                                   [--milp | --milp-no-split]

``--milp`` also solves each (net, box) by ``method="milp"`` (one model for the outputs of its
records, each solve limited to the same seconds per direction) right after bab's records of
that box, so the two are timed in one session under the same load, and prints both totals per
box. ``--milp-no-split`` does the same with one big-M MILP per box (``split=False``), never
splitting the input.
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
    group = p.add_mutually_exclusive_group()
    group.add_argument("--milp", action="store_true", help="also time method='milp'")
    group.add_argument(
        "--milp-no-split", action="store_true", help="also time one MILP per box (split=False)"
    )
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
    pair_totals = [0.0, 0.0, False]  # bab, milp over the boxes milp ran on; milp timed out
    for i, r in enumerate(records):
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
        last_of_box = i + 1 == len(records) or (
            records[i + 1]["net"],
            records[i + 1]["box_id"],
        ) != (
            net,
            r["box_id"],
        )
        if (args.milp or args.milp_no_split) and last_of_box:
            _versus_milp(args, graphs[net], records, r, times, pair_totals)
    print(
        f"\n{agree_n}/{len(records)} agree within {args.atol:g}; median time "
        f"{np.median(times):.1f} s, total {sum(times):.0f} s"
    )
    if pair_totals[0]:
        at_least = ">= " if pair_totals[2] else ""
        print(
            f"bab {pair_totals[0]:.0f} s, milp {at_least}{pair_totals[1]:.0f} s in all: "
            f"milp / bab {at_least}{pair_totals[1] / pair_totals[0]:.1f}"
        )


def _versus_milp(args, graph, records, last, times, pair_totals) -> None:
    """Time milp on ``last``'s (net, box) for the outputs bab just did; print both totals."""
    key = (last["net"], last["box_id"])
    mine = [k for k, r in enumerate(records) if (r["net"], r["box_id"]) == key and k < len(times)]
    outputs = sorted({records[k]["output"] for k in mine})
    t0 = time.perf_counter()
    res = nnrange.bounds(
        graph,
        last["box_lo"],
        last["box_hi"],
        method="milp",
        outputs=outputs,
        solve_time_limit=args.time_limit,
        inner=False,
        split=False if args.milp_no_split else None,
    )
    m_dt = time.perf_counter() - t0
    b_dt = sum(times[k] for k in mine)
    pair_totals[0] += b_dt
    pair_totals[1] += m_dt
    how = "milp (split=False)" if args.milp_no_split else "milp"
    # a direction milp did not close would take longer than it ran: the ratio is then a floor
    solves = [s for box in res.info["milp"]["boxes"] for s in box.get("solves", [])]
    open_ = [s for s in solves if s["status"] not in ("optimal", "cutoff")]
    gaps = [abs(s["bound"] - s.get("value", np.nan)) for s in open_]
    closed = f"{len(solves) - len(open_)}/{len(solves)} directions closed" if solves else ""
    worst = (
        f", widest gap left {np.nanmax(gaps):.3g}" if open_ and not np.all(np.isnan(gaps)) else ""
    )
    at_least = ">= " if res.status.value != "ok" else ""
    pair_totals[2] = pair_totals[2] or bool(at_least)
    print(
        f"  {key[0][13:]} {key[1]}: bab {b_dt:.1f} s, {how} {at_least}{m_dt:.1f} s "
        f"({res.status.value}{'; ' + closed if closed else ''}{worst}), "
        f"milp / bab {at_least}{m_dt / b_dt:.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
