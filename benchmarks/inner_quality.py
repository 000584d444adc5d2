"""Inner-range quality (fraction of the exact range reached) vs. time, sampling only and
sampling + attack.

    python benchmarks/inner_quality.py [--tables A,B] [--detail] [--nets 1_1,2_1,3_3,4_5,5_9]
                                       [--families acasxu,mnistfc,verivital,test]
                                       [--max-boxes 0] [--seed 0] [--atol 1e-4] [--repeat 3]

Table A (exact reference): for every record of ../shared/benchmarks/reference/acasxu_exact.json
(ACAS Xu net, property box, output, exact [min, max] from an independent MILP), each inner-bound
configuration of ``nnrange.engines.sampling.run`` is run once per (net, box) (one run gives every
output). Per configuration: median and smallest fraction of the exact range reached,
(inner_upper - inner_lower) / (max - min), how many records are within ``--atol`` of the exact
range on both sides, the largest gap to the exact range on either side, and the median and total
time per box (each box's time: median of ``--repeat`` runs). ``--detail`` adds one row per
record. Every configuration also evaluates the box centre; "uniform" means no corners, no attack
and no LP polish.

Table B (acceptance check "the attack's inner range is at least as wide as 10,000 uniform
samples' range"): the thorough preset (seed S) against 10,000 uniform samples drawn with another
seed (S + 1) on every network of the benchmark folder and every listed property box: ACAS Xu,
the boxes of acasxu_exact.json plus prop_1..prop_4 of the ``--nets`` networks; mnistfc,
verivital and test, the input boxes of the .vnnlib properties of their instances csv, at most
``--max-boxes`` per network for the large mnistfc and verivital nets (spread evenly over the
instance list; default 0 = all: the full default run takes about 2 minutes). Counts the
box x output pairs where the attack's inner range is narrower than the samples' on either side
by more than 1e-12 relative, lists them, and reports the worst shortfall.

BLAS is pinned to one thread (override with OMP_NUM_THREADS etc.); the load average is printed
since other jobs sharing the CPU make the timings noisy.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import textwrap
import time
from collections import defaultdict
from pathlib import Path

from common import benchmarks_dir, median_time, single_thread

single_thread()

import numpy as np  # noqa: E402

import nnrange  # noqa: E402
from nnrange.box import Box  # noqa: E402
from nnrange.engines import sampling  # noqa: E402
from nnrange.spec.vnnlib import load_vnnlib  # noqa: E402

UNIFORM = {"corners": 0, "steps": 0, "polish": False}
CONFIGS = {
    "uniform 1k": {"samples": 1000, **UNIFORM},
    "uniform 10k": {"samples": 10000, **UNIFORM},
    "fast preset": dict(sampling.PRESETS["fast"]),
    "thorough preset": dict(sampling.PRESETS["thorough"]),
}
SHORT = {
    "uniform 1k": "u1k",
    "uniform 10k": "u10k",
    "fast preset": "fast",
    "thorough preset": "thor",
}
REL_TOL = 1e-12  # relative slack when comparing the attack's and the samples' inner bounds
OUTSIDE_TOL = 1e-9  # an inner bound beyond the reference's proven bounds by more than this
FAMILIES = ("acasxu", "mnistfc", "verivital", "test")
SUBSAMPLED = ("mnistfc", "verivital")


def acas_path(root: Path, net: str) -> Path:
    """The ONNX file of an ACAS Xu network given as ``ACASXU_run2a_1_1`` or ``1_1``."""
    if not net.startswith("ACASXU_run2a_"):
        net = f"ACASXU_run2a_{net}"
    return root / "acasxu" / f"{net}_batch_2000.onnx"


class Graphs:
    """Loads each network once."""

    def __init__(self) -> None:
        self._cache: dict[Path, nnrange.Graph] = {}

    def __call__(self, path: Path) -> nnrange.Graph:
        if path not in self._cache:
            self._cache[path] = nnrange.load(path)
        return self._cache[path]


def make_box(graph: nnrange.Graph, lo, hi) -> Box:
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    if lo.size != graph.input_size:
        raise SystemExit(f"box has {lo.size} inputs, the network {graph.input_size}")
    return Box.from_bounds(
        lo.reshape(graph.input_shape), hi.reshape(graph.input_shape), graph.input_shape
    )


def timed_run(graph: nnrange.Graph, box: Box, options: dict, seed: int):
    t0 = time.perf_counter()
    res = sampling.run(graph, box, **options, seed=seed)
    # one box, not batched: the result's arrays are per output
    return np.asarray(res.inner_lower), np.asarray(res.inner_upper), time.perf_counter() - t0


def legend(text: str) -> None:
    print(textwrap.fill(text, width=100))


def load_line() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unavailable"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


# --------------------------------------------------------------------------------------------
# Table A
# --------------------------------------------------------------------------------------------


def table_a(root: Path, graphs: Graphs, args) -> None:
    ref = json.loads((root / "reference" / "acasxu_exact.json").read_text())["records"]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for rec in ref:
        groups[(rec["net"], rec["box_id"])].append(rec)
    legend(
        f"Table A: inner range vs. the exact range, {len(ref)} records (ACAS Xu net x box x "
        f"output) in {len(groups)} boxes of reference/acasxu_exact.json, seed {args.seed}"
    )
    print()
    # warm up every configuration once (imports, caches) so the first box is not penalised
    (net0, _), recs0 = next(iter(groups.items()))
    g0 = graphs(acas_path(root, net0))
    for options in CONFIGS.values():
        timed_run(g0, make_box(g0, recs0[0]["box_lo"], recs0[0]["box_hi"]), options, args.seed)

    frac: dict[str, list[float]] = defaultdict(list)
    hit: dict[str, list[bool]] = defaultdict(list)
    gap: dict[str, list[float]] = defaultdict(list)
    outside: dict[str, int] = defaultdict(int)
    times: dict[str, list[float]] = defaultdict(list)
    rows = []
    for (net, box_id), recs in groups.items():
        graph = graphs(acas_path(root, net))
        box = make_box(graph, recs[0]["box_lo"], recs[0]["box_hi"])
        runs = {}
        for name, options in CONFIGS.items():
            runs[name] = timed_run(graph, box, options, args.seed)
            # the run above was the warm-up; deterministic for its seed, so time repeats of it
            times[name].append(
                median_time(
                    lambda o=options, g=graph, b=box: sampling.run(g, b, **o, seed=args.seed),
                    repeat=args.repeat,
                    warmup=0,
                )
            )
        for rec in sorted(recs, key=lambda r: r["output"]):
            j, lo_x, hi_x = rec["output"], rec["min"], rec["max"]
            row = [net.replace("ACASXU_run2a_", ""), box_id, j, lo_x, hi_x]
            for name in CONFIGS:
                il, iu = float(runs[name][0][j]), float(runs[name][1][j])
                f = (iu - il) / (hi_x - lo_x) if hi_x > lo_x else 1.0
                ok = abs(il - lo_x) <= args.atol and abs(iu - hi_x) <= args.atol
                frac[name].append(f)
                hit[name].append(ok)
                gap[name].append(max(il - lo_x, hi_x - iu))
                outside[name] += (
                    il < rec["bound_min"] - OUTSIDE_TOL or iu > rec["bound_max"] + OUTSIDE_TOL
                )
                row.append((f, ok))
            rows.append(row)

    n = len(rows)
    head = (
        f"{'configuration':<17}{'median frac':>12}{'min frac':>10}{'exact':>9}{'worst gap':>11}"
        f"{'outside':>9}{'median s/box':>14}{'total s':>9}"
    )
    print(head)
    print("-" * len(head))
    for name in CONFIGS:
        print(
            f"{name:<17}{statistics.median(frac[name]):>12.6f}{min(frac[name]):>10.6f}"
            f"{f'{sum(hit[name])}/{n}':>9}{max(gap[name]):>11.2e}{outside[name]:>9}"
            f"{statistics.median(times[name]):>14.4f}{sum(times[name]):>9.2f}"
        )
    legend(
        "frac = (inner upper - inner lower) / (exact max - exact min); exact = both sides within "
        f"{args.atol:g}; worst gap = largest distance of an inner bound to the exact one; "
        f"outside = inner bounds beyond the reference's proven bounds by > {OUTSIDE_TOL:g} "
        "(must be 0; fractions a little above 1 are fine: the reference min/max are attained "
        "values within its MIP gap of 1e-6); one run per box gives all 5 outputs, its time is "
        f"the median of {args.repeat} runs"
    )
    if args.detail:
        print()
        names = " ".join(f"{SHORT[c]:>10}" for c in CONFIGS)
        head = f"{'net':<5} {'box':<7}{'out':>4} {'exact min':>11} {'exact max':>11} {names}"
        print(head)
        print("-" * len(head))
        for net, box_id, j, lo_x, hi_x, *cells in rows:
            shown = " ".join(f"{f:>9.6f}{'*' if ok else ' '}" for f, ok in cells)
            print(f"{net:<5} {box_id:<7}{j:>4} {lo_x:>11.6f} {hi_x:>11.6f} {shown}")
        legend(
            "fraction of the exact range reached; * = within atol of the exact range on both sides"
        )
    print()


# --------------------------------------------------------------------------------------------
# Table B
# --------------------------------------------------------------------------------------------


def box_key(lo, hi) -> tuple[bytes, bytes]:
    """A hashable key of a box; -0.0 and 0.0 (both appear in the property files) are equal."""
    return tuple((np.asarray(a, dtype=np.float64) + 0.0).tobytes() for a in (lo, hi))


def property_boxes(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The distinct input boxes of a .vnnlib property (its cases may share one box)."""
    seen, out = set(), []
    for case in load_vnnlib(path).cases:
        key = box_key(case.lo, case.hi)
        if key not in seen:
            seen.add(key)
            out.append((case.lo, case.hi))
    return out


