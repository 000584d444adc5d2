"""Branch and bound by input splitting (as in ReluVal, Neurify, nnenum) or ReLU splitting (as in
BaBSR): anytime exact minima.

``minimize`` bounds ``g(x) = max_i (R_i . y(x) - d_i)`` from below over a box: pieces are kept
in an open set ordered by their CROWN lower bound; the most promising are split in batches and
bounded again, all children of a batch in one batched CROWN call.

- Input splitting (few inputs): a piece is a sub-box, halved along the dimension with the
  largest ``|linear bound coefficient| x width`` (a gradient-times-width estimate of what the
  split gains), or the one whose halves bound best (strong branching).
- ReLU splitting (many inputs, ReLU networks): a piece is the box plus sign constraints on some
  neurons, carried as their bounds (``z <= 0`` or ``z >= 0``, intersected into CROWN's
  intermediate bounds, so the split neuron's relaxation becomes exact and the layers after it
  re-bound); the neuron split is the unstable one whose relaxation costs the bound most. A
  piece with every neuron decided is affine on its domain and an LP settles it exactly.

Children CROWN leaves open get alpha-CROWN's optimised output slopes while that keeps proving
them (``ALPHA_STEPS``); with ReLU splitting also beta-CROWN's multipliers of the piece's sign
constraints (``_alpha_lower``), and the box's intermediate bounds come from alpha-CROWN
(``ROOT_ALPHA_SHARE``).

Every child also yields concrete candidates (its centre and the corner minimising each row's
linear lower bound), so the attained value improves as the proven bound rises.

- Range mode (``target=None``): stop when ``value - lower <= atol + rtol |value|``. Output
  ranges are ``max y_j = -min(-y_j)``: ``run`` is the ``method="bab"`` engine.
- Property mode (``target=t``): stop as soon as ``lower > t`` (proved) or ``value <= t``
  (a witness), used by ``nnrange.verify``.

The proven bound at any stop is the minimum over open and pruned pieces, so stopping on time
or memory always leaves a sound result.
"""

from __future__ import annotations

import math
import os
import time
import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..box import Box
from ..errors import EngineError
from ..graph import Graph, LeakyRelu, Relu, with_objective
from ..parallel import one_blas_thread
from ..relax import unstable_counts
from ..result import BoundsResult, Status
from . import alpha_crown, crown, milp, regions, sampling


@dataclass
class Search:
    """Outcome of one ``minimize``: ``lower <= g(x)`` on the whole box, ``g(witness) == value``."""

    lower: float
    value: float
    witness: np.ndarray
    status: Status
    pieces: int  # sub-boxes bounded
    open: int  # sub-boxes left open at the stop
    seconds: float


def _bound(
    obj: Graph, lo: np.ndarray, hi: np.ndarray, root_width: np.ndarray, prior=None, relu=False
):
    """CROWN lower bounds of every row on each piece, a split ranking of each piece, each row's
    minimising corner, the pieces' intermediate bounds and the CROWN state (``_alpha_lower``
    refines from it).

    Input splitting: the ranking of the dimensions adds two normalised parts,
    ``|linear coefficient| x width`` (what the objective's dependence on a dimension costs) and
    the width relative to the root box (the looseness of unstable neurons, which the
    coefficients do not show). Either alone stalls on ACAS Xu property 1; together they prove
    it in a few hundred pieces. ReLU splitting (``relu=True``): ``_split_choice`` instead.

    CROWN's adaptive slopes only (``two_slopes=False``): the second slope set makes pieces'
    bounds tighter but costs 1.4x per piece, and ACAS Xu property 1 range searches were slower
    with it (2_1: 362 s for the five ranges against 269 s; 3_3 output 0: 304 s against 230 s).
    """
    state, _ = crown.compute_state(
        obj,
        lo.reshape(-1, *obj.input_shape),
        hi.reshape(-1, *obj.input_shape),
        prior=prior,
        two_slopes=False,
    )
    n, k = len(lo), obj.output_size
    # only lower bounds are needed: bound -row from above, half an output_bounds call
    record = {} if relu else None
    up, a_x, _ = crown.backward_upper(state, obj.output, crown.MINUS, record, entries=np.arange(k))
    lower = np.maximum(-up, state.bounds[obj.output][0].reshape(n, k))
    best_row = lower.argmax(axis=1)
    lb = lower.max(axis=1)
    a = -a_x.reshape(n, k, -1)  # the rows' linear lower bounds
    known = {t: state.bounds[t] for t in (prior or _relaxed_tensors(obj))}
    corners = np.where(a > 0, lo[:, None], hi[:, None])  # minimiser of each row's lower line
    if relu:
        return lb, _split_choice(obj, state, record, best_row), corners, known, state
    width = hi - lo
    estimate = np.abs(a[np.arange(n), best_row]) * width
    relative = width / root_width
    rank = estimate / np.maximum(estimate.max(axis=1, keepdims=True), 1e-300) + relative / (
        np.maximum(relative.max(axis=1, keepdims=True), 1e-300)
    )
    rank[width <= 0] = -np.inf  # halving a fixed dimension changes nothing
    return lb, rank, corners, known, state


def _alpha_lower(
    obj: Graph, state: crown.State, sel, rows: int, steps: int, relu: bool = False
) -> np.ndarray:
    """Lower bounds of ``g`` on the pieces ``sel`` of ``state`` (``_bound``'s CROWN state) by
    alpha-CROWN's output slopes (``steps`` Adam steps on the first ``rows`` rows; the
    intermediate bounds stay CROWN's). With ReLU splitting (``relu``) every neuron whose
    bounds on the piece fix its sign (the splits, and what they decided) also gets a
    beta-CROWN multiplier, which carries the split back to the layers before it and to the
    input (``alpha_crown.optimize``'s ``split_signs``)."""
    state = crown.select_boxes(state, sel)
    signs = None
    if relu:
        signs = {}
        for _, src in _split_neurons(obj):
            low, high = state.bounds[src]
            signs[src] = np.where(low >= 0, 1.0, np.where(high <= 0, -1.0, 0.0))
    best, _, _ = alpha_crown.optimize(
        state,
        obj.output,
        crown.MINUS,
        iterations=steps,
        patience=3,
        entries=np.arange(rows),
        split_signs=signs,
    )
    return (-best).max(axis=1)


