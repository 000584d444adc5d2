"""CROWN: bounds by back-substituting linear relaxations through the graph.

To bound ``c . t`` for a tensor ``t``, a coefficient array starts at ``c`` on ``t`` and walks
backward to the input: through an affine node by its transpose (``backward``), through an
activation by its linear relaxation (the upper line where the coefficient is positive, the
lower line where it is negative), through max pooling by its relaxation. At the input, the
linear function ``A x + b`` is maximised over the box exactly. Lower bounds are upper bounds of
``-c . t``, so every pass computes upper bounds of a stack of rows ``[C; -C]``.

Intermediate bounds: before an activation (or pooling/softmax) node is relaxed, its input is
bounded by the same back-substitution (full CROWN), only for the neurons whose relaxation is not
already exact under the current bounds (per box when boxes differ a lot in which:
``bound_rows``), and intersected with interval bounds. On small inputs the output bounds and
those of the last nonlinear nodes' inputs (every bound with ``two_slopes=True``) are the better
of two lower-slope choices for unstable ReLU-family neurons, computed in one pass
(``upper_two_slopes``); textbook mode keeps CROWN's adaptive slopes only.
"""

from __future__ import annotations

import functools
import math
import time
import weakref
from dataclasses import dataclass, field, fields

import numpy as np

from ..box import Box
from ..graph import Graph, MaxPool
from ..graph.core import LinearNode, Node
from ..relax import activation_relaxation, alpha_range, inexact, unstable
from ..relax.pooling import maxpool_backward, maxpool_relaxation
from ..result import BoundsResult

#: Largest coefficient array (in float64 values) one backward pass may hold; rows are chunked.
_MAX_VALUES = 20_000_000

#: Largest input (in values) for which CROWN takes the better of two slope sets by default. On
#: small inputs a pass is mostly per-operation overhead, so doubling its rows costs about 1.4x
#: (ACAS Xu: mean widths 0.36-0.91 of the adaptive rule's); on wide ones the products down to
#: the input dominate and it costs up to 1.8x for 0-14% narrower bounds (mnistfc).
TWO_SLOPES_MAX_INPUTS = 64

#: ``two_slopes`` value for the second slope set on the outputs and on the inputs of the last
#: nonlinear nodes only (those the output reaches through affine nodes): ``crown``'s default on
#: small inputs. Those passes are the longest but feed the outputs directly; on ACAS Xu this
#: keeps most of the gain (mean widths 0.32-0.88 of auto_LiRPA's CROWN against 0.26-0.87 with
#: every layer) at 1.2x the time of the adaptive rule instead of 1.4x.
LAST = "last"

#: How much each affine op can make interval bounds loose (0 for ops that map boxes to boxes).
#: A tensor reached through at most one unit of mixing has exact interval bounds.
_MIXING = {"Dense": 1, "Conv": 1, "AvgPool": 1, "Sum": 2}


@dataclass
class LinearBounds:
    """``A_lower x + b_lower <= f(x) <= A_upper x + b_upper`` for every x in the box.

    Arrays have shapes ``(B, n_outputs, n_inputs)`` and ``(B, n_outputs)`` (flattened input and
    output, C order).
    """

    A_lower: np.ndarray
    b_lower: np.ndarray
    A_upper: np.ndarray
    b_upper: np.ndarray

    def select(self, i: int) -> LinearBounds:
        """The bounds of box ``i`` only (keeps a box axis of one)."""
        sl = slice(i, i + 1)
        return LinearBounds(self.A_lower[sl], self.b_lower[sl], self.A_upper[sl], self.b_upper[sl])


@dataclass
class LayerBounds:
    """Bounds of one tensor that feeds a nonlinear node, named by the source layer."""

    name: str
    op: str
    shape: tuple[int, ...]
    lower: np.ndarray
    upper: np.ndarray
    consumers: tuple[Node, ...] = ()  # the nonlinear nodes it feeds

    @property
    def unstable(self) -> np.ndarray:
        """Per box: how many neurons the consumers' relaxations leave inexact (counted when
        asked, not on every CROWN call)."""
        n = self.lower.shape[0]
        count = np.zeros(n, dtype=int)
        for c in self.consumers:
            if c.kind == "activation":
                count += unstable(c, self.lower, self.upper).reshape(n, -1).sum(axis=1)
        return count

    def select(self, i: int) -> LayerBounds:
        sl = slice(i, i + 1)
        return LayerBounds(
            self.name, self.op, self.shape, self.lower[sl], self.upper[sl], self.consumers
        )


