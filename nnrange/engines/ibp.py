"""Interval bound propagation: the baseline sound engine.

Affine nodes propagate the box in centre/radius form (``W c + b``, ``|W| r``: ``LinearNode
.interval``), two passes of the node's map per layer. Activations and max pooling map interval
ends directly.
"""

from __future__ import annotations

import time

import numpy as np

from ..box import Box
from ..graph import Graph
from ..result import BoundsResult


def interval_bounds(
    graph: Graph, lo: np.ndarray, hi: np.ndarray, keep: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Bounds ``(lower, upper)`` of every tensor of the graph over the boxes ``[lo, hi]``.

    ``lo`` and ``hi`` have shape ``(B, *graph.input_shape)``. With ``keep=False`` intermediate
    bounds are dropped once used and only the output's remain.
    """
    bounds = {graph.input_name: (lo, hi)}
    last_use = {} if keep else graph.last_uses()
    for node in graph:
        los = [bounds[i][0] for i in node.inputs]
        his = [bounds[i][1] for i in node.inputs]
        bounds[node.name] = node.interval(
            *((los[0], his[0]) if node.kind == "activation" else (los, his))
        )
        for name in last_use.get(node.name, ()):
            del bounds[name]
    return bounds


def run(graph: Graph, box: Box) -> BoundsResult:
    """Outer bounds of every output by interval arithmetic."""
    t0 = time.perf_counter()
    lower, upper = interval_bounds(graph, box.lo, box.hi, keep=False)[graph.output]
    return BoundsResult(
        n_boxes=box.n,
        n_outputs=graph.output_size,
        input_shape=graph.input_shape,
        output_shape=graph.output_shape,
        lower=lower.reshape(box.n, -1),
        upper=upper.reshape(box.n, -1),
        method="ibp",
        batched=box.batched,
        timings={"ibp": time.perf_counter() - t0},
    )