#: With ReLU splitting, the box's intermediate bounds come from alpha-CROWN (optimised slopes),
#: within this share of the time limit. They hold on every piece: far fewer unstable neurons
#: to split and to encode in the root's MILP (mnistfc 256x2 at eps 0.03: CROWN's lower bound of
#: a property row -0.75, alpha-CROWN's -0.36, in 0.25 s; 256x6: 2.7 s).
ROOT_ALPHA_SHARE = 0.2

_ROOTS: weakref.WeakKeyDictionary[Graph, dict] = weakref.WeakKeyDictionary()


def _root_bounds(graph: Graph, lo: np.ndarray, hi: np.ndarray, deadline: float) -> dict:
    """alpha-CROWN's bounds of ``graph``'s tensors that feed nonlinear nodes over the box.
    They do not depend on the objective, so every search over the same box (one per output
    and direction, one per property row set) shares them: kept per graph and box, unless the
    deadline cut the optimisation short (a later search with more time computes them again:
    verify's first round gives each region a second)."""
    key = (lo.tobytes(), hi.tobytes())
    cache = _ROOTS.setdefault(graph, {})
    if key not in cache or not cache[key][0]:
        state, _ = crown.compute_state(
            graph,
            lo.reshape(1, *graph.input_shape),
            hi.reshape(1, *graph.input_shape),
            refine=alpha_crown.refiner(deadline=deadline),
        )
        bounds = {t: state.bounds[t] for t in _relaxed_tensors(graph)}
        for arrays in bounds.values():  # shared by searches: never written in place
            for a in arrays:
                a.flags.writeable = False
        cache.clear()  # one box at a time: searches over a box follow each other
        cache[key] = (time.perf_counter() <= deadline, bounds)
    return cache[key][1]


def _split_neurons(obj: Graph) -> list[tuple[str, str]]:
    """``(activation, its input tensor)`` for ReLU splitting, in a fixed order; the flat
    neuron numbering of ``_split_choice`` runs through them in turn."""
    return [(node.name, node.inputs[0]) for node in obj if node.kind == "activation"]


def relu_splittable(graph: Graph) -> bool:
    """True when every nonlinear node is a ReLU or LeakyReLU fed by an affine node: the
    networks ReLU splitting handles."""
    return all(
        node.kind == "linear"
        or (
            isinstance(node, (Relu, LeakyRelu))
            and node.inputs[0] in graph.nodes
            and graph.nodes[node.inputs[0]].kind == "linear"
        )
        for node in graph
    )


def _split_choice(obj: Graph, state, record: dict, best_row: np.ndarray) -> np.ndarray:
    """ReLU splitting: per piece, the neuron to split next (flat index in the numbering of
    ``_split_neurons``), -1 where no neuron is unstable; shape ``(B, 1)``.

    The score of an unstable neuron with bounds [l, u] is what its relaxation can cost the best
    row's bound: the coefficient's size on the neuron's output times the largest gap
    ``-l u / (u - l)`` between the ReLU and its upper line (the intercept score of BaBSR),
    plus a small multiple of the gap alone, so neurons the bound does not see yet are split
    once the others are.
    """
    n = len(best_row)
    parts = []
    for act, src in _split_neurons(obj):
        lo, hi = (v.reshape(n, -1) for v in state.bounds[src])
        open_ = (lo < 0) & (hi > 0)
        gap = np.where(open_, -lo * hi / np.where(open_, hi - lo, 1.0), 0.0)
        a = record.get(act)
        coef = 0.0 if a is None else np.abs(a[np.arange(n), best_row].reshape(n, -1))
        parts.append(gap * (coef + 1e-6))
    if not parts:  # an affine network: nothing to split, the LP settles it
        return np.full((n, 1), -1.0)
    scores = np.concatenate(parts, axis=1)
    choice = scores.argmax(axis=1)
    return np.where(scores[np.arange(n), choice] > 0, choice, -1)[:, None].astype(np.float64)


@dataclass(frozen=True)
class Leaves:
    """When ``minimize`` solves open pieces exactly (``milp.solve_minmax``) instead of splitting
    them further: pieces with at most ``unstable`` unstable neurons (0: never), once the search
    has run ``after`` seconds, ``seconds`` per piece, neuron bounds first tightened by LPs
    (``tighten``). Leaf solves may use ``share`` of the elapsed time, moving towards
    ``max_share`` while they keep proving their pieces and falling when they do not.

    The default waits 5 s: most searches close by splitting alone by then, and a leaf solve
    costs as much as bounding a hundred pieces. On some wide boxes the open set instead grows
    to tens of thousands of pieces, and only leaves solved early, on big pieces, keep it small:
    ``Leaves(unstable=40, after=1, max_share=0.9)`` proves ACAS Xu 2_1 property 3's maximum of
    output 0 in 2 to 18 s where the default times out at 60 s, but it doubles the time of
    searches that splitting closes in a few seconds, two ACAS Xu properties went undecided at
    30 s with it, and over the 50 exact ranges it closed the same number (36).

    ``root``: the share of the time left one exact solve of the whole box may take (0: none),
    once the search has run ``root_after`` seconds (0: before any splitting), on boxes CROWN
    leaves with at most ``root_unstable`` unstable neurons (None: any) and only when LP
    tightening leaves at most ``root_binaries`` binaries (None: any; else only the LP
    relaxation's bound is used). Its LP-tightened neuron bounds then hold on every piece.
    ReLU splitting's default (``RELU_LEAVES``) solves first: on networks with many inputs and
    up to a hundred or so unstable neurons, LP-tightened bounds make the one MILP decide in
    seconds what CROWN-bounded splitting leaves open (mnistfc 256x2). Input splitting's
    default tries it after 5 s: on ACAS Xu 2_1 property 3 (116 unstable, 75 binaries after
    LP tightening) splitting times out at 60 s on every output while the one MILP closes a
    direction in about 10 s; boxes that splitting closes in a few seconds never get there,
    and with 94 binaries (1_1 property 3) the MILP does not close in 200 s.
    """

    unstable: int = 16
    after: float = 5.0
    share: float = 0.5
    max_share: float = 0.5
    seconds: float = 1.0
    tighten: bool = True
    root: float = 0.9
    root_after: float = 5.0
    root_unstable: int | None = 128
    root_binaries: int | None = 80

    def budget(self, elapsed: float, tried: int, proved: int) -> float:
        """Seconds of leaf solving allowed after ``elapsed`` seconds of search, given how many
        leaves were tried and proved so far."""
        return _earned_share(tried, proved, self.share, self.max_share) * elapsed