def label(stem: str, i: int, n: int) -> str:
    return stem if n == 1 else f"{stem}#{i}"


def spread(items: list, k: int) -> list:
    """At most ``k`` items evenly spread over the list (all when ``k <= 0``)."""
    if k <= 0 or len(items) <= k:
        return items
    idx = sorted({int(round(i)) for i in np.linspace(0, len(items) - 1, k)})
    return [items[i] for i in idx]


def table_b_cases(root: Path, args) -> tuple[list[tuple], list[str]]:
    """(family, network label, onnx path, box label, lo, hi) for every box to compare, and
    notes on what was left out."""
    cases, notes = [], []
    families = args.families.split(",")
    if "acasxu" in families:
        seen = set()

        def add(net: str, box_id: str, lo, hi) -> None:
            key = (net, *box_key(lo, hi))
            if key not in seen:
                seen.add(key)
                cases.append(("acasxu", net, acas_path(root, net), box_id, lo, hi))

        ref = json.loads((root / "reference" / "acasxu_exact.json").read_text())["records"]
        for rec in ref:
            add(
                rec["net"].replace("ACASXU_run2a_", ""), rec["box_id"], rec["box_lo"], rec["box_hi"]
            )
        nets = sorted({f"{i}_{j}" for i in range(1, 6) for j in range(1, 10)})
        chosen = nets if args.nets == "all" else args.nets.split(",")
        for net in chosen:
            if not acas_path(root, net).is_file():
                raise SystemExit(f"no ACAS Xu network {net} in {root / 'acasxu'}")
            for k in range(1, 5):
                boxes = property_boxes(root / "acasxu" / f"prop_{k}.vnnlib")
                for i, (lo, hi) in enumerate(boxes):
                    add(net, label(f"prop_{k}", i, len(boxes)), lo, hi)
        notes.append(
            f"acasxu: boxes of acasxu_exact.json + prop_1..prop_4 of nets {','.join(chosen)}"
        )
    for family in ("mnistfc", "verivital", "test"):
        if family not in families:
            continue
        folder = root / family
        per_net: dict[str, list[tuple]] = defaultdict(list)
        with open(folder / f"{family}_instances.csv", newline="") as f:
            for row in csv.reader(f):
                if not row:
                    continue
                onnx, prop = row[0].strip(), row[1].strip()
                boxes = property_boxes(folder / prop)
                for i, (lo, hi) in enumerate(boxes):
                    per_net[onnx].append((label(Path(prop).stem, i, len(boxes)), lo, hi))
        total = sum(len(b) for b in per_net.values())
        notes.append(
            f"{family}: {len(per_net)} nets, {total} distinct boxes in {family}_instances.csv"
        )
        for onnx, boxes in per_net.items():
            kept = spread(boxes, args.max_boxes) if family in SUBSAMPLED else boxes
            if len(kept) < len(boxes):
                notes.append(
                    f"  {family} {Path(onnx).stem}: only {len(kept)} of {len(boxes)} boxes "
                    f"({', '.join(b[0] for b in kept)})"
                )
            for box_id, lo, hi in kept:
                cases.append((family, Path(onnx).stem, folder / onnx, box_id, lo, hi))
    return cases, notes


