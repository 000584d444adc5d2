"""auto_LiRPA's default CROWN rule, re-implemented independently on ACAS Xu, against its figures.

    python benchmarks/lirpa_rule.py

auto_LiRPA 0.7's ``method="CROWN"`` (as read from its source): each pre-activation layer gets
interval bounds from the previous layers' final bounds first; neurons those prove stable keep
them, the others get back-substituted CROWN bounds that replace (not intersect) them, and when
more than 90% of a layer is unstable every neuron gets CROWN bounds. ReLU lines: the chord above,
slope 1 below where ``u / (u - l) > 0.5``, else 0. Output bounds are not intersected with
intervals. This plain numpy version (Dense/ReLU chains only) prints its mean output width next
to the reference's ``CROWN`` and ``CROWN_nosparse`` figures and nnrange's adaptive-slope crown:
it explains why the latter, tighter on every intermediate neuron, can still end up wider on a
case (the adaptive slope choice is not monotone in the bounds).
"""

from __future__ import annotations

import json

import numpy as np
from common import benchmarks_dir

import nnrange
from nnrange.engines import crown

MIN_SPARSITY = 0.9  # above this share of unstable neurons, every neuron is back-substituted


def _dense_chain(graph: nnrange.Graph) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` of each Dense node, ``W`` as (out, in): the ACAS Xu nets are Dense/ReLU only."""
    return [
        (np.asarray(n.weight).T, np.asarray(n.bias).reshape(-1))
        for n in graph
        if n.kind == "linear" and n.op == "Dense"
    ]


def _relu_lines(lo: np.ndarray, hi: np.ndarray):
    lo_r, hi_r = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    hi_r = np.maximum(hi_r, lo_r + 1e-8)
    up_slope = hi_r / (hi_r - lo_r)
    return (up_slope > 0.5).astype(float), up_slope, -lo_r * up_slope


def _upper(layers, lines, k: int, rows: np.ndarray, center, radius) -> np.ndarray:
    """Upper bounds of ``rows @ z_k`` (z_k: layer k's pre-activation) over the box."""
    w, b = layers[k]
    a, bias = rows @ w, rows @ b
    for j in range(k - 1, -1, -1):
        low, up, up_bias = lines[j]
        pos, neg = np.maximum(a, 0.0), np.minimum(a, 0.0)
        bias = bias + pos @ up_bias
        a = pos * up + neg * low
        w, b = layers[j]
        bias, a = bias + a @ b, a @ w
    return a @ center + np.abs(a) @ radius + bias


def lirpa_crown(layers, lo: np.ndarray, hi: np.ndarray, sparse: bool = True):
    """Output bounds by auto_LiRPA's default rule (``sparse=False``: textbook CROWN)."""
    center, radius = (lo + hi) / 2, (hi - lo) / 2
    w, b = layers[0]
    mid, rad = w @ center + b, np.abs(w) @ radius
    lower, upper = mid - rad, mid + rad
    lines = [_relu_lines(lower, upper)]
    for k in range(1, len(layers)):
        w, b = layers[k]
        h_lo, h_hi = np.maximum(lower, 0.0), np.maximum(upper, 0.0)
        mid, rad = w @ ((h_lo + h_hi) / 2) + b, np.abs(w) @ ((h_hi - h_lo) / 2)
        lower, upper = mid - rad, mid + rad
        n = len(b)
        if k == len(layers) - 1:
            eye = np.eye(n)
            return -_upper(layers, lines, k, -eye, center, radius), _upper(
                layers, lines, k, eye, center, radius
            )
        doubt = np.flatnonzero((lower < 0) & (upper > 0))
        if not sparse or doubt.size > MIN_SPARSITY * n:
            doubt = np.arange(n)
        if doubt.size:
            rows = np.eye(n)[doubt]
            upper[doubt] = _upper(layers, lines, k, rows, center, radius)
            lower[doubt] = -_upper(layers, lines, k, -rows, center, radius)
        lines.append(_relu_lines(lower, upper))
    raise ValueError("the network has no Dense layer")


def main() -> None:
    root = benchmarks_dir()
    ref = json.loads((root / "reference" / "lirpa_bounds.json").read_text())
    widths = {(r["net"], r["box_id"], r["method"]): r["mean_width"] for r in ref["records"]}
    print(
        f"{'case':<16} {'rule':>11} {'ref CROWN':>11} {'ratio':>8} {'textbook':>11} "
        f"{'ref nosparse':>12} {'ratio':>8} {'nnrange':>11}"
    )
    cases = sorted({(r["net"], r["box_id"]) for r in ref["records"] if "ACAS" in r["net"]})
    for net, box_id in cases:
        graph = nnrange.load(root / "acasxu" / f"{net}_batch_2000.onnx")
        box = ref["boxes"][box_id]
        lo, hi = np.array(box["lower"], float), np.array(box["upper"], float)
        layers = _dense_chain(graph)
        rule = np.mean(np.subtract(*lirpa_crown(layers, lo, hi)[::-1]))
        text = np.mean(np.subtract(*lirpa_crown(layers, lo, hi, sparse=False)[::-1]))
        ours = crown.run(
            graph, nnrange.Box.from_bounds(lo, hi, graph.input_shape), two_slopes=False
        )
        mine = float(np.mean(ours.upper - ours.lower))
        r_sparse, r_text = widths[(net, box_id, "CROWN")], widths[(net, box_id, "CROWN_nosparse")]
        print(
            f"{net[13:]:>4} {box_id:<11} {rule:>11.6g} {r_sparse:>11.6g} {rule / r_sparse:>8.5f} "
            f"{text:>11.6g} {r_text:>12.6g} {text / r_text:>8.5f} {mine:>11.6g}"
        )


if __name__ == "__main__":
    main()
