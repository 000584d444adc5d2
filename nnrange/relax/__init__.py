"""Linear relaxations shared by every engine that needs them (CROWN, alpha-CROWN, MILP's LP).

``activation_relaxation(node, l, u)`` dispatches on the activation node's type. Adding an
activation kind means adding its relaxation function here and one entry in ``_RELAX``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from ..graph import Clip, Elu, LeakyRelu, Relu, Sigmoid, Softplus, Tanh
from ..graph.core import ActivationNode
from . import activations as act
from .activations import Relaxation


def _sigmoid_d(z):
    s = expit(z)
    return s * (1 - s)


_RELAX = {
    Relu: lambda n, l, u, a: act.relu(l, u, a),
    LeakyRelu: lambda n, l, u, a: act.leaky_relu(l, u, n.alpha, a),
    Clip: lambda n, l, u, a: act.clip(l, u, n.low, n.high),
    Sigmoid: lambda n, l, u, a: act.s_shaped(expit, _sigmoid_d, l, u),
    Tanh: lambda n, l, u, a: act.s_shaped(np.tanh, lambda z: 1 - np.tanh(z) ** 2, l, u),
    Softplus: lambda n, l, u, a: act.convex(lambda z: np.logaddexp(0, z), expit, l, u),
    Elu: lambda n, l, u, a: act.elu(l, u, n.alpha),
}


def activation_relaxation(node: ActivationNode, l, u, lower_slope=None) -> Relaxation:
    """``(lower_slope, lower_intercept, upper_slope, upper_intercept)`` of ``node`` on [l, u].

    ``lower_slope`` overrides the optimisable slope of ReLU-family nodes (see ``alpha_range``).
    """
    try:
        fn = _RELAX[type(node)]
    except KeyError:
        raise NotImplementedError(f"no linear relaxation for {node.op} nodes") from None
    return fn(node, l, u, lower_slope)


def alpha_range(node: ActivationNode) -> tuple[float, float] | None:
    """The interval of sound slopes for the lower line of unstable neurons (the line through
    the origin), or None if the lower line has nothing to optimise. A LeakyReLU with alpha > 1
    is concave: its line through the origin is the *upper* one and its lower line the chord, so
    it has none."""
    if isinstance(node, Relu):
        return (0.0, 1.0)
    if isinstance(node, LeakyRelu) and node.alpha <= 1:
        return (node.alpha, 1.0)
    return None


def unstable(node: ActivationNode, l, u) -> np.ndarray:
    """Neurons whose relaxation on [l, u] is not exact (so tighter [l, u] can help)."""
    if isinstance(node, (Relu, LeakyRelu)):
        return (l < 0) & (u > 0)
    if isinstance(node, Clip):
        return ((l < node.low) & (u > node.low)) | ((l < node.high) & (u > node.high))
    return u > l


def inexact(consumer, l, u) -> np.ndarray:
    """Entries of a tensor bounded by [l, u] where ``consumer``'s relaxation is not exact:
    ``unstable`` for activations, any entry not pinned to a value for other nonlinear nodes."""
    return unstable(consumer, l, u) if consumer.kind == "activation" else u > l


def unstable_counts(graph, bounds: dict) -> np.ndarray:
    """Per box, how many neurons of ``graph``'s nonlinear nodes the bounds leave inexact.

    ``bounds[name] = (lower, upper)``, each ``(n_boxes, ...)``, for the tensors feeding nonlinear
    nodes: the binaries a MILP of each box needs, the work a branch and bound leaf would face.
    """
    consumers = graph.consumers()
    counts = 0
    for name, (lo, hi) in bounds.items():
        n = lo.shape[0]
        for c in consumers.get(name, []):
            counts = counts + inexact(graph.nodes[c], lo, hi).reshape(n, -1).sum(axis=1)
    return np.asarray(counts)


__all__ = [
    "Relaxation",
    "activation_relaxation",
    "alpha_range",
    "inexact",
    "unstable",
    "unstable_counts",
]
