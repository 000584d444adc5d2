"""Inner bounds from concrete inputs: box centre, corners and uniform samples.

Every value reported here is attained by a stored witness input, so inner bounds are never
guesses; they only show how much of the outer range is surely reachable.
"""

from __future__ import annotations

import time

import numpy as np

from ..box import Box
from ..graph import Graph
from ..result import BoundsResult

#: Largest number of float64 values evaluated at once (keeps memory near 100 MB).
_CHUNK_VALUES = 12_000_000


def candidate_points(box: Box, samples: int, corners: int, rng: np.random.Generator) -> np.ndarray:
    """Centre, corners and uniform samples of every box: ``(B, P, *input_shape)``."""
    parts = [box.center[:, None]]
    if corners > 0:
        parts.append(box.corners(corners, rng))
    if samples > 0:
        parts.append(box.uniform(samples, rng))
    return np.concatenate(parts, axis=1)


def evaluate(graph: Graph, points: np.ndarray) -> np.ndarray:
    """Outputs of the graph for points ``(B, P, *input_shape)`` -> ``(B, P, n_outputs)``."""
    b, p = points.shape[:2]
    flat = points.reshape(b * p, *graph.input_shape)
    width = max([graph.input_size] + [n.out_size for n in graph])
    step = max(1, _CHUNK_VALUES // max(width, 1))
    out = [
        graph.forward(flat[i : i + step]).reshape(-1, graph.output_size)
        for i in range(0, b * p, step)
    ]
    return np.concatenate(out).reshape(b, p, graph.output_size)


def inner_from_points(
    graph: Graph, box: Box, points: np.ndarray, method: str, elapsed: float = 0.0
) -> BoundsResult:
    """Inner bounds and witnesses from evaluated points."""
    t0 = time.perf_counter()
    values = evaluate(graph, points)
    i_lo = values.argmin(axis=1)
    i_hi = values.argmax(axis=1)
    rows = np.arange(box.n)[:, None]
    return BoundsResult(
        n_boxes=box.n,
        n_outputs=graph.output_size,
        input_shape=graph.input_shape,
        output_shape=graph.output_shape,
        inner_lower=values.min(axis=1),
        inner_upper=values.max(axis=1),
        witness_lower=points[rows, i_lo],
        witness_upper=points[rows, i_hi],
        method=method,
        batched=box.batched,
        timings={method: elapsed + time.perf_counter() - t0},
    )


def run(
    graph: Graph, box: Box, samples: int = 1000, corners: int = 256, seed: int = 0
) -> BoundsResult:
    """Inner bounds from the box centre, ``corners`` corners and ``samples`` uniform points."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    points = candidate_points(box, samples, corners, rng)
    return inner_from_points(graph, box, points, "sample", time.perf_counter() - t0)
