"""alpha-CROWN: CROWN with the lower-bound slopes of unstable ReLU-family neurons optimised.

Any slope in the node's ``alpha_range`` gives a sound lower line, so every slope setting yields a
sound bound and the best one seen is kept. Each output bound (lower and upper separately) gets
its own slopes. The bound is piecewise linear in the slopes; its gradient is obtained exactly
(almost everywhere) without an autodiff framework: for a fixed choice of relaxation lines the
bound equals the coefficient array at any node times the value of that node's input in the
*relaxed network* evaluated at the maximising box corner, so one forward pass of the relaxed
network gives every slope's gradient. Slopes are updated by projected Adam.
"""

from __future__ import annotations

import time

import numpy as np

from ..box import Box
from ..graph import Graph, MaxPool
from ..relax import alpha_range, unstable
from ..relax.pooling import maxpool_relaxed_forward
from ..result import BoundsResult
from . import crown


def _relaxed_forward(state: crown.State, target: str, record: dict, x: np.ndarray) -> dict:
    """Values of every tensor in the relaxed network at per-row inputs ``x`` (B, K, *in)."""
    g = state.graph
    b, k = x.shape[:2]
    values = {g.input_name: x}
    for node in state.nodes_before(target)[::-1]:
        if node.kind == "linear":
            if any(i not in values for i in node.inputs):
                continue
            ins = [values[i].reshape(b * k, *g.shapes[i]) for i in node.inputs]
            values[node.name] = node.forward(*ins).reshape(b, k, *node.out_shape)
            continue
        a = record.get(node.name)
        if a is None:
            continue
        rel = state.relax[node.name]
        if rel is None:  # bounded by its output interval: its value does not need its input's
            lo_out, hi_out = state.bounds[node.name]
            values[node.name] = np.where(a >= 0, hi_out[:, None], lo_out[:, None])
            continue
        if node.inputs[0] not in values:
            continue
        v = values[node.inputs[0]]
        if node.kind == "activation":
            ls, lb, us, ub = rel
            values[node.name] = np.where(a >= 0, us * v + ub, ls * v + lb)
        elif isinstance(node, MaxPool):
            positive = np.moveaxis(a, -1, -node.window.ndim - 1) if node.channels_last else a
            values[node.name] = maxpool_relaxed_forward(node, rel, v, positive >= 0)
    return values


def _adam(moments: dict, key, param: np.ndarray, grad: np.ndarray, it: int, step, low, high):
    """One projected Adam step on ``param`` (in place), its moments kept in ``moments[key]``."""
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    m, v = moments.get(key, (0.0, 0.0))
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    moments[key] = (m, v)
    param -= step * (m / (1 - beta1**it)) / (np.sqrt(v / (1 - beta2**it)) + eps)
    np.clip(param, low, high, out=param)


def optimize(
    state: crown.State,
    target: str,
    c: np.ndarray,
    iterations: int = 20,
    lr: float = 0.5,
    decay: float = 0.98,
    patience: int = 5,
    tol: float = 1e-9,
    entries: np.ndarray | None = None,
    split_signs: dict[str, np.ndarray] | None = None,
    deadline: float | None = None,
    beta_lr: float = 0.05,
):
    """Minimise over the slopes the upper bounds of the rows of ``c . t`` for tensor ``target``
    (``c``: (B, K, *t), or (B, K, len(entries)) on the flat ``entries`` of ``t`` only, as in
    ``crown.backward_upper``). Returns the best upper bound per row ``(B, K)`` and the linear bound
    that gives it: coefficients ``(B, K, *input_shape)`` and constants ``(B, K)``.

    ``split_signs`` (beta-CROWN): tensors upstream of ``target`` mapped to arrays ``(B, *shape)``
    of signs s, promising ``s * u >= 0`` wherever the bounds are to hold (+1: the neuron is known
    active there, -1 inactive, 0 no constraint; branch and bound's ReLU splits). For any
    ``beta >= 0``, ``c . t <= c . t + beta * s * u`` on that set, so the rows bound the latter,
    and beta is optimised with the slopes (its gradient is ``s`` times ``u``'s value in the
    relaxed network; Adam steps of ``beta_lr``, decaying like the slopes'). The bounds then
    hold on that set only, not on the whole box.
    ``deadline`` (a ``time.perf_counter()`` value): no new step after it (the best bounds so
    far are as sound as any)."""
    g = state.graph
    b, k = crown.row_count(state, c, entries)
    # which nodes have slopes to optimise, and where
    params: dict[str, tuple[np.ndarray, np.ndarray, float, float]] = {}
    base = dict(state.relax)
    for node in state.nodes_before(target):
        rng = alpha_range(node) if node.kind == "activation" else None
        if rng is None:
            continue
        lo_in, hi_in = state.bounds[node.inputs[0]]
        mask = unstable(node, lo_in, hi_in)[:, None]
        if not mask.any():
            continue
        ls = base[node.name][0]
        alpha = np.broadcast_to(ls, (b, k, *node.out_shape)).copy()
        params[node.name] = (alpha, mask, *rng)
    signs = {t: s_[:, None] for t, s_ in (split_signs or {}).items() if np.any(s_) and t != target}
    betas = {t: np.zeros((b, k, *s_.shape[2:])) for t, s_ in signs.items()}
    best, best_a, best_b = crown.backward_upper(state, target, c, entries=entries)
    if not (params or betas) or iterations <= 0:
        return best, best_a, best_b
    moments: dict = {}
    center = state.center.reshape(state.lo.shape)
    radius = state.radius.reshape(state.lo.shape)
    stale = 0
    try:
        for it in range(1, iterations + 1):
            if deadline is not None and time.perf_counter() > deadline:
                break
            for name, (alpha, mask, _, _) in params.items():
                ls, lb, us, ub = base[name]
                state.relax[name] = (np.where(mask, alpha, ls), lb, us, ub)
            record: dict = {}
            added = {t: betas[t] * signs[t] for t in betas} or None
            upper, a_x, bias = crown.backward_upper(state, target, c, record, entries, added)
            improved = upper < best - tol * (1 + np.abs(best))
            better = upper < best
            best = np.where(better, upper, best)
            best_a = np.where(better.reshape(*better.shape, *(1,) * (a_x.ndim - 2)), a_x, best_a)
            best_b = np.where(better, bias, best_b)
            stale = 0 if improved.any() else stale + 1
            if stale >= patience:
                break
            x_star = center[:, None] + np.sign(a_x) * radius[:, None]
            values = _relaxed_forward(state, target, record, x_star)
            fade = decay ** (it - 1)
            step = lr * fade

            for name, (alpha, mask, lo_a, hi_a) in params.items():
                node = g.nodes[name]
                a = record.get(name)
                if a is None:
                    continue
                grad = np.minimum(a, 0.0) * values[node.inputs[0]] * mask
                _adam(moments, name, alpha, grad, it, step, lo_a, hi_a)
            for t, beta in betas.items():
                if t in values:
                    grad = signs[t] * values[t]
                    _adam(moments, ("beta", t), beta, grad, it, beta_lr * fade, 0.0, np.inf)
    finally:
        state.relax.update(base)
    return best, best_a, best_b