@dataclass
class State:
    """Everything a back-substitution needs: per-tensor bounds and per-node relaxations."""

    graph: Graph
    lo: np.ndarray
    hi: np.ndarray
    bounds: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    relax: dict[str, object] = field(default_factory=dict)
    #: for activations with many neurons whose relaxation is zero in every box (dead ReLUs): the
    #: flat indices of the others; back-substitution then skips the dead ones' columns
    alive: dict[str, np.ndarray] = field(default_factory=dict)
    consumers: dict[str, list[Node]] = field(default_factory=dict)
    #: activations whose lower line has a nonzero intercept somewhere (never ReLU's)
    lower_offset: set[str] = field(default_factory=set)
    lines: dict[str, tuple] = field(default_factory=dict)  # ``_lines`` cache
    #: ReLU-family activations where the adaptive lower slope of some unstable neuron is not
    #: the low end of its sound range (0 for ReLU): the relaxation with both slope sets
    #: stacked, ``(B, 2, 1, *shape)``, for ``upper_two_slopes``
    second_slopes: dict[str, tuple] = field(default_factory=dict)

    def __post_init__(self):
        b = self.lo.shape[0]
        self.center = ((self.lo + self.hi) / 2).reshape(b, -1, 1)
        self.radius = ((self.hi - self.lo) / 2).reshape(b, -1, 1)

    @property
    def n_boxes(self) -> int:
        return self.lo.shape[0]

    def nodes_before(self, target: str) -> list[Node]:
        """Nodes ``target`` depends on (itself included), in reverse topological order."""
        return _walk(self.graph).nodes_before(target)