def table_b(root: Path, graphs: Graphs, args) -> None:
    cases, notes = table_b_cases(root, args)
    attack_seed, sample_seed = args.seed, args.seed + 1
    uniform = CONFIGS["uniform 10k"]
    thorough = CONFIGS["thorough preset"]
    print(
        f"Table B: thorough preset (seed {attack_seed}) vs. 10,000 uniform samples "
        f"(seed {sample_seed}), {len(cases)} boxes"
    )
    for note in notes:
        print(f"  {note}")
    rows = []
    for family, net, path, box_id, lo, hi in cases:
        graph = graphs(path)
        box = make_box(graph, lo, hi)
        a_lo, a_hi, t_a = timed_run(graph, box, thorough, attack_seed)
        s_lo, s_hi, t_s = timed_run(graph, box, uniform, sample_seed)
        short_lo = a_lo - s_lo  # > 0: the attack's lower bound is above the samples' (narrower)
        short_hi = s_hi - a_hi  # > 0: the attack's upper bound is below the samples'
        s_width = s_hi - s_lo
        rows.append(
            {
                "family": family,
                "net": net,
                "box": box_id,
                "outs": graph.output_size,
                "bad_lo": short_lo > REL_TOL * np.maximum(np.abs(a_lo), np.abs(s_lo)),
                "bad_hi": short_hi > REL_TOL * np.maximum(np.abs(a_hi), np.abs(s_hi)),
                "short_lo": short_lo,
                "short_hi": short_hi,
                "attack": (a_lo, a_hi),
                "samples": (s_lo, s_hi),
                "ratio": np.where(
                    s_width > 0, (a_hi - a_lo) / np.where(s_width > 0, s_width, 1), 1
                ),
                "t_a": t_a,
                "t_s": t_s,
            }
        )

    head = (
        f"{'family':<10}{'network':<18}{'boxes':>6}{'pairs':>7}{'narrower':>10}{'lo/hi':>7}"
        f"{'worst short':>13}{'med ratio':>11}{'min ratio':>11}{'thor s/box':>12}{'10k s/box':>11}"
    )
    print(head)
    print("-" * len(head))

    def line(family: str, net: str, group: list[dict]) -> str:
        pairs = sum(r["outs"] for r in group)
        lo_n = sum(int(r["bad_lo"].sum()) for r in group)
        hi_n = sum(int(r["bad_hi"].sum()) for r in group)
        either = sum(int((r["bad_lo"] | r["bad_hi"]).sum()) for r in group)
        worst = max(
            [0.0]
            + [float(r["short_lo"][r["bad_lo"]].max()) for r in group if r["bad_lo"].any()]
            + [float(r["short_hi"][r["bad_hi"]].max()) for r in group if r["bad_hi"].any()]
        )
        ratios = np.concatenate([r["ratio"] for r in group])
        t_a = statistics.median(r["t_a"] for r in group)
        t_s = statistics.median(r["t_s"] for r in group)
        return (
            f"{family:<10}{net:<18}{len(group):>6}{pairs:>7}{either:>10}{f'{lo_n}/{hi_n}':>7}"
            f"{worst:>13.3e}{np.median(ratios):>11.4f}{ratios.min():>11.4f}{t_a:>12.3f}"
            f"{t_s:>11.3f}"
        )

    by_net: dict[tuple[str, str], list[dict]] = defaultdict(list)
    by_family: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_net[(r["family"], r["net"])].append(r)
        by_family[r["family"]].append(r)
    for (family, net), group in by_net.items():
        print(line(family, net, group))
    print("-" * len(head))
    for family, group in by_family.items():
        print(line(family, "(all)", group))
    print(line("total", "", rows))
    legend(
        "pairs = boxes x outputs; narrower = pairs where the attack's inner range is narrower "
        f"than the samples' on either side by > {REL_TOL:g} relative (lo/hi: on which side); "
        "worst short = largest such shortfall (absolute); ratio = attack inner width / samples' "
        "inner width over all pairs; times are medians per box"
    )
    for r in rows:
        for side, k in (("lower", 0), ("upper", 1)):
            bad = r["bad_lo"] if k == 0 else r["bad_hi"]
            short = r["short_lo"] if k == 0 else r["short_hi"]
            for j in np.flatnonzero(bad):
                width = r["samples"][1][j] - r["samples"][0][j]
                print(
                    f"  narrower: {r['family']} {r['net']} {r['box']} output {j} {side}: attack "
                    f"{r['attack'][k][j]:.9f}, samples {r['samples'][k][j]:.9f}, shortfall "
                    f"{short[j]:.3e} ({short[j] / width:.1%} of the samples' range)"
                )
    if args.detail:
        print()
        head = (
            f"{'family':<10}{'network':<18}{'box':<16}{'outs':>5}{'narrower':>10}"
            f"{'med ratio':>11}{'min ratio':>11}{'thor s':>9}{'10k s':>8}"
        )
        print(head)
        print("-" * len(head))
        for r in rows:
            print(
                f"{r['family']:<10}{r['net']:<18}{r['box']:<16}{r['outs']:>5}"
                f"{int((r['bad_lo'] | r['bad_hi']).sum()):>10}{np.median(r['ratio']):>11.4f}"
                f"{r['ratio'].min():>11.4f}{r['t_a']:>9.3f}{r['t_s']:>8.3f}"
            )
    print()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tables", default="A,B", help="which tables to print (A, B or A,B)")
    ap.add_argument("--detail", action="store_true", help="one row per record / box as well")
    ap.add_argument(
        "--nets", default="1_1,2_1,3_3,4_5,5_9", help="ACAS Xu nets for table B's prop_1..4, or all"
    )
    ap.add_argument("--families", default=",".join(FAMILIES), help="network families of table B")
    ap.add_argument(
        "--max-boxes",
        type=int,
        default=0,
        help="table B: at most this many boxes per mnistfc / verivital network (0 = all)",
    )
    ap.add_argument("--seed", type=int, default=0, help="table B's samples use seed + 1")
    ap.add_argument("--atol", type=float, default=1e-4, help="table A: 'exact' tolerance")
    ap.add_argument("--repeat", type=int, default=3, help="table A: timed runs per box (median)")
    args = ap.parse_args()
    tables = {t.strip().upper() for t in args.tables.split(",")}
    unknown = set(args.families.split(",")) - set(FAMILIES)
    if unknown or not tables <= {"A", "B"}:
        ap.error(f"unknown table(s) or famil(ies): {sorted(unknown | (tables - {'A', 'B'}))}")
    root = benchmarks_dir()
    t0 = time.perf_counter()
    print(f"benchmarks: {root}; BLAS threads {os.environ.get('OMP_NUM_THREADS')}; {load_line()}")
    print()
    graphs = Graphs()
    if "A" in tables:
        table_a(root, graphs, args)
    if "B" in tables:
        table_b(root, graphs, args)
    print(f"total {time.perf_counter() - t0:.0f} s; {load_line()}")


if __name__ == "__main__":
    main()