def refiner(
    iterations: int = 20,
    lr: float = 0.5,
    decay: float = 0.98,
    patience: int = 5,
    deadline: float | None = None,
):
    """``crown.compute_state``'s ``refine``: intermediate bounds with optimised slopes (CROWN's
    once ``deadline`` has passed)."""

    def refine(state: crown.State, target: str, rows: np.ndarray):
        best, _, _ = optimize(
            state,
            target,
            crown.PLUS_MINUS,
            iterations,
            lr,
            decay,
            patience,
            entries=rows,
            deadline=deadline,
        )
        return -best[:, rows.size :], best[:, : rows.size]

    return refine


def run(
    graph: Graph,
    box: Box,
    iterations: int = 20,
    lr: float = 0.5,
    decay: float = 0.98,
    patience: int = 5,
    intermediate: bool = True,
) -> BoundsResult:
    """Outer bounds by alpha-CROWN; never looser than CROWN (or IBP) on the same box.

    ``iterations``, ``lr`` (Adam step on the slopes), ``decay`` (step multiplier per
    iteration) and ``patience`` (stop after this many iterations without improvement) apply to
    every optimisation. With ``intermediate`` (default) the bounds of every unstable
    intermediate neuron are optimised too, layer by layer, before the outputs'.
    """
    t0 = time.perf_counter()
    refine = refiner(iterations, lr, decay, patience) if intermediate else None
    state, layers = crown.compute_state(graph, box.lo, box.hi, refine=refine)
    lower, upper, _ = crown.output_bounds(state)
    # CROWN is not monotone in its intermediate bounds: the optimised ones (or the second
    # slope set on every layer) can change adaptive slopes for the worse, so the crown
    # engine's own bounds (cheap next to the optimisation) are intersected too, and
    # alpha-crown is never looser than crown
    plain, _ = crown.compute_state(
        graph, box.lo, box.hi, two_slopes=crown.default_two_slopes(graph)
    )
    p_lower, p_upper, _ = crown.output_bounds(plain)
    lower, upper = np.maximum(lower, p_lower), np.minimum(upper, p_upper)
    n, b = graph.output_size, box.n
    best, a_x, bias = optimize(
        state,
        graph.output,
        crown.PLUS_MINUS,
        iterations,
        lr,
        decay,
        patience,
        entries=np.arange(n),
    )
    upper = np.minimum(upper, best[:, :n])
    lower = np.maximum(lower, -best[:, n:])
    lower, upper = np.minimum(lower, upper), np.maximum(lower, upper)
    a_x = a_x.reshape(b, 2 * n, -1)
    linear = crown.LinearBounds(-a_x[:, n:], -bias[:, n:], a_x[:, :n], bias[:, :n])
    return BoundsResult(
        n_boxes=box.n,
        n_outputs=n,
        input_shape=graph.input_shape,
        output_shape=graph.output_shape,
        lower=lower,
        upper=upper,
        method="alpha-crown",
        batched=box.batched,
        timings={"alpha-crown": time.perf_counter() - t0},
        linear=linear,
        layers=layers,
    )
