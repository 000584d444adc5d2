"""ReLU-splitting branch and bound on mnistfc unsafe regions: how far the proven bound gets in a
fixed time, with and without alpha/beta-CROWN (one thread, one region at a time).

    python benchmarks/relu_bab.py [--seconds 20] [--nets 256x2,256x4] [--props 1_0.03,0_0.05]
                                  [--regions 2]

For each net, property and its first ``--regions`` unsafe regions (VNN-LIB disjuncts: "class j
beats the true class"), ``bab.minimize`` runs in property mode (target 0) with the same time
limit under two settings, one after the other:

- ``crown``: pieces bounded by CROWN only (``alpha_steps=0``) and the box's intermediate
  bounds by CROWN (``ROOT_ALPHA_SHARE = 0``), as before alpha/beta reached ReLU splitting;
- ``alpha+beta``: the defaults (alpha-CROWN's intermediate bounds for the box; open pieces
  refined with optimised slopes and beta-CROWN's split multipliers).

Prints the proven lower bound of the region's objective (the region is safe once it is above
0), the result and the number of pieces. Higher lower bounds at the same time are better.
"""

from __future__ import annotations

import argparse
import time

from common import benchmarks_dir, single_thread

single_thread()

import numpy as np  # noqa: E402

import nnrange  # noqa: E402
from nnrange.engines import bab  # noqa: E402
from nnrange.spec import load_vnnlib  # noqa: E402


def _search(graph, case, a, b, seconds: float, plain: bool) -> bab.Search:
    w = np.zeros((a.shape[0], graph.output_size))
    w[:, : a.shape[1]] = a
    share = bab.ROOT_ALPHA_SHARE
    bab.ROOT_ALPHA_SHARE = 0.0 if plain else share
    try:
        return bab.minimize(
            graph,
            case.lo.reshape(1, -1),
            case.hi.reshape(1, -1),
            w,
            b,
            target=0.0,
            time_limit=seconds,
            branching="relu",
            alpha_steps=0 if plain else bab.ALPHA_STEPS,
        )
    finally:  # bounds cut short by the deadline are not reused by the next setting
        bab.ROOT_ALPHA_SHARE = share


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="time limit per search")
    ap.add_argument("--nets", default="256x2,256x4")
    ap.add_argument("--props", default="1_0.03,0_0.05")
    ap.add_argument("--regions", type=int, default=2, help="unsafe regions per property")
    args = ap.parse_args()
    root = benchmarks_dir() / "mnistfc"
    head = f"{'net':8s} {'property':9s} {'region':>6s}"
    print(f"{head} {'setting':11s} {'lower':>9s} {'result':8s} {'pieces':>7s} {'s':>6s}")
    totals = {"crown": 0, "alpha+beta": 0}
    for net in args.nets.split(","):
        graph = nnrange.load(root / f"mnist-net_{net}.onnx")
        for prop in args.props.split(","):
            case = load_vnnlib(root / f"prop_{prop}.vnnlib").cases[0]
            for r, (a, b) in enumerate(case.unsafe[: args.regions]):
                for name in totals:
                    t0 = time.perf_counter()
                    s = _search(graph, case, a, b, args.seconds, plain=name == "crown")
                    result = "safe" if s.lower > 0 else "unsafe" if s.value <= 0 else "open"
                    totals[name] += result != "open"
                    print(
                        f"{net:8s} {prop:9s} {r:6d} {name:11s} {s.lower:9.4f} {result:8s} "
                        f"{s.pieces:7d} {time.perf_counter() - t0:6.1f}",
                        flush=True,
                    )
    print("decided regions: " + ", ".join(f"{k} {v}" for k, v in totals.items()))


if __name__ == "__main__":
    main()