def _earned_share(tried: int, proved: int, share: float, max_share: float) -> float:
    """The share of the search's time an extra effort may take: ``share`` at a success rate of
    one in two (the prior), in proportion to the rate seen, between a tenth of ``share`` and
    ``max_share``."""
    rate = (1 + proved) / (2 + tried)
    return float(np.clip(2 * rate * share, 0.1 * share, max_share))


#: Adam steps of alpha-CROWN's output slopes (and, with ReLU splitting, beta-CROWN's split
#: multipliers) on children CROWN leaves open (0: none), those nearest the cut first, for as long as
#: their earned share of the time allows (``ALPHA_SHARE``). On ACAS Xu 4_2 property 2 (y0 never the
#: largest, by a margin of 0.001) ten steps prove 40% of such children at 3 to 7 CROWN bounds' cost;
#: with them that property and 3_3's are proved in 46 s each (2 workers), undecided at 116 s before,
#: while the other 184 VNN-COMP instances take as long as before (154 s against 151 s at 30 s caps).
#: On one-row range searches it prunes fewer pieces (2_1 property 1 output 0's maximum: 6300 open at
#: 60 s instead of 8500).
ALPHA_STEPS = 10
#: Their share of the search's time at a success rate of one in two (``_earned_share``), from
#: this many seconds into the search on (searches that close sooner stay as they were, and do
#: not depend on timing).
ALPHA_SHARE = 0.5
ALPHA_AFTER = 2.0

#: The leaf policy of ReLU splitting unless one is given: the whole box solved first.
RELU_LEAVES = Leaves(root=0.5, root_after=0.0, root_unstable=None, root_binaries=None)

#: Exact solves from the start on pieces with up to 60 unstable neurons, for as long as they
#: need (the exact reference's recipe); ``milp`` uses it on split boxes of moderate width.
EARLY_LEAVES = Leaves(unstable=60, after=0.0, share=1.0, max_share=1.0)

#: The default's small leaves, but from the start: for gaps far below 1e-4, which splitting
#: alone approaches slowly. ``milp`` uses it on split boxes too wide for ``EARLY_LEAVES``: on
#: ACAS Xu property 1 at a gap of 1e-6, 1_1 output 3's maximum takes 8 s instead of 49 s and
#: 2_1 output 4's closes in 70 s instead of staying open at 120 s.
FINE_LEAVES = Leaves(after=0.0)


#: Ways to choose what to split (see ``minimize``).
BRANCHING = ("auto", "rank", "strong", "mixed", "relu")

#: "auto" splits inputs up to this many values, ReLUs beyond (where halving single input
#: dimensions barely narrows anything).
_INPUT_SPLIT_MAX = 64


def choose_branching(graph: Graph, branching: str, inputs: str = "rank") -> str:
    """Resolve ``branching`` for ``graph``: "auto" becomes "relu" on ReLU networks with more than
    64 inputs and ``inputs`` (an input-splitting mode) otherwise; other names stand, after a
    check that they apply."""
    if branching not in BRANCHING:
        raise ValueError(f"branching must be one of {', '.join(BRANCHING)}, not {branching!r}")
    if branching == "auto":
        many = graph.input_size > _INPUT_SPLIT_MAX
        has_relu = any(node.kind == "activation" for node in graph)
        return "relu" if many and has_relu and relu_splittable(graph) else inputs
    if branching == "relu" and not relu_splittable(graph):
        raise EngineError(
            "branching='relu' splits ReLU/LeakyReLU neurons and needs a network whose only "
            "nonlinear nodes are those, each fed by an affine node; "
            f"{graph.name or 'this network'} has others: use an input-splitting mode "
            "('rank', 'strong', 'mixed')"
        )
    return branching


#: Dimensions (the best ranked) that strong branching tries per piece. On ACAS Xu (5 inputs)
#: 4 instead of all 5: the 20 property 3/4 ranges of 1_1 and 3_3 in 36-37 s instead of 39-43 s,
#: property 1 of 1_1 and the 186 VNN-COMP instances as fast as before (3 was faster on the
#: former, slower on property 1).
_STRONG_CANDIDATES = 4

#: Strong branching skips dimensions this many times thinner (relative to the root box) than
#: a piece's widest.
_STRONG_ASPECT = 1000.0


def _strong_dims(obj: Graph, lo, hi, lb, rank, known, level: float, root_width) -> np.ndarray:
    """Strong branching: the split dimension of each piece, chosen by trying them.

    Both halves along each of the best-ranked dimensions are bounded with the cheap
    forward-mode CROWN (intermediate bounds from forward linear bounds, inherited bounds
    intersected); the dimension whose halves' bounds, capped at ``level`` (what would close
    them), add up to the most wins. Where no candidate improves on the piece, the ranking's
    first choice stands.
    """
    n, k = len(lo), min(lo.shape[1], _STRONG_CANDIDATES)
    relative = (hi - lo) / root_width
    # dimensions already far thinner than the widest are no candidates: one-step gains alone
    # can peel a dimension down to nothing while the gap stays open
    thin = relative < relative.max(axis=1, keepdims=True) / _STRONG_ASPECT
    rank = np.where(thin, -np.inf, rank)
    cand = np.argsort(-rank, axis=1, kind="stable")[:, :k]
    halves = [_halves(lo, hi, cand[:, j]) for j in range(k)]
    # the pieces themselves come first: halves are compared with the same cheap bound
    c_lo = np.concatenate([lo, *(h[0] for h in halves)])
    c_hi = np.concatenate([hi, *(h[1] for h in halves)])
    prior = {
        key: (np.concatenate([v[0]] * (2 * k + 1)), np.concatenate([v[1]] * (2 * k + 1)))
        for key, v in known.items()
    }
    state, _ = crown.compute_state(
        obj,
        c_lo.reshape(-1, *obj.input_shape),
        c_hi.reshape(-1, *obj.input_shape),
        prior=prior,
        forward=True,
        two_slopes=False,  # a cheap comparison of candidates, like the pieces' own bounds
    )
    lower = crown.output_bounds(state)[0].max(axis=1)
    base = np.minimum(np.maximum(lower[:n], lb), level)
    capped = np.minimum(np.maximum(lower[n:], np.tile(base, 2 * k)), level).reshape(k, 2, n)
    gain = capped.sum(axis=1) - 2 * base  # (k, n)
    gain[~np.isfinite(np.take_along_axis(rank, cand, axis=1)).T] = -np.inf
    best = gain.argmax(axis=0)
    # a gain that is tiny next to the gap left is noise: keep the ranking's choice then
    enough = gain.max(axis=0) > 1e-3 * (level - base) + 1e-9 * (1 + abs(level))
    best = np.where(enough, best, 0)
    return cand[np.arange(n), best]


