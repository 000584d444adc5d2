"""Linear regions of piecewise-linear networks.

Around a point x, a network of affine nodes, ReLU/LeakyReLU/Clip activations and max pooling is
affine on the polyhedron of inputs that share x's activation pattern. ``linear_region`` returns
that affine map and the polyhedron; ``polish`` maximises an output exactly over it with an LP
(and hops to neighbouring regions), which makes inner bounds land on the true local optimum
instead of near it. The brute-force checks of the exact engines use the same machinery.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from ..graph import Clip, Graph, LeakyRelu, MaxPool, Relu
from ..graph.linear import _channels_back


@dataclass
class Region:
    """``y = A x + b`` for every x with ``G x <= h`` (x, y flattened)."""

    A: np.ndarray
    b: np.ndarray
    G: np.ndarray
    h: np.ndarray


def piecewise_linear(graph: Graph) -> bool:
    """True when every node is affine, ReLU-family, Clip or max pooling."""
    return all(n.kind == "linear" or isinstance(n, (Relu, LeakyRelu, Clip, MaxPool)) for n in graph)


def linear_region(graph: Graph, x: np.ndarray, pattern: dict | None = None) -> Region:
    """The affine map and polyhedron of the activation pattern at x (one sample).

    ``pattern`` may fix some nodes' patterns (boolean/int arrays keyed by node name) instead
    of reading them from x, which lets callers enumerate patterns.
    """
    d = graph.input_size
    x = np.asarray(x, dtype=np.float64).reshape(graph.input_shape)
    values = graph.forward(x[None], all_values=True)
    # affine forms: coefficient (d, *shape) and offset (*shape) per tensor
    forms = {
        graph.input_name: (np.eye(d).reshape(d, *graph.input_shape), np.zeros(graph.input_shape))
    }
    rows_g, rows_h = [], []

    def require(coef, off, sign):
        """Add constraints sign * (coef x + off) <= 0 elementwise (coef: (d, n), off: (n,))."""
        rows_g.append((sign * coef).T)
        rows_h.append(-sign * off)

    for node in graph:
        if node.kind == "linear":
            coefs = [forms[i][0] for i in node.inputs]
            offs = [forms[i][1][None] for i in node.inputs]
            forms[node.name] = (node.linear(*coefs), node.forward(*offs)[0])
            continue
        coef, off = forms[node.inputs[0]]
        z = values[node.inputs[0]][0]
        c2, o2 = coef.reshape(d, -1), off.reshape(-1)
        zf = z.reshape(-1)
        if isinstance(node, (Relu, LeakyRelu)):
            active = pattern[node.name].reshape(-1) if pattern and node.name in pattern else zf >= 0
            slope = np.where(active, 1.0, 0.0 if isinstance(node, Relu) else node.alpha)
            require(c2[:, active], o2[active], -1.0)  # z >= 0 where active
            require(c2[:, ~active], o2[~active], 1.0)  # z <= 0 elsewhere
            forms[node.name] = ((c2 * slope).reshape(coef.shape), (o2 * slope).reshape(off.shape))
        elif isinstance(node, Clip):
            piece = (
                pattern[node.name].reshape(-1)
                if pattern and node.name in pattern
                else np.where(zf <= node.low, 0, np.where(zf >= node.high, 2, 1))
            )
            lo_p, mid, hi_p = piece == 0, piece == 1, piece == 2
            require(c2[:, lo_p], o2[lo_p] - node.low, 1.0)
            require(c2[:, mid], o2[mid] - node.low, -1.0)
            require(c2[:, mid], o2[mid] - node.high, 1.0)
            require(c2[:, hi_p], o2[hi_p] - node.high, -1.0)
            new_c = np.where(mid, c2, 0.0)
            new_o = np.where(lo_p, node.low, np.where(hi_p, node.high, o2))
            forms[node.name] = (new_c.reshape(coef.shape), new_o.reshape(off.shape))
        elif isinstance(node, MaxPool):
            nsp = node.window.ndim
            # windows of the affine forms: treat the d coefficient rows like a batch
            cw = np.stack(node.windows(coef))  # (K, d, ...)
            ow = np.stack(node.windows(off[None]))[:, 0]  # (K, ...)
            zw = np.stack(node.windows(z[None]))[:, 0]
            win = pattern[node.name] if pattern and node.name in pattern else zw.argmax(axis=0)
            best_c = np.take_along_axis(cw, win[None, None], axis=0)[0]
            best_o = np.take_along_axis(ow, win[None], axis=0)[0]
            for k in range(cw.shape[0]):
                valid = np.isfinite(ow[k]) & (win != k)
                diff_c = (cw[k] - best_c).reshape(d, -1)
                diff_o = (ow[k] - best_o).reshape(-1)
                mask = valid.reshape(-1)
                require(diff_c[:, mask], diff_o[mask], 1.0)  # x_k <= x_winner
            forms[node.name] = (
                _channels_back(best_c, nsp, node.channels_last),
                _channels_back(best_o[None], nsp, node.channels_last)[0],
            )
        else:
            raise NotImplementedError(f"{node.op} nodes are not piecewise linear")
    coef, off = forms[graph.output]
    g = np.concatenate(rows_g) if rows_g else np.zeros((0, d))
    h = np.concatenate(rows_h) if rows_h else np.zeros(0)
    finite = np.isfinite(h)  # an infinite threshold (Clip without a low or high end) is no limit
    g, h = g[finite], h[finite]
    return Region(coef.reshape(d, -1).T, off.reshape(-1), g, h)


def region_optimum(region: Region, lo: np.ndarray, hi: np.ndarray, objective: np.ndarray):
    """Maximise ``objective . x`` over the region within the box; None when infeasible."""
    res = linprog(
        -objective,
        A_ub=region.G if region.G.size else None,
        b_ub=region.h if region.G.size else None,
        bounds=np.stack([lo.reshape(-1), hi.reshape(-1)], axis=1),
        method="highs",
    )
    return res.x if res.status == 0 else None


def region_minmax(region: Region, lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
    """Minimise ``max_i y_i = max_i (A_i x + b_i)`` over the region within the box: the LP
    ``min t`` subject to ``A x + b <= t``. None when infeasible."""
    k, d = region.A.shape
    a_ub = np.hstack([region.A, -np.ones((k, 1))])
    b_ub = -region.b
    if region.G.size:
        a_ub = np.vstack([a_ub, np.hstack([region.G, np.zeros((len(region.G), 1))])])
        b_ub = np.concatenate([b_ub, region.h])
    bounds = np.vstack([np.stack([lo.reshape(-1), hi.reshape(-1)], axis=1), [[-np.inf, np.inf]]])
    res = linprog(np.eye(d + 1)[d], A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    return res.x[:d] if res.status == 0 else None


def polish(
    graph: Graph,
    lo: np.ndarray,
    hi: np.ndarray,
    x: np.ndarray,
    output: int,
    sign: float,
    rounds: int = 6,
) -> np.ndarray:
    """Improve ``sign * y[output]`` from x by LPs over linear regions, hopping to a neighbour
    region with a small gradient step after each LP. Returns the best point found."""
    lo, hi = lo.reshape(-1), hi.reshape(-1)
    best = np.asarray(x, dtype=np.float64).reshape(-1)
    best_v = sign * graph.forward(best.reshape(graph.input_shape)[None]).reshape(-1)[output]
    cur = best
    width = hi - lo
    for _ in range(rounds):
        region = linear_region(graph, cur)
        cand = region_optimum(region, lo, hi, sign * region.A[output])
        if cand is None:
            break
        cand = np.clip(cand, lo, hi)
        v = sign * graph.forward(cand.reshape(graph.input_shape)[None]).reshape(-1)[output]
        if v > best_v + 1e-12 * (1 + abs(best_v)):
            best, best_v = cand, v
        elif v < best_v - 1e-12 * (1 + abs(best_v)):
            break
        cot = np.zeros((1, *graph.output_shape))
        cot.reshape(-1)[output] = sign
        _, grad = graph.value_and_grad(cand.reshape(graph.input_shape)[None], cot)
        step = np.clip(cand + 1e-4 * width * np.sign(grad.reshape(-1)), lo, hi)
        if np.array_equal(step, cur):
            break
        cur = step
    return best.reshape(graph.input_shape)
