"""Linear relaxation of max pooling, for back-substitution.

For one window with input bounds ``[l_i, u_i]`` let ``i*`` be the input with the largest lower
bound. Then ``y >= x_{i*}`` always (y is a max), and ``y <= max_i u_i``. When ``l_{i*}`` is at
least every other input's upper bound, the window is decided and ``y = x_{i*}`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..graph import MaxPool
from ..graph.linear import _channels_back, _channels_first


@dataclass
class MaxPoolRelaxation:
    argmax: np.ndarray  # kernel-offset index of i* per output cell (channels-first layout)
    decided: np.ndarray  # True where y = x_{i*} exactly
    upper: np.ndarray  # max_i u_i per output cell (channels-first layout)


def maxpool_relaxation(node: MaxPool, l: np.ndarray, u: np.ndarray) -> MaxPoolRelaxation:
    """Relaxation of ``node`` for input bounds ``l``, ``u`` (batched, in the node's layout)."""
    lw = np.stack(node.windows(l))
    uw = np.stack(node.windows(u))
    k = lw.argmax(axis=0)
    best_l = np.take_along_axis(lw, k[None], axis=0)[0]
    others = uw.copy()
    np.put_along_axis(others, k[None], -np.inf, axis=0)
    decided = best_l >= others.max(axis=0)
    return MaxPoolRelaxation(k, decided, uw.max(axis=0))


def maxpool_backward(node: MaxPool, r: MaxPoolRelaxation, a: np.ndarray):
    """Upper-bound back-substitution through the pooling node.

    ``a`` holds coefficients on the output, shape ``(B, K, *out_shape)``; relaxation arrays
    have shape ``(B, *out)``. Returns the coefficients on the input and the constant term
    ``(B, K)``.
    """
    nsp = node.window.ndim
    cl = node.channels_last
    a_cf = _channels_first(a, nsp, cl)
    decided = r.decided[:, None]
    pos = np.maximum(a_cf, 0.0)
    to_x = np.where(decided, a_cf, np.minimum(a_cf, 0.0))
    const = np.where(decided, 0.0, pos) * r.upper[:, None]
    bias = const.reshape(*const.shape[:2], -1).sum(axis=-1)
    spatial = node._spatial
    padded = np.zeros((*to_x.shape[:-nsp], *node.window.padded_spatial(spatial)))
    argmax = r.argmax[:, None]
    for j, (_, sl) in enumerate(node.window.offsets(spatial)):
        padded[(..., *sl)] += np.where(argmax == j, to_x, 0.0)
    g = node.window.crop(padded, spatial)
    return _channels_back(g, nsp, cl), bias


def maxpool_relaxed_forward(node: MaxPool, r: MaxPoolRelaxation, x: np.ndarray, positive):
    """Value of the chosen relaxation on a batch ``x`` of shape ``(B, K, *in_shape)``:
    ``x_{i*}`` where the row's coefficient is negative or the window decided, else ``max u``."""
    nsp = node.window.ndim
    wins = np.stack(_window_values(node, x))
    pick = np.take_along_axis(wins, r.argmax[None, :, None], axis=0)[0]
    out = np.where(positive & ~r.decided[:, None], r.upper[:, None], pick)
    return _channels_back(out, nsp, node.channels_last)


def _window_values(node: MaxPool, x):
    nsp = node.window.ndim
    xp = node.window.pad(_channels_first(x, nsp, node.channels_last), 0.0)
    return [xp[(..., *sl)] for _, sl in node.window.offsets(node._spatial)]