def _relaxed_tensors(graph: Graph) -> list[str]:
    """Tensors made by affine nodes that feed a nonlinear node: their bounds carry over from a
    piece to its halves."""
    return sorted(
        {
            src
            for node in graph
            if node.kind != "linear"
            for src in node.inputs
            if src in graph.nodes and graph.nodes[src].kind == "linear"
        }
    )


def _halves(lo, hi, dim):
    rows = np.arange(len(lo))
    mid = (lo[rows, dim] + hi[rows, dim]) / 2
    left_hi, right_lo = hi.copy(), lo.copy()
    left_hi[rows, dim] = mid
    right_lo[rows, dim] = mid
    return np.concatenate([lo, right_lo]), np.concatenate([left_hi, hi])


def _combinations(k: int) -> np.ndarray:
    """Convex weights: the uniform mix and every pair's average."""
    pairs = [np.eye(k)[i] / 2 + np.eye(k)[j] / 2 for i in range(k) for j in range(i + 1, k)]
    return np.array([np.full(k, 1.0 / k), *pairs]) if k > 2 else np.full((1, k), 1.0 / k)


def _descend_max(obj: Graph, lo, hi, starts: np.ndarray, steps: int) -> np.ndarray:
    """Projected sign-gradient descent on ``g = max_i obj_i`` (the gradient of the row that is
    largest at each point) from flat starting points; returns the best point of each run."""
    x, width = starts.copy(), hi - lo
    best_x, best_v = x.copy(), np.full(len(x), np.inf)
    for factor in [*np.geomspace(0.2, 1e-4, max(steps, 1)), 0.0]:
        y = obj.forward(x.reshape(-1, *obj.input_shape)).reshape(len(x), -1)
        value = y.max(axis=1)
        better = value < best_v
        best_v[better], best_x[better] = value[better], x[better]
        if factor == 0.0:
            break
        cot = np.zeros_like(y)
        cot[np.arange(len(x)), y.argmax(axis=1)] = 1.0
        _, grad = obj.value_and_grad(
            x.reshape(-1, *obj.input_shape), cot.reshape(-1, *obj.output_shape)
        )
        x = np.clip(x - factor * width * np.sign(grad.reshape(len(x), -1)), lo, hi)
    return best_x


def _evaluate(obj: Graph, points: np.ndarray) -> np.ndarray:
    """g at points (P, d): the max over the objective rows."""
    return obj.forward(points.reshape(-1, *obj.input_shape)).reshape(len(points), -1).max(axis=1)


def _leaf_candidates(obj: Graph, c_lb, c_known, cut: float, max_unstable: int) -> np.ndarray:
    """Children CROWN leaves open (bound at most ``cut``) with at most ``max_unstable``
    unstable neurons, lowest bound first: where splitting is stuck."""
    counts = unstable_counts(obj, c_known)
    cand = np.flatnonzero((c_lb <= cut) & (counts <= max_unstable))
    return cand[np.argsort(c_lb[cand], kind="stable")]