def backward_upper(
    state: State,
    target: str,
    c: np.ndarray,
    record: dict | None = None,
    entries: np.ndarray | None = None,
    added: dict[str, np.ndarray] | None = None,
):
    """Upper bounds of the rows of ``c . t`` over the box, with ``c`` of shape ``(B, K, *t)``.

    With ``entries`` (flat indices into ``t``), ``c`` has shape ``(B, K, len(entries))`` and
    holds the coefficients of those entries only, zero elsewhere: bounding a few neurons of a
    wide layer then starts from the selected rows of its map, not from a product with an
    identity. ``c`` may then also be a tuple of signs (``PLUS_MINUS``, ``MINUS``): the rows
    ``s * e_i`` for each sign s and entry i, whose first step is the signed rows of the map;
    with signs and ``t`` made by an affine node, ``entries`` may also be ``(B, m)``: other
    entries in each box.
    Returns ``(upper (B, K), A (B, K, *input_shape), bias (B, K))`` where
    ``A x + bias`` is the linear upper bound. With ``record`` (a dict), the coefficient on each
    relaxed node's output is stored under the node's name (alpha-CROWN's gradient needs them).
    ``added`` maps tensors upstream of ``t`` to coefficient arrays ``(B, K, *shape)`` added to
    theirs on the way (beta-CROWN's split terms, see ``alpha_crown.optimize``): the rows then
    bound ``c . t + sum(added[u] . u)``.
    """
    g = state.graph
    b, k = row_count(state, c, entries)
    coef: dict[str, np.ndarray] = {}
    sparse: dict[str, np.ndarray] = {}  # tensor -> alive indices its coefficient is kept on
    bias = np.zeros((b, k))
    node = g.nodes.get(target)
    if entries is None:
        coef[target] = c
    elif node is not None and node.kind == "linear" and isinstance(c, tuple):
        # signed unit rows: their first step is the signed rows of the map, no product
        if entries.ndim == 2:  # entries per box: the map's rows of each entry once, then taken
            uniq, inv = np.unique(entries, return_inverse=True)
            grads, extra = node.backward_rows(uniq)
            inv = inv.reshape(entries.shape)
            extra, grads = extra[inv], [grad[inv] for grad in grads]
        else:  # one set for every box: a box axis of 1
            grads, extra = node.backward_rows(entries)
            extra, grads = extra[None], [grad[None] for grad in grads]
        bias += np.concatenate([extra if s == 1 else s * extra for s in c], axis=-1)
        for name, grad in zip(node.inputs, grads, strict=True):
            grad = np.concatenate([grad if s == 1 else s * grad for s in c], axis=1)
            grad = grad if grad.shape[0] == b else np.broadcast_to(grad, (b, *grad.shape[1:]))
            coef[name] = coef[name] + grad if name in coef else grad  # Add(t, t) takes t twice
    elif node is not None and node.kind == "linear":
        coef[target] = c
        sparse[target] = entries
    else:
        if isinstance(c, tuple):
            c = np.broadcast_to(_unit_rows(c, entries.size), (b, k, entries.size))
        full = np.zeros((b, k, math.prod(g.shapes[target])))
        full[..., entries] = c
        coef[target] = full.reshape(b, k, *g.shapes[target])
    for node in state.nodes_before(target):
        a = coef.pop(node.name, None)
        if added is not None and node.name in added and node.name != target:
            idx = sparse.pop(node.name, None)
            if idx is not None:  # kept on the alive entries only: spread out first
                full = np.zeros((b, k, node.out_size))
                full[..., idx] = a
                a = full.reshape(b, k, *node.out_shape)
            a = added[node.name] if a is None else a + added[node.name]
        if a is None:
            continue
        if node.kind == "linear":
            idx = sparse.pop(node.name, None)
            if idx is not None:
                grads, extra = node.backward_sparse(a.reshape(b * k, -1), idx)
                bias += extra.reshape(b, k)
            else:
                flat = a.reshape(b * k, *node.out_shape)
                if node.bias is not None:
                    bias += node.bias_term(flat).reshape(b, k)
                grads = node.backward(flat)
            for name, grad in zip(node.inputs, grads, strict=True):
                grad = grad.reshape(b, k, *g.shapes[name])
                coef[name] = coef[name] + grad if name in coef else grad
            continue
        if record is not None:
            record[node.name] = a
        rel = state.relax[node.name]
        src = node.inputs[0]
        if node.kind == "activation":
            # upper line where a >= 0, lower line elsewhere; written with max(a, 0) because
            # np.where over these broadcast shapes is several times slower
            ls, gap, up_col, lo_col = _lines(state, node.name, rel)
            pos = np.maximum(a, 0.0)
            bias += (pos.reshape(b, k, -1) @ up_col)[..., 0]
            if lo_col is not None:
                bias += (a.reshape(b, k, -1) @ lo_col)[..., 0]
            blocks = ls.ndim > a.ndim  # a set of slopes per block of rows (upper_two_slopes)
            if blocks:
                a = a.reshape(b, ls.shape[1], k // ls.shape[1], *a.shape[2:])
                pos = pos.reshape(a.shape)
            pos *= gap
            grad = a * ls
            grad += pos
            if blocks:
                grad = grad.reshape(b, k, *g.shapes[src])
        elif isinstance(node, MaxPool):
            grad, extra = maxpool_backward(node, rel, a)
            bias += extra
        else:  # no linear relaxation: the node's output interval
            lo_out, hi_out = state.bounds[node.name]
            a = a.reshape(b, k, -1)
            bias += np.einsum("bki,bi->bk", np.maximum(a, 0.0), hi_out.reshape(b, -1))
            bias += np.einsum("bki,bi->bk", np.minimum(a, 0.0), lo_out.reshape(b, -1))
            continue
        idx = state.alive.get(node.name)
        if (
            idx is not None
            and len(state.consumers[src]) == 1
            and src in g.nodes
            and g.nodes[src].kind == "linear"
        ):
            coef[src] = grad.reshape(b, k, -1)[..., idx]
            sparse[src] = idx
            continue
        coef[src] = coef[src] + grad if src in coef else grad
    a_x = coef.get(g.input_name)
    if a_x is None:  # the target does not depend on the input
        return bias, np.zeros((b, k, *g.input_shape)), bias
    flat = a_x.reshape(b, k, -1)
    upper = bias + (flat @ state.center)[..., 0] + (np.abs(flat) @ state.radius)[..., 0]
    return upper, a_x, bias


def _lines(state: State, name: str, rel):
    """An activation's relaxation ``(ls, lb, us, ub)`` as back-substitution uses it: the lower
    slope, the slope gap ``us - ls``, and intercept columns ``(B, n, 1)``: ``ub - lb`` and
    ``lb`` (None when the lower line passes through the origin). Cached per relaxation tuple
    (alpha-CROWN swaps in new tuples as it moves slopes)."""
    key = (name, rel[0].ndim)  # plain and two-slope relaxations are cached side by side
    cached = state.lines.get(key)
    if cached is not None and cached[0] is rel:
        return cached[1]
    ls, lb, us, ub = rel
    b = state.n_boxes
    if name in state.lower_offset:
        lines = (ls, us - ls, (ub - lb).reshape(b, -1, 1), lb.reshape(b, -1, 1))
    else:
        lines = (ls, us - ls, ub.reshape(b, -1, 1), None)
    state.lines[key] = (rel, lines)
    return lines


#: Signs of ``backward_upper``'s unit rows: upper bounds of the entries, then of their
#: negations (their lower bounds), in one pass; or the lower bounds only.
PLUS_MINUS = (1.0, -1.0)
MINUS = (-1.0,)


def row_count(state: State, c, entries: np.ndarray | None) -> tuple[int, int]:
    """``(B, K)``: boxes and rows of a ``backward_upper`` coefficient (array or signs)."""
    if isinstance(c, tuple):
        return state.n_boxes, len(c) * entries.shape[-1]
    return c.shape[0], c.shape[1]


@functools.lru_cache(maxsize=64)
def _unit_rows(signs: tuple[float, ...], m: int) -> np.ndarray:
    """Coefficients ``[s_1 I; s_2 I; ...]`` of shape ``(len(signs) m, m)`` (read-only)."""
    eye = np.eye(m)
    rows = np.concatenate([s * eye for s in signs])
    rows.flags.writeable = False
    return rows


def upper_two_slopes(
    state: State, target: str, signs: tuple, entries: np.ndarray, linear: bool = True
):
    """``backward_upper`` of the signed unit rows under two lower-slope choices at once, in one
    pass with the rows doubled: CROWN's adaptive slopes, and the low end of the sound range
    (0 for ReLU) for every unstable neuron. Returns, like ``backward_upper``, the better row of
    each pair and its linear bound. Neither choice is better in general; per bounded neuron the
    better of the two is often far tighter (ACAS Xu: mean output widths 0.36-0.91 of the
    adaptive rule's), at about 1.4x the time. ``linear=False`` skips picking the linear
    bounds (None is returned for them)."""
    alt = [n.name for n in state.nodes_before(target) if n.name in state.second_slopes]
    if not alt:
        return backward_upper(state, target, signs, entries=entries)
    b, k = row_count(state, signs, entries)
    base = {name: state.relax[name] for name in alt}
    try:
        for name in alt:
            state.relax[name] = state.second_slopes[name]
        up, a_x, bias = backward_upper(state, target, signs + signs, entries=entries)
    finally:
        state.relax.update(base)
    second = up[:, k:] < up[:, :k]
    best = np.where(second, up[:, k:], up[:, :k])
    if not linear:  # the bounds only
        return best, None, None
    pick = second.reshape(b, k, *(1,) * (a_x.ndim - 2))
    return best, np.where(pick, a_x[:, k:], a_x[:, :k]), np.where(second, bias[:, k:], bias[:, :k])


def _rows_per_entry(state: State, both: bool = True) -> int:
    """Coefficient rows a bounded entry takes in a pass: both signs, under one slope set or
    two (``upper_two_slopes``); it sizes the chunks."""
    return 4 if both and state.second_slopes else 2


def bound_rows(
    state: State, target: str, rows: np.ndarray, both: bool = True, need: np.ndarray | None = None
):
    """Lower and upper CROWN bounds of selected entries (flat ``rows``) of tensor ``target``,
    the better of two slope sets where the state has them (``upper_two_slopes``), unless
    ``both`` is False. Rows are processed in chunks so the coefficient arrays stay within a
    memory budget. ``need`` (boxes x rows, boolean): the entries each box needs; the others
    may come back as infinite bounds. Where boxes need far fewer than all the rows (branch and
    bound's small pieces), each needed pair is bounded on its own (``_bound_pairs``)."""
    b = state.n_boxes
    n = rows.size
    if (
        need is not None
        and b > 1
        and np.count_nonzero(need) <= PAIRS_SHARE * need.size
        and target in state.graph.nodes
        and state.graph.nodes[target].kind == "linear"
    ):
        return _bound_pairs(state, target, rows, need, both)
    chunk = max(1, _MAX_VALUES // (_rows_per_entry(state, both) * b * _walk(state.graph).widest))
    lower, upper = np.empty((b, n)), np.empty((b, n))
    for start in range(0, n, chunk):
        stop_ = min(n, start + chunk)
        m = stop_ - start
        if both:
            up, _, _ = upper_two_slopes(state, target, PLUS_MINUS, rows[start:stop_], linear=False)
        else:
            up, _, _ = backward_upper(state, target, PLUS_MINUS, entries=rows[start:stop_])
        upper[:, start:stop_] = up[:, :m]
        lower[:, start:stop_] = -up[:, m:]
    return lower, upper


#: ``bound_rows`` bounds each needed (box, entry) pair on its own when the boxes need at most
#: this share of the rows they would bound together: a pair's pass costs about what a row's
#: does, plus taking its box's relaxations.
PAIRS_SHARE = 0.6


def _take(x, idx: np.ndarray):
    """Per-box data (an array, a tuple of them, a ``MaxPoolRelaxation`` or None) of boxes
    ``idx`` (repeats allowed)."""
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        return x[idx]
    if isinstance(x, tuple):
        return tuple(_take(v, idx) for v in x)
    return type(x)(*(_take(getattr(x, f.name), idx) for f in fields(x)))


def select_boxes(state: State, idx: np.ndarray, target: str | None = None) -> State:
    """The state of boxes ``idx`` (repeats allowed): enough to back-substitute from ``target``,
    or, without it, every tensor's bounds and every relaxation (for ``alpha_crown.optimize``)."""
    sub = State(state.graph, state.lo[idx], state.hi[idx])
    if target is None:
        sub.bounds = {name: _take(v, idx) for name, v in state.bounds.items()}
    for node in state.graph if target is None else state.nodes_before(target):
        if node.name in state.relax:
            rel = sub.relax[node.name] = _take(state.relax[node.name], idx)
            if rel is None:  # bounded by its output interval
                sub.bounds[node.name] = _take(state.bounds[node.name], idx)
        if node.name in state.second_slopes:
            sub.second_slopes[node.name] = _take(state.second_slopes[node.name], idx)
    sub.alive, sub.consumers, sub.lower_offset = state.alive, state.consumers, state.lower_offset
    return sub


def _bound_pairs(state: State, target: str, rows: np.ndarray, need: np.ndarray, both: bool):
    """``bound_rows`` of the needed (box, entry) pairs only, each pair a box of its own with its
    one entry: the rows of a pass are the pairs, not boxes x the union of their entries."""
    b, n = need.shape
    lower, upper = np.full((b, n), -np.inf), np.full((b, n), np.inf)
    box, col = np.nonzero(need)
    chunk = max(1, _MAX_VALUES // (_rows_per_entry(state, both) * _walk(state.graph).widest))
    for start in range(0, box.size, chunk):
        sl = slice(start, start + chunk)
        sub = select_boxes(state, box[sl], target)
        entries = rows[col[sl]][:, None]
        if both:
            up = upper_two_slopes(sub, target, PLUS_MINUS, entries, linear=False)[0]
        else:
            up = backward_upper(sub, target, PLUS_MINUS, entries=entries)[0]
        upper[box[sl], col[sl]], lower[box[sl], col[sl]] = up[:, 0], -up[:, 1]
    return lower, upper


def _ordered(lo: np.ndarray, hi: np.ndarray):
    """Bounds that crossed by rounding (lo > hi by an ulp) are swapped, never left crossed."""
    return np.minimum(lo, hi), np.maximum(lo, hi)


def _relax_node(state: State, node: Node, second_slopes: bool = True) -> None:
    lo, hi = state.bounds[node.inputs[0]]
    if node.kind == "activation":
        ls, lb, us, ub = activation_relaxation(node, lo, hi)
        state.relax[node.name] = (ls[:, None], lb[:, None], us[:, None], ub[:, None])
        rng = alpha_range(node) if second_slopes else None
        if rng is not None:
            mask = unstable(node, lo, hi) & (ls != rng[0])
            if mask.any():
                both = np.empty((ls.shape[0], 2, 1, *ls.shape[1:]))
                both[:, 0, 0] = ls
                both[:, 1, 0] = np.where(mask, rng[0], ls)
                state.second_slopes[node.name] = (both, lb, us[:, None, None], ub)
        if lb.any():
            state.lower_offset.add(node.name)
        out_lo, out_hi = state.bounds[node.name] = node.interval(lo, hi)
        # zero output in every box (dead ReLUs): contributes exactly nothing downstream
        alive = ((out_lo != 0) | (out_hi != 0)).any(axis=0).reshape(-1)
        n_alive = np.count_nonzero(alive)
        if n_alive < 0.75 * alive.size:
            idx = state.alive[node.name] = np.flatnonzero(alive)
            idx.flags.writeable = False  # lets Dense.backward_sparse reuse its slices
    elif isinstance(node, MaxPool):
        state.relax[node.name] = maxpool_relaxation(node, lo, hi)
        state.bounds[node.name] = node.interval([lo], [hi])
    else:
        state.relax[node.name] = None
        state.bounds[node.name] = node.interval(
            [state.bounds[i][0] for i in node.inputs], [state.bounds[i][1] for i in node.inputs]
        )


def _needs_tightening(node_consumers: list[Node], lo, hi) -> np.ndarray:
    """Mask (boxes x flat neurons) of the neurons whose consumers' relaxations are not exact."""
    masks = [inexact(c, lo, hi) for c in node_consumers]
    return np.logical_or.reduce(masks).reshape(lo.shape[0], -1)


def _tighten(state: State, src: str, rows: np.ndarray, replace: bool, bounder=None, **kw) -> None:
    """Bound the selected neurons of ``src`` (by ``bounder(state, src, rows, **kw)``, default
    plain back-substitution) and store the bounds, intersected unless ``replace``."""
    lo_s, hi_s = state.bounds[src]
    cl, cu = (bounder or bound_rows)(state, src, rows, **kw)
    flat_lo = lo_s.reshape(lo_s.shape[0], -1).copy()
    flat_hi = hi_s.reshape(hi_s.shape[0], -1).copy()
    if replace:
        flat_lo[:, rows], flat_hi[:, rows] = cl, cu
    else:
        flat_lo[:, rows] = np.maximum(flat_lo[:, rows], cl)
        flat_hi[:, rows] = np.minimum(flat_hi[:, rows], cu)
    flat_lo, flat_hi = _ordered(flat_lo, flat_hi)
    state.bounds[src] = (flat_lo.reshape(lo_s.shape), flat_hi.reshape(hi_s.shape))


class _Forward:
    """Linear lower and upper bounds of every tensor as functions of the input (forward mode, as
    in Neurify's symbolic intervals): ``L(x) <= t(x) <= U(x)`` on the box.

    Each function is stored as an array ``(B, d + 1, *shape)``: the coefficients of the ``d``
    flat inputs, then the constant. One affine node costs ``d + 1`` applications of its map per
    box instead of one back-substitution per neuron, so with few inputs it is far cheaper than
    backward intermediate bounds, and somewhat looser.
    """

    def __init__(self, state: State):
        self.state = state
        b, d = state.lo.shape[0], state.graph.input_size
        eye = np.concatenate([np.eye(d), np.zeros((1, d))]).reshape(
            1, d + 1, *state.graph.input_shape
        )
        eye = np.broadcast_to(eye, (b, *eye.shape[1:]))
        self.funcs: dict[str, tuple[np.ndarray, np.ndarray]] = {state.graph.input_name: (eye, eye)}
        self.center, self.radius = state.center, state.radius

    def linear(self, node: LinearNode) -> tuple[np.ndarray, np.ndarray]:
        """Propagate through an affine node; returns the concrete bounds of its output."""
        b = self.state.lo.shape[0]
        mids, rads = [], []
        for name in node.inputs:
            lo_f, up_f = self.funcs[name]
            flat = lambda t: t.reshape(-1, *t.shape[2:])  # noqa: E731
            mids.append(flat((up_f + lo_f) / 2))
            rads.append(flat((up_f - lo_f) / 2))
        mid = node.linear(*mids).reshape(b, -1, *node.out_shape)
        rad = node.abs_linear(*rads).reshape(b, -1, *node.out_shape)
        if node.bias is not None:
            mid[:, -1] += node.bias
        self.funcs[node.name] = (mid - rad, mid + rad)
        return self.concrete(node.name)

    def activation(self, node: Node, relax) -> None:
        ls, lb, us, ub = relax
        lo_f, up_f = self.funcs[node.inputs[0]]
        if (us < 0).any() or (ls < 0).any():  # decreasing pieces swap the sides they use
            up_src, lo_src = np.where(us >= 0, up_f, lo_f), np.where(ls >= 0, lo_f, up_f)
        else:
            up_src, lo_src = up_f, lo_f
        up, lo = us * up_src, ls * lo_src
        up[:, -1] += ub[:, 0]
        lo[:, -1] += lb[:, 0]
        self.funcs[node.name] = (lo, up)

    def constant(self, node: Node) -> None:
        """No linear relaxation used here: the node's output interval as constant functions."""
        lo_out, hi_out = self.state.bounds[node.name]
        b = lo_out.shape[0]
        d = self.state.graph.input_size
        lo, up = np.zeros((b, d + 1, *node.out_shape)), np.zeros((b, d + 1, *node.out_shape))
        lo[:, -1], up[:, -1] = lo_out, hi_out
        self.funcs[node.name] = (lo, up)

    def concrete(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        lo_f, up_f = self.funcs[name]
        b, d = self.center.shape[:2]
        lo_f, up_f = lo_f.reshape(b, d + 1, -1), up_f.reshape(b, d + 1, -1)
        c, r = self.center[..., 0], self.radius[..., 0]
        # einsum contracts the few input coefficients without (B, d, n) temporaries
        upper = (
            up_f[:, -1]
            + np.einsum("bdn,bd->bn", up_f[:, :-1], c)
            + np.einsum("bdn,bd->bn", np.abs(up_f[:, :-1]), r)
        )
        lower = (
            lo_f[:, -1]
            + np.einsum("bdn,bd->bn", lo_f[:, :-1], c)
            - np.einsum("bdn,bd->bn", np.abs(lo_f[:, :-1]), r)
        )
        shape = (b, *self.state.graph.shapes[name])
        return lower.reshape(shape), upper.reshape(shape)


class _Walk:
    """Static facts about the graph that decide which tensors to tighten and how."""

    def __init__(self, graph: Graph):
        self.order = list(graph)  # not the graph: the cache below is keyed weakly by it
        self.widest = max([graph.input_size] + [node.out_size for node in graph])
        self.ancestors: dict[str, list[Node]] = {}
        self.consumers: dict[str, list[Node]] = {}
        # mixing: how loose interval bounds can be (None once a nonlinear node is upstream)
        self.mixing: dict[str, int | None] = {graph.input_name: 0}
        for node in graph:
            for i in node.inputs:
                self.consumers.setdefault(i, []).append(node)
            ins = [self.mixing[i] for i in node.inputs]
            linear = node.kind == "linear"
            self.mixing[node.name] = (
                sum(ins) + _MIXING.get(node.op, 0)
                if linear and all(m is not None for m in ins)
                else None
            )
        # inputs of the nonlinear nodes the output reaches through affine nodes only
        self.last_relaxed: set[str] = set()
        affine_path = {graph.output}
        for node in reversed(self.order):
            if node.name not in affine_path:
                continue
            if node.kind == "linear":
                affine_path.update(node.inputs)
            else:
                self.last_relaxed.update(node.inputs)

    def nodes_before(self, target: str) -> list[Node]:
        """Nodes ``target`` depends on (itself included), in reverse topological order."""
        if target not in self.ancestors:
            need = {target}
            order = []
            for node in reversed(self.order):
                if node.name in need:
                    order.append(node)
                    need.update(node.inputs)
            self.ancestors[target] = order
        return self.ancestors[target]


_WALKS: weakref.WeakKeyDictionary[Graph, _Walk] = weakref.WeakKeyDictionary()


def _walk(graph: Graph) -> _Walk:
    """The graph's ``_Walk``, built once per graph (engines call this per box and per piece)."""
    walk = _WALKS.get(graph)
    if walk is None:
        walk = _WALKS[graph] = _Walk(graph)
    return walk


def compute_state(
    graph: Graph,
    lo: np.ndarray,
    hi: np.ndarray,
    intersect_ibp: bool = True,
    refine=None,
    prior: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    forward: bool = False,
    two_slopes: bool | str | None = None,
) -> tuple[State, list[LayerBounds]]:
    """Intermediate bounds of every tensor that feeds a nonlinear node, and the relaxations.

    With ``intersect_ibp`` (default) only neurons whose relaxation is not exact under the current
    bounds are back-substituted, and the results are intersected with the interval bounds.
    Without it every such neuron gets pure CROWN bounds (textbook CROWN, as in the papers).
    ``refine(state, tensor, rows) -> (lower, upper)``, if given, re-bounds the neurons still in
    doubt after that (alpha-CROWN optimises their slopes); its bounds are intersected too.
    ``prior`` maps tensor names to bounds known to hold already (say, on a box that contains
    each of these): they are intersected first, so neurons they decide are not back-substituted.
    ``forward=True`` takes intermediate bounds from forward-mode linear bounds (``_Forward``)
    instead of back-substitution: much cheaper for inputs of a few dimensions, a little looser.
    ``two_slopes`` (with ``intersect_ibp``): every bound is the better of two lower-slope
    choices (``upper_two_slopes``); False: CROWN's adaptive slopes only; ``"last"``: two only
    for the outputs and the inputs of the last nonlinear nodes (``LAST``). None (default):
    True for inputs of at most ``TWO_SLOPES_MAX_INPUTS`` values, else False.
    """
    if two_slopes is None:
        two_slopes = graph.input_size <= TWO_SLOPES_MAX_INPUTS
    elif two_slopes not in (True, False, LAST):
        raise ValueError(f"two_slopes must be True, False, None or {LAST!r}, not {two_slopes!r}")
    state = State(graph, lo, hi)
    state.bounds[graph.input_name] = (lo, hi)
    fwd = _Forward(state) if forward else None
    walk = _walk(graph)
    state.consumers = walk.consumers
    tightened: set[str] = set()
    layers: list[LayerBounds] = []
    for node in graph:
        if node.kind == "linear":
            lo_n, hi_n = node.interval(
                [state.bounds[i][0] for i in node.inputs], [state.bounds[i][1] for i in node.inputs]
            )
            if fwd is not None:
                f_lo, f_hi = fwd.linear(node)
                lo_n, hi_n = _ordered(np.maximum(lo_n, f_lo), np.minimum(hi_n, f_hi))
            if prior is not None and node.name in prior:
                lo_n, hi_n = (
                    np.maximum(lo_n, prior[node.name][0]),
                    np.minimum(hi_n, prior[node.name][1]),
                )
            state.bounds[node.name] = (lo_n, hi_n)
            continue
        for src in node.inputs:
            if src in tightened or src == graph.input_name:
                continue
            tightened.add(src)
            producer = graph.nodes[src]
            mixing = walk.mixing[src]
            if (
                fwd is None
                and producer.kind == "linear"
                and not (mixing is not None and mixing <= 1)
            ):
                consumers = walk.consumers[src]
                if not intersect_ibp:
                    _tighten(state, src, np.arange(producer.out_size), replace=True)
                else:
                    need = _needs_tightening(consumers, *state.bounds[src])
                    rows = np.flatnonzero(need.any(axis=0))
                    if rows.size:
                        both = two_slopes is True or src in walk.last_relaxed
                        _tighten(state, src, rows, replace=False, both=both, need=need[:, rows])
                    if refine is not None:
                        need = _needs_tightening(consumers, *state.bounds[src])
                        rows = np.flatnonzero(need.any(axis=0))
                        if rows.size:
                            _tighten(state, src, rows, replace=False, bounder=refine)
            lo_s, hi_s = state.bounds[src]
            layers.append(
                LayerBounds(
                    producer.source,
                    producer.op,
                    graph.shapes[src],
                    lo_s,
                    hi_s,
                    tuple(walk.consumers[src]),
                )
            )
        _relax_node(state, node, second_slopes=bool(two_slopes) and intersect_ibp)
        if fwd is not None:
            if node.kind == "activation":
                fwd.activation(node, state.relax[node.name])
            else:
                fwd.constant(node)
    return state, layers


def output_bounds(state: State, intersect_ibp: bool = True):
    """CROWN bounds of every output, intersected with interval bounds unless told otherwise, and
    the linear bounds they come from."""
    g = state.graph
    b, n = state.n_boxes, g.output_size
    chunk = max(1, _MAX_VALUES // (_rows_per_entry(state) * b * _walk(g).widest))
    lower, upper = np.empty((b, n)), np.empty((b, n))
    a_lo, a_up = np.empty((b, n, g.input_size)), np.empty((b, n, g.input_size))
    b_lo, b_up = np.empty((b, n)), np.empty((b, n))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        m = stop - start
        up, a_x, bias = upper_two_slopes(state, g.output, PLUS_MINUS, np.arange(start, stop))
        a_x = a_x.reshape(b, 2 * m, -1)
        upper[:, start:stop], lower[:, start:stop] = up[:, :m], -up[:, m:]
        a_up[:, start:stop], b_up[:, start:stop] = a_x[:, :m], bias[:, :m]
        a_lo[:, start:stop], b_lo[:, start:stop] = -a_x[:, m:], -bias[:, m:]
    if intersect_ibp:
        ibp_lo, ibp_hi = state.bounds[g.output]
        lower = np.maximum(lower, ibp_lo.reshape(lower.shape))
        upper = np.minimum(upper, ibp_hi.reshape(upper.shape))
    lower, upper = _ordered(lower, upper)
    return lower, upper, LinearBounds(a_lo, b_lo, a_up, b_up)


def default_two_slopes(graph: Graph) -> bool | str:
    """``run``'s slope sets when not told: ``LAST`` on inputs of at most
    ``TWO_SLOPES_MAX_INPUTS`` values, else CROWN's adaptive slopes only."""
    return LAST if graph.input_size <= TWO_SLOPES_MAX_INPUTS else False


def run(
    graph: Graph, box: Box, intersect_ibp: bool = True, two_slopes: bool | str | None = None
) -> BoundsResult:
    """Outer bounds by CROWN (see the module docstring).

    ``intersect_ibp=False`` gives textbook CROWN: pure back-substitution bounds for every
    intermediate neuron and the outputs, never intersected with interval bounds.
    ``two_slopes``: take each bound as the better of two lower-slope choices (True), CROWN's
    adaptive slopes only (False), two for the outputs and the last nonlinear nodes' inputs
    only (``"last"``), or decide by the input's size (None: ``"last"`` for inputs of at most
    ``TWO_SLOPES_MAX_INPUTS`` values, else False).
    """
    t0 = time.perf_counter()
    if two_slopes is None:
        two_slopes = default_two_slopes(graph)
    state, layers = compute_state(graph, box.lo, box.hi, intersect_ibp, two_slopes=two_slopes)
    lower, upper, linear = output_bounds(state, intersect_ibp=intersect_ibp)
    method = "crown" if intersect_ibp else "crown-textbook"
    return BoundsResult(
        n_boxes=box.n,
        n_outputs=graph.output_size,
        input_shape=graph.input_shape,
        output_shape=graph.output_shape,
        lower=lower,
        upper=upper,
        method=method,
        batched=box.batched,
        timings={method: time.perf_counter() - t0},
        linear=linear,
        layers=layers,
    )
