"""IBP cost versus a plain batched numpy forward pass (one thread).

    python benchmarks/ibp_speed.py [--boxes 1000] [--repeat 7]

For a batch of boxes on an ACAS Xu network and on mnist-net_256x6, prints the median time of:
a hand-written numpy forward pass (x @ W + b, ReLU) of the box centres, the layer graph's own
forward pass, and IBP over the boxes. Target: IBP at most 3x the plain forward pass.
"""

from __future__ import annotations

import argparse

from common import benchmarks_dir, median_time, single_thread

single_thread()

import numpy as np  # noqa: E402

import nnrange  # noqa: E402
from nnrange.engines.ibp import interval_bounds  # noqa: E402
from nnrange.graph import Dense, Relu  # noqa: E402
from nnrange.spec import load_vnnlib  # noqa: E402


def plain_forward(layers, x):
    for kind, w, b in layers:
        x = x @ w + b if kind == "dense" else np.maximum(x, 0.0)
    return x


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--boxes", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    root = benchmarks_dir()
    cases = [
        (
            "ACAS Xu 1_1",
            root / "acasxu/ACASXU_run2a_1_1_batch_2000.onnx",
            root / "acasxu/prop_1.vnnlib",
        ),
        ("mnist 256x6", root / "mnistfc/mnist-net_256x6.onnx", root / "mnistfc/prop_0_0.03.vnnlib"),
    ]
    print(f"{args.boxes} boxes, median of {args.repeat} runs, one thread\n")
    print(f"{'network':<14} {'numpy fwd':>10} {'graph fwd':>10} {'ibp':>10} {'ibp/numpy':>10}")
    for label, net, prop in cases:
        graph = nnrange.load(net)
        case = load_vnnlib(prop).cases[0]
        rng = np.random.default_rng(0)
        centers = case.lo + rng.random((args.boxes, case.lo.size)) * (case.hi - case.lo)
        radius = 0.01 * (case.hi - case.lo)
        lo = (centers - radius).reshape(args.boxes, *graph.input_shape)
        hi = (centers + radius).reshape(args.boxes, *graph.input_shape)
        layers = []
        for node in graph:
            if isinstance(node, Dense):
                layers.append(("dense", node.weight, node.bias if node.bias is not None else 0.0))
            elif isinstance(node, Relu):
                layers.append(("relu", None, None))
        # the plain pass starts from the flattened (normalised) input of the first Dense layer
        first_dense = next(n for n in graph if isinstance(n, Dense))
        x_plain = graph.forward(lo, all_values=True)[first_dense.inputs[0]].reshape(args.boxes, -1)
        assert np.allclose(
            plain_forward(layers, x_plain).reshape(args.boxes, -1),
            graph.forward(lo).reshape(args.boxes, -1),
        )
        t_np = median_time(lambda a=layers, x=x_plain: plain_forward(a, x), args.repeat)
        t_graph = median_time(lambda g=graph, x=lo: g.forward(x), args.repeat)
        t_ibp = median_time(
            lambda g=graph, a=lo, b=hi: interval_bounds(g, a, b, keep=False), args.repeat
        )
        print(
            f"{label:<14} {t_np * 1e3:>8.2f}ms {t_graph * 1e3:>8.2f}ms {t_ibp * 1e3:>8.2f}ms "
            f"{t_ibp / t_np:>9.2f}x"
        )


if __name__ == "__main__":
    main()