def _solve_piece(
    obj: Graph, lo, hi, known: dict, i: int, enough, seconds, leaves, start, max_binaries=None
):
    """``milp.solve_minmax`` on piece ``i`` (box ``lo``, ``hi``; neuron bounds ``known``, arrays
    with a piece axis); None, after a warning, when the solver fails: exact solves only speed
    the search up, splitting goes on without them."""
    bounds = {k: (v[0][i].reshape(-1), v[1][i].reshape(-1)) for k, v in known.items()}
    try:
        return milp.solve_minmax(
            obj,
            lo,
            hi,
            bounds,
            enough=enough,
            time_limit=seconds,
            tighten=leaves.tighten,
            start=start,
            max_binaries=max_binaries,
        )
    except Exception as exc:  # noqa: BLE001 - see above
        warnings.warn(
            f"exact leaf solves stopped ({exc!r}); the search goes on by splitting",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def _intersect(known: dict, extra: dict) -> dict:
    """Neuron bounds of every piece (arrays with a piece axis) intersected with bounds that hold
    on the whole box (flat, from its exact solve)."""
    out = dict(known)
    for k, (lt, ht) in extra.items():
        if k in out:
            l0, h0 = out[k]
            out[k] = (
                np.maximum(l0, lt.reshape(1, *l0.shape[1:])),
                np.minimum(h0, ht.reshape(1, *h0.shape[1:])),
            )
    return out


def _best_of_children(pts: np.ndarray, vals: np.ndarray, n: int) -> np.ndarray:
    """Each child's best point: ``pts`` holds the n children's centres, then each child's
    corners in turn (``vals``: g there)."""
    rows = (len(pts) - n) // n
    own_vals = np.concatenate([vals[:n, None], vals[n:].reshape(n, rows)], axis=1)
    own_pts = np.concatenate([pts[:n, None], pts[n:].reshape(n, rows, -1)], axis=1)
    return own_pts[np.arange(n), own_vals.argmin(axis=1)]


def minimize(
    graph: Graph,
    lo,
    hi,
    weight,
    bias=None,
    *,
    target: float | None = None,
    atol: float = 1e-4,
    rtol: float = 0.0,
    time_limit: float = 60.0,
    max_open: int = 200_000,
    max_pieces: int | None = None,
    batch: int | None = None,
    combine: bool = True,
    branching: str = "auto",
    leaves: Leaves | None = None,
    alpha_steps: int = ALPHA_STEPS,
    attack: dict | None = None,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Search:
    """Minimise ``max_i (weight_i . y(x) - bias_i)`` over the box ``[lo, hi]`` (see module doc).

    ``attack`` is the inner-bound budget spent on the whole box first (a ``sampling.run`` option
    dict; default the "fast" preset). ``batch`` pieces are split per step (default: as many as
    keep each tensor of a batched CROWN call near half a million values, at most 1024: larger
    batches amortise Python's per-node cost). ``progress`` is called after each batch with a dict of
    ``lower``, ``value``, ``open``, ``pieces``, ``seconds``; ``stop``, if given, before each batch:
    True ends the search as a time limit would.

    ``branching`` picks what to split: ``"relu"`` splits neurons (``_split_choice``; ReLU and
    LeakyReLU networks); the others split input dimensions: ``"rank"`` takes the ranking of
    ``_bound`` (one CROWN call per half); ``"strong"`` tries the best-ranked dimensions with a
    cheap bound first (``_strong_dims``; inputs of at most 64 values); ``"mixed"`` alternates
    the two from batch to batch. ``"auto"`` (default) is "relu" on ReLU networks with more than
    64 inputs, else "rank" (``choose_branching``). Among input splits none wins everywhere: on
    ACAS Xu strong branching proves property 1 ten times faster than rank branching, rank
    branching the small boxes of properties 5 and 9 several times faster, and strong branching
    alone can stall (its one-step gains keep choosing splits that do not close the gap).
    ``verify`` runs rank and strong side by side; for output ranges ``run`` picks rank on boxes
    CROWN leaves with few unstable neurons and mixed, the robust middle, on wider ones.

    ``alpha_steps``: see ``ALPHA_STEPS``.

    ``leaves``: on piecewise-linear networks with at most 64 inputs, and with ReLU splitting,
    pieces that CROWN leaves open with few unstable neurons are solved exactly
    (``milp.solve_minmax``: the LP relaxation, often enough, first over CROWN's bounds, then
    over LP-tightened ones, else the MILP); see ``Leaves``. Default ``Leaves()``,
    ``RELU_LEAVES`` with ReLU splitting.
    """
    t0 = time.perf_counter()
    branching = choose_branching(graph, branching)
    relu = branching == "relu"
    if leaves is None:
        leaves = RELU_LEAVES if relu else Leaves()
    weight = np.atleast_2d(np.asarray(weight, dtype=np.float64))
    own_rows = len(weight)  # the objective's own rows, before any convex mixes
    bias = np.zeros(len(weight)) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    if combine and len(weight) > 1:
        # g >= any convex combination of its rows, and bounding a combination directly keeps
        # the correlation between rows that a per-row bound loses
        mix = _combinations(len(weight))
        weight, bias = np.concatenate([weight, mix @ weight]), np.concatenate([bias, mix @ bias])
    obj = with_objective(graph, weight, -bias)
    lo = np.asarray(lo, dtype=np.float64).reshape(1, -1)
    hi = np.asarray(hi, dtype=np.float64).reshape(1, -1)
    shape = graph.input_shape

    rng = np.random.default_rng(seed)
    # inner side first: samples and a gradient attack on every row, judged by g itself
    opts = sampling.preset("fast" if attack is None else attack)
    box = Box.from_bounds(lo.reshape(shape), hi.reshape(shape), shape)
    inner = sampling.run(obj, box, seed=seed, **opts)
    cands = np.concatenate([inner.witness_lower.reshape(-1, lo.shape[1]), lo, hi])
    if len(weight) > 1:  # g is a max of rows: also descend on g itself from its best points
        pts = sampling.candidate_points(box, 1000, 64, rng, faces=1000)[0]
        pts = np.concatenate([pts.reshape(len(pts), -1), cands])
        best = pts[np.argsort(_evaluate(obj, pts))[:8]]
        cands = np.concatenate([cands, _descend_max(obj, lo[0], hi[0], best, opts["steps"])])
    vals = _evaluate(obj, cands)
    value, witness = float(vals.min()), cands[vals.argmin()].copy()

    # on piecewise-linear nets one row's minimum over a linear region is an LP: polishing the
    # best point lands the attained value on a local optimum instead of near it
    can_polish = obj.input_size <= 64 and regions.piecewise_linear(obj)
    # forward mode costs d values per neuron, so strong branching is for small inputs only
    strong = branching in ("strong", "mixed") and obj.input_size <= 64
    step = -1
    polished_at = -np.inf
    leaf_seconds, leaf_tried, leaf_proved = 0.0, 0, 0
    needed = {i for n in obj if n.kind != "linear" for i in n.inputs} - {obj.input_name}
    exact_leaves = (relu or can_polish) and needed <= set(_relaxed_tensors(obj))
    use_leaves = leaves.unstable > 0 and exact_leaves
    alpha_seconds, alpha_tried, alpha_proved = 0.0, 0, 0
    polish_seconds = 0.0  # time in LPs from fresh samples (kept near a tenth of the run)

    def polish(x: np.ndarray) -> tuple[float, np.ndarray]:
        if len(weight) == 1:
            y = regions.polish(obj, lo[0], hi[0], x.reshape(shape), 0, -1.0).reshape(-1)
        else:  # g is the max of the rows: minimise it over x's linear region
            y = regions.region_minmax(regions.linear_region(obj, x), lo[0], hi[0])
            y = x if y is None else np.clip(y, lo[0], hi[0])
        return float(_evaluate(obj, y[None])[0]), y

    if can_polish:
        value, witness = min((value, witness), polish(witness), key=lambda t: t[0])

    widest = max([obj.input_size] + [n.out_size for n in obj])
    batch_size = batch or int(np.clip(2**19 // widest, 16, 1024))
    root_width = np.where(hi > lo, hi - lo, 1.0)
    split_neurons = _split_neurons(obj)
    offsets = np.cumsum([0] + [math.prod(obj.shapes[src]) for _, src in split_neurons])

    def settle(p_lo, p_hi, p_lb, choice, known, inherited=None) -> None:
        """ReLU splitting: pieces whose split constraints cross CROWN's bounds are empty
        (bound +inf); pieces with no unstable neuron left are affine on their domain, which
        an LP solves exactly (their bound becomes its optimum, the optimum a candidate)."""
        nonlocal value, witness
        if inherited is not None:
            for t, (l_in, h_in) in inherited.items():
                l_out, h_out = known[t]
                tol = 1e-9 * (1 + np.abs(l_in) + np.abs(h_in))
                crossed = (l_out < l_in - tol) | (h_out > h_in + tol)
                p_lb[crossed.reshape(len(p_lb), -1).any(axis=1)] = np.inf
        for i in np.flatnonzero((choice[:, 0] < 0) & np.isfinite(p_lb)):
            pattern = {act: known[src][0][i] >= 0 for act, src in split_neurons}
            region = regions.linear_region(obj, (p_lo[i] + p_hi[i]) / 2, pattern)
            x = regions.region_minmax(region, p_lo[i], p_hi[i])
            if x is None:  # the solver found the piece empty
                p_lb[i] = np.inf
                continue
            exact = float((region.A @ x + region.b).max())  # at the LP's own optimum
            # the LP's tolerances (1e-7): never claim more than it proved
            p_lb[i] = max(p_lb[i], exact - 1e-6 * (1 + abs(exact)))
            x = np.clip(x, p_lo[i], p_hi[i])
            v = float(_evaluate(obj, x[None])[0])
            if v < value:
                value, witness = v, x.copy()

    root_prior = _root_bounds(graph, lo, hi, t0 + ROOT_ALPHA_SHARE * time_limit) if relu else None
    lb, rank, _, open_known, _ = _bound(obj, lo, hi, root_width, root_prior, relu)
    root_box, root_known = (lo[0], hi[0]), open_known
    root_bound = -np.inf  # proven on the whole box by its exact solve
    root_pending = (
        leaves.root > 0
        and exact_leaves
        and (
            leaves.root_unstable is None
            or int(np.sum(unstable_counts(obj, open_known))) <= leaves.root_unstable
        )
    )

    def solve_root() -> dict | None:
        """The whole box's exact solve (``Leaves.root``); its LP-tightened neuron bounds."""
        nonlocal value, witness, root_bound, use_leaves, root_pending
        root_pending = False
        enough = target if target is not None else cut()
        res = _solve_piece(
            obj,
            *root_box,
            root_known,
            0,
            enough,
            leaves.root * (time_limit - (time.perf_counter() - t0)),
            leaves,
            witness,
            max_binaries=leaves.root_binaries,
        )
        if res is None:
            use_leaves = False
            return None
        if res.value < value:
            value, witness = res.value, np.asarray(res.x, dtype=np.float64).reshape(-1)
        root_bound = max(root_bound, res.bound)
        return res.bounds

    floor = np.inf  # smallest lower bound among pruned pieces

    def cut() -> float:
        """Pieces bounded above this cannot matter: the target, or the best value less the
        tolerance."""
        return target if target is not None else value - (atol + rtol * abs(value))

    if root_pending and leaves.root_after <= 0:
        tight = solve_root()
        if tight:  # bound the box again with the tightened neuron bounds
            lb2, rank, _, open_known, _ = _bound(
                obj, lo, hi, root_width, _intersect(open_known, tight), relu
            )
            lb = np.maximum(lb, lb2)
        lb = np.maximum(lb, root_bound)
    if relu:
        settle(lo, hi, lb, rank, open_known)
        if rank[0, 0] < 0:  # nothing to split: the LP settled it
            floor, lb = float(lb[0]), np.full(0, np.inf)
            lo, hi, rank = lo[:0], hi[:0], rank[:0]
            open_known = {k: (v[0][:0], v[1][:0]) for k, v in open_known.items()}
    open_lo, open_hi, open_lb, open_rank = lo, hi, lb, rank
    pieces = 1
    status = Status.OK

    def closed() -> bool:
        lower = max(min(float(open_lb.min(initial=np.inf)), floor, value), root_bound)
        if target is not None:
            return lower > target or value <= target
        return value - lower <= atol + rtol * abs(value)

    while open_lb.size and not closed():
        if (
            time.perf_counter() - t0 > time_limit
            or open_lb.size > max_open
            or (max_pieces is not None and pieces >= max_pieces)
            or (stop is not None and stop())
        ):
            status = Status.TIMEOUT
            break
        take = np.argsort(open_lb, kind="stable")[:batch_size]
        keep = np.ones(open_lb.size, dtype=bool)
        keep[take] = False
        step += 1
        if strong and (branching == "strong" or step % 2 == 0):
            take = take[: max(1, batch_size // min(obj.input_size, _STRONG_CANDIDATES))]
            keep = np.ones(open_lb.size, dtype=bool)
            keep[take] = False
            level = target if target is not None else value
            known = {k: (v[0][take], v[1][take]) for k, v in open_known.items()}
            dims = _strong_dims(
                obj,
                open_lo[take],
                open_hi[take],
                open_lb[take],
                open_rank[take],
                known,
                level,
                root_width,
            )
        elif not relu:
            dims = open_rank[take].argmax(axis=1)
        if relu:  # exhausted pieces were settled: every piece taken has a neuron to split
            c_lo, c_hi = np.tile(open_lo[take], (2, 1)), np.tile(open_hi[take], (2, 1))
        else:
            c_lo, c_hi = _halves(open_lo[take], open_hi[take], dims)
        # a piece's neuron bounds hold on its halves: CROWN only re-bounds what they leave open
        inherited = {
            k: (np.concatenate([v[0][take]] * 2), np.concatenate([v[1][take]] * 2))
            for k, v in open_known.items()
        }
        if relu:  # first halves: the neuron inactive (z <= 0); second halves: active (z >= 0)
            choice = open_rank[take, 0].astype(np.int64)
            m = len(take)
            for (_, src), first, end in zip(split_neurons, offsets[:-1], offsets[1:], strict=True):
                rows = np.flatnonzero((choice >= first) & (choice < end))
                cols = choice[rows] - first
                low, high = (v.reshape(2 * m, -1) for v in inherited[src])
                high[rows, cols] = np.minimum(high[rows, cols], 0.0)
                low[m + rows, cols] = np.maximum(low[m + rows, cols], 0.0)
        c_lb, c_rank, c_corners, c_known, c_state = _bound(
            obj, c_lo, c_hi, root_width, inherited, relu
        )
        if relu:
            settle(c_lo, c_hi, c_lb, c_rank, c_known, inherited)
        # a piece's bound also holds on its halves (CROWN's own bound is not monotone)
        c_lb = np.maximum(c_lb, np.tile(open_lb[take], 2))
        elapsed = time.perf_counter() - t0
        if alpha_steps and elapsed >= ALPHA_AFTER:
            # the open children closest to the cut, as many as alpha's earned share pays for
            share = _earned_share(alpha_tried, alpha_proved, ALPHA_SHARE, ALPHA_SHARE)
            cost = alpha_seconds / alpha_tried if alpha_tried else 1e-3  # seconds per piece
            allowed = int(max(share * elapsed - alpha_seconds, 0.0) / cost)
            sel = np.flatnonzero(c_lb <= cut())
            sel = sel[np.argsort(-c_lb[sel], kind="stable")][:allowed]
            if sel.size:
                t_alpha = time.perf_counter()
                c_lb[sel] = np.maximum(
                    c_lb[sel],
                    _alpha_lower(obj, c_state, sel, own_rows, alpha_steps, relu),
                )
                alpha_seconds += time.perf_counter() - t_alpha
                alpha_tried += sel.size
                alpha_proved += int(np.sum(c_lb[sel] > cut()))
        pieces += len(c_lb)
        pts = np.concatenate([(c_lo + c_hi) / 2, c_corners.reshape(-1, lo.shape[1])])
        vals = _evaluate(obj, pts)
        if vals.min() < value:
            value, witness = float(vals.min()), pts[vals.argmin()].copy()
            if can_polish and time.perf_counter() - polished_at > 0.5:
                value, witness = min((value, witness), polish(witness), key=lambda t: t[0])
                polished_at = time.perf_counter()
        if can_polish and polish_seconds < 0.1 * (time.perf_counter() - t0):
            # g's smallest values can sit in a linear region too small for samples or gradient
            # steps to hit, and the bounds rarely point there while they are loose: LPs over
            # the linear regions of other good points (multi-start) keep looking, taking turns
            # between this batch's best point (where the bounds point) and fresh samples' best
            t_polish = time.perf_counter()
            if step % 2:
                start = pts[vals.argmin()]
            else:
                fresh = box.on_faces(1024, rng).reshape(1024, -1)
                start = fresh[np.argmin(_evaluate(obj, fresh))]
            value, witness = min((value, witness), polish(start), key=lambda t: t[0])
            polish_seconds += time.perf_counter() - t_polish
        if use_leaves and time.perf_counter() - t0 >= leaves.after:
            t_leaf = time.perf_counter()
            budget = leaves.budget(t_leaf - t0, leaf_tried, leaf_proved) - leaf_seconds
            cand = _leaf_candidates(obj, c_lb, c_known, cut(), leaves.unstable)
            starts = _best_of_children(pts, vals, len(c_lb)) if cand.size else None
            for i in cand:
                if time.perf_counter() - t_leaf > budget:
                    break
                res = _solve_piece(
                    obj, c_lo[i], c_hi[i], c_known, i, cut(), leaves.seconds, leaves, starts[i]
                )
                if res is None:
                    use_leaves = False
                    break
                c_lb[i] = max(c_lb[i], res.bound)
                leaf_tried += 1
                leaf_proved += bool(c_lb[i] > cut())
                if res.value < value:
                    value, witness = res.value, np.asarray(res.x, dtype=np.float64).reshape(-1)
                    if target is not None and value <= target:
                        break
            leaf_seconds += time.perf_counter() - t_leaf
        # prune pieces that cannot hold anything below the best value (or the target)
        level = cut()
        drop = c_lb > level if target is not None else c_lb >= level
        if relu:  # settled by an LP (or empty): exact already, nothing left to split
            drop |= c_rank[:, 0] < 0
        if drop.any():
            floor = min(floor, float(c_lb[drop].min()))
        open_lo = np.concatenate([open_lo[keep], c_lo[~drop]])
        open_hi = np.concatenate([open_hi[keep], c_hi[~drop]])
        open_lb = np.concatenate([open_lb[keep], c_lb[~drop]])
        open_rank = np.concatenate([open_rank[keep], c_rank[~drop]])
        open_known = {
            k: (
                np.concatenate([v[0][keep], c_known[k][0][~drop]]),
                np.concatenate([v[1][keep], c_known[k][1][~drop]]),
            )
            for k, v in open_known.items()
        }
        if progress is not None:
            progress(
                {
                    "lower": min(float(open_lb.min(initial=np.inf)), floor, value),
                    "value": value,
                    "open": int(open_lb.size),
                    "pieces": pieces,
                    "seconds": time.perf_counter() - t0,
                }
            )
        if root_pending and time.perf_counter() - t0 >= leaves.root_after and not closed():
            tight = solve_root()
            if tight:
                open_known = _intersect(open_known, tight)
    lower = max(min(float(open_lb.min(initial=np.inf)), floor, value), root_bound)
    return Search(
        lower,
        value,
        witness.reshape(shape),
        status,
        pieces,
        int(open_lb.size),
        time.perf_counter() - t0,
    )


#: Output ranges of boxes where CROWN leaves at most this many neurons unstable split by the
#: ranking alone; wider boxes alternate it with strong branching. On ACAS Xu the property 3/4
#: boxes (86-118 unstable) close 3x faster by rank (the 20 ranges of 1_1 and 3_3: 11 s vs 36 s
#: mixed), property 1 (240-270) 3x slower (1_1: 86 s vs 25 s).
RANK_UNSTABLE = 128


def range_branching(n_unstable: int) -> str:
    """Input-splitting mode for a range search over a box CROWN leaves ``n_unstable`` neurons
    unstable in: "rank" up to ``RANK_UNSTABLE``, "mixed" above."""
    return "mixed" if n_unstable > RANK_UNSTABLE else "rank"


def _range_branching(graph: Graph, lo: np.ndarray, hi: np.ndarray) -> str:
    """``range_branching`` of one box, from its CROWN bounds."""
    state, _ = crown.compute_state(graph, lo[None], hi[None])
    known = {t: state.bounds[t] for t in _relaxed_tensors(graph)}
    return range_branching(int(np.sum(unstable_counts(graph, known))))


#: Seconds a search left open needs to be worth running again with the time others left.
SECOND_ROUND_MIN = 1.0


def _merge(first: Search, again: Search) -> Search:
    """Two searches for one minimum: the higher proven bound, the better attained value."""
    best = again if again.value < first.value else first
    closed = Status.OK in (first.status, again.status)
    return Search(
        max(first.lower, again.lower),
        best.value,
        best.witness,
        Status.OK if closed else Status.TIMEOUT,
        first.pieces + again.pieces,
        again.open,
        first.seconds + again.seconds,
    )


def _one(args, time_limit: float) -> Search:
    graph, lo, hi, w, kwargs = args
    return minimize(graph, lo, hi, w, time_limit=time_limit, **kwargs)


def run(
    graph: Graph,
    box: Box,
    atol: float = 1e-4,
    rtol: float = 0.0,
    time_limit: float = 60.0,
    outputs=None,
    workers: int | None = 1,
    batch: int | None = None,
    max_open: int = 200_000,
    max_pieces: int | None = None,
    attack: dict | None = None,
    progress: Callable[[dict], None] | None = None,
    seed: int = 0,
    branching: str = "auto",
    leaves: Leaves | None = None,
    alpha_steps: int = ALPHA_STEPS,
) -> BoundsResult:
    """Output ranges by branch and bound: for every box, output and direction, ``minimize``
    until the gap is within ``atol + rtol |value|`` or ``time_limit`` (seconds for the whole
    run; what a search leaves unused passes to the next, and with one worker what is left at
    the end to the searches still open, which run again) runs out. ``outputs`` restricts the
    search to some outputs (the others keep CROWN's bounds); ``workers`` runs searches in
    parallel processes (None: all cores); ``branching``, ``leaves`` and ``alpha_steps`` are
    ``minimize``'s,
    except that "auto" picks rank or mixed input splitting per box (``_range_branching``).
    Stopped searches leave sound outer bounds and status "timeout"."""
    t0 = time.perf_counter()
    auto = branching == "auto"
    branching = choose_branching(graph, branching, "mixed")
    per_box = auto and branching == "mixed"
    n = graph.output_size
    outs = graph.output_indices(outputs)
    jobs = []
    for b in range(box.n):
        for j in outs:
            for sign in (1.0, -1.0):  # min y_j, then min -y_j = -max y_j
                w = np.zeros((1, n))
                w[0, j] = sign
                jobs.append((b, j, sign, w))
    kwargs = {
        "atol": atol,
        "rtol": rtol,
        "batch": batch,
        "max_open": max_open,
        "max_pieces": max_pieces,
        "attack": attack,
        "seed": seed,
        "branching": branching,
        "leaves": leaves,
        "alpha_steps": alpha_steps,
    }
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    box_kwargs = [
        {**kwargs, "branching": _range_branching(graph, box.lo[b], box.hi[b])}
        if per_box
        else kwargs
        for b in range(box.n)
    ]
    args = [(graph, box.lo[b], box.hi[b], w, box_kwargs[b]) for b, _, _, w in jobs]
    if workers > 1 and len(jobs) > 1:
        share = time_limit * min(workers, len(jobs)) / len(jobs)
        with ProcessPoolExecutor(workers, initializer=one_blas_thread) as pool:
            searches = list(pool.map(_one, args, [share] * len(args)))
    else:
        searches = []
        for k, a in enumerate(args):
            left = time_limit - (time.perf_counter() - t0)
            searches.append(_one(a, max(left, 0.0) / (len(args) - k)))  # unused time rolls on
            if progress is not None:
                progress({"done": k + 1, "total": len(args), "seconds": time.perf_counter() - t0})
        if max_pieces is None:
            # what searches that closed early left over goes to those still open: each runs
            # again with its share, and keeps the better of its two bounds and values
            still = [k for k, s in enumerate(searches) if s.status is Status.TIMEOUT]
            for i, k in enumerate(still):
                share = (time_limit - (time.perf_counter() - t0)) / (len(still) - i)
                if share < SECOND_ROUND_MIN:
                    break
                searches[k] = _merge(searches[k], _one(args[k], share))
    # outputs not searched keep CROWN's bounds and the centre's value
    base = crown.run(graph, box)
    centre = graph.forward(box.center).reshape(box.n, n)
    lower, upper = base._lower.copy(), base._upper.copy()
    inner_lo, inner_hi = centre.copy(), centre.copy()
    w_lo = np.repeat(box.center[:, None], n, axis=1)
    w_hi = w_lo.copy()
    status = Status.OK
    for (b, j, sign, _), s in zip(jobs, searches, strict=True):
        if s.status is Status.TIMEOUT:
            status = Status.TIMEOUT
        if sign > 0:
            lower[b, j], inner_lo[b, j], w_lo[b, j] = s.lower, s.value, s.witness
        else:
            upper[b, j], inner_hi[b, j], w_hi[b, j] = -s.lower, -s.value, s.witness
    # report the witnesses' values from a plain forward pass of the model itself
    for wit, inner in ((w_lo, inner_lo), (w_hi, inner_hi)):
        y = graph.forward(wit.reshape(-1, *graph.input_shape)).reshape(box.n, n, n)
        inner[:] = np.einsum("bjj->bj", y)
    return BoundsResult(
        n_boxes=box.n,
        n_outputs=n,
        input_shape=graph.input_shape,
        output_shape=graph.output_shape,
        lower=lower,
        upper=upper,
        inner_lower=inner_lo,
        inner_upper=inner_hi,
        witness_lower=w_lo,
        witness_upper=w_hi,
        method="bab",
        batched=box.batched,
        status=status,
        timings={"bab": time.perf_counter() - t0},
        info={"pieces": int(sum(s.pieces for s in searches))},
    )
