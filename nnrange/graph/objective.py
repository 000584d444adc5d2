"""Graphs whose outputs are linear functions of another graph's outputs."""

from __future__ import annotations

import numpy as np

from ..errors import EngineError
from .core import Graph
from .linear import Dense, Reshape


def with_objective(graph: Graph, weight, bias=None) -> Graph:
    """``graph`` followed by ``y -> weight @ y.flat + bias``: ``weight`` is ``(k, n_outputs)``.

    Every engine then bounds the k linear functions (output differences, property rows)
    directly, which is tighter than combining per-output bounds.
    """
    w = np.atleast_2d(np.asarray(weight, dtype=np.float64))
    if w.ndim != 2 or w.shape[1] != graph.output_size:
        raise EngineError(
            f"objective weights must have shape (k, {graph.output_size}) for a model with "
            f"{graph.output_size} outputs, got {np.shape(weight)}"
        )
    b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    nodes = list(graph)
    name = "objective"
    while name in graph.shapes or f"{name}_flat" in graph.shapes:  # objectives stack
        name += "_"
    src = graph.output
    if len(graph.output_shape) != 1:
        nodes.append(Reshape(f"{name}_flat", [src], (graph.output_size,)))
        src = f"{name}_flat"
    nodes.append(Dense(name, [src], w.T, b))
    return Graph(graph.input_name, graph.input_shape, nodes, name, name=graph.name)
