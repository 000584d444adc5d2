"""Exact output ranges by MILP (``method="milp"``), and ``solve_range`` for branch and bound.

Per box, one big-M MILP (``nnrange.milp.Encoding``) is built from CROWN's intermediate bounds
(padded for floating point, optionally tightened by LPs), then every requested output is
maximised and minimised by changing only the objective. Each optimum's input is run through
``graph.forward``: that value, with its witness, is the inner bound, and a disagreement with the
solver's value is reported in ``result.info["witness_mismatch"]`` and as a warning. The outer
bound is the solver's proven bound (its dual bound; the best bound when stopped early) widened by
a small float slack and intersected with CROWN's, so a timeout still gives sound bounds (status
``timeout``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..box import Box
from ..errors import EngineError
from ..graph import Graph, with_objective
from ..milp import Encoding, HighsSolver, LpTightener, make_solver, unsupported_reason
from ..milp.encoding import nonzeros
from ..milp.solving import Outcome
from ..relax import unstable_counts
from ..result import BoundsResult, Status
from . import crown, sampling

#: Solver stopping gap (relative and absolute) of every MILP.
GAP_REL = 1e-7
GAP_ABS = 1e-7
#: Outward slack added to the solver's proven bounds (LP tolerances, rounding).
SLACK_ABS = 1e-7
SLACK_REL = 1e-7
#: Solver value and forward value of a witness further apart than this are reported.
WITNESS_TOL = 1e-6
#: Boxes whose MILP would need more binaries than this are split (see ``run``): on ACAS Xu's
#: property 1 box (242 binaries) one MILP finds no feasible point in 300 s, while pieces with
#: at most a few dozen each solve in tens of milliseconds.
SPLIT_BINARIES = 64
#: Split boxes with at most this many unstable neurons solve their pieces by the leaf policy
#: ``bab.EARLY_LEAVES`` (exact solves from the start), wider ones by ``bab.FINE_LEAVES``. On
#: the ACAS Xu property 3/4 boxes (86-118 unstable) that took 896 s against 1134 s with bab's
#: default (55 of 60 directions closed against 53); on property 1 boxes (~250) early leaves
#: slow the splitting that has to come first.
EARLY_LEAVES_UNSTABLE = 128
#: Absolute gap to which a split box's searches close (the exact reference's MIP gap).
SPLIT_ATOL = 1e-6
#: Budget of the sampling + gradient search that provides MIP starts (inner bounds).
START = {
    "samples": 256,
    "faces": 256,
    "corners": 64,
    "starts": 2,
    "steps": 20,
    "polish": False,
}


def supports(graph: Graph) -> str | None:
    """None when the engine handles ``graph`` by default, else the reason it refuses."""
    return unsupported_reason(graph)


def _slack(v: float) -> float:
    return SLACK_ABS + SLACK_REL * abs(v)


def _bounds_for(graph: Graph, lo: np.ndarray, hi: np.ndarray, pre_bounds: dict | None):
    """Intermediate bounds (``{tensor: (lower, upper)}``) and CROWN's output bounds (or None
    when ``pre_bounds`` covers every tensor and CROWN was not run)."""
    needed = {i for n in graph if n.kind != "linear" for i in n.inputs} - {graph.input_name}
    if pre_bounds is not None and needed <= set(pre_bounds):
        return dict(pre_bounds), None
    state, _ = crown.compute_state(graph, lo[None], hi[None])
    out_lo, out_hi, _ = crown.output_bounds(state)
    bounds = {name: state.bounds[name] for name in needed}
    for name, (l_, u_) in (pre_bounds or {}).items():
        if name in bounds:
            cl, cu = bounds[name]
            bounds[name] = (
                np.maximum(cl.reshape(-1), np.ravel(l_)),
                np.minimum(cu.reshape(-1), np.ravel(u_)),
            )
    return bounds, (out_lo.reshape(-1), out_hi.reshape(-1))


def _encode(graph, lo, hi, bounds, relaxed, tighten, deadline):
    """The encoding, its statistics, and the LP relaxation solver (None without HiGHS)."""
    if tighten not in (None, False, "lp"):
        raise EngineError(f"tighten must be 'lp' or None, not {tighten!r}")
    tightener = LpTightener(deadline) if tighten == "lp" else None
    t0 = time.perf_counter()
    enc = Encoding(graph, lo, hi, bounds, relaxed=relaxed, tightener=tightener)
    stats = {
        "columns": enc.model.n_cols,
        "rows": enc.model.n_rows,
        "binaries": enc.n_binaries,
        "build_seconds": time.perf_counter() - t0,
    }
    if tightener is not None:
        stats["tighten"] = tightener.stats()
    lp = tightener.lp if tightener is not None else None
    if lp is None:
        try:
            lp = HighsSolver(enc.model, integer=False)
        except ImportError:
            lp = None
    return enc, stats, lp


def _close(a: float, b: float, gap_rel: float, gap_abs: float) -> bool:
    if not (np.isfinite(a) and np.isfinite(b)):
        return False
    return abs(a - b) <= max(gap_abs, gap_rel * max(abs(a), abs(b)))


class _Solver:
    """The chosen back end with CBC as fallback when a HiGHS solve errors."""

    def __init__(self, enc: Encoding, name: str, gap_rel: float, gap_abs: float, threads):
        self.enc = enc
        self.args = (gap_rel, gap_abs, threads)
        self.main, note = make_solver(name, enc.model, *self.args)
        self.fallback = None
        self.notes = [note] if note else []

    @property
    def name(self) -> str:
        return self.main.name

    def solve(self, cost, offset, time_limit, cutoff=None, start=None) -> Outcome:
        try:
            out = self.main.solve(cost, offset, time_limit, cutoff, start)
        except Exception as exc:  # a solver crash becomes a fallback, not a failure
            out = Outcome("error", -np.inf, None, None, 0.0, self.main.name, repr(exc))
        if out.status == "error" and self.main.name != "cbc":
            self.notes.append(f"{self.main.name} failed ({out.message}); retried with CBC")
            try:
                if self.fallback is None:
                    self.fallback, _ = make_solver("cbc", self.enc.model, *self.args)
                out = self.fallback.solve(cost, offset, time_limit, cutoff, start)
            except Exception as exc:
                self.notes.append(f"CBC failed too ({exc!r})")
        return out


def _minimize(
    enc: Encoding,
    sv: _Solver,
    lp: HighsSolver | None,
    cost: np.ndarray,
    offset: float,
    x0: np.ndarray | None,
    known: float,
    limit: float | None,
    cutoff: float | None,
    gaps: tuple[float, float],
) -> Outcome:
    """Minimise ``cost . v + offset`` over the encoding. ``x0`` (an input) seeds the search;
    ``known`` is a proven lower bound (CROWN's). The MILP is skipped when the start's value
    meets ``known`` or the LP relaxation's bound within the gap, or either proves the cutoff."""
    start = v0 = None
    if x0 is not None:
        start = enc.assignment(x0)
        v0 = float(cost @ start) + offset
        if cutoff is not None and v0 > cutoff:
            start = v0 = None
    if not cost.any():  # the objective does not depend on any variable
        cols = start if start is not None else enc.assignment(enc.lo)
        return Outcome("optimal", offset, offset, cols, 0.0, "constant")
    if cutoff is not None and known >= cutoff:
        return Outcome("cutoff", float(cutoff), None, None, 0.0, "crown")
    if v0 is not None and _close(known, v0, *gaps):
        return Outcome("optimal", known, v0, start, 0.0, "crown")
    if limit is not None and limit <= 0:
        return Outcome("timeout", -np.inf, v0, start, 0.0, sv.name, "no time left")
    if lp is not None:
        relax = lp.solve(cost, offset, limit)
        if relax.status == "optimal":
            if cutoff is not None and relax.bound >= cutoff:
                return Outcome("cutoff", float(cutoff), None, None, relax.seconds, "lp")
            if v0 is not None and _close(relax.bound, v0, *gaps):
                return Outcome("optimal", relax.bound, v0, start, relax.seconds, "lp")
    return sv.solve(cost, offset, limit, cutoff, start)


def run(
    graph: Graph,
    box: Box,
    *,
    objective=None,
    outputs=None,
    solver: str = "highs",
    time_limit: float | None = None,
    solve_time_limit: float | None = None,
    tighten: str | None = "lp",
    tighten_time: float | None = None,
    relaxed: bool = False,
    split: bool | None = None,
    progress: Callable[[dict], None] | None = None,
    start: dict | bool = True,
    seed: int = 0,
    gap_rel: float = GAP_REL,
    gap_abs: float = GAP_ABS,
    threads: int | None = None,
) -> BoundsResult:
    """Exact [min, max] of each output (or of each row of ``objective``) by MILP.

    objective: ``(k, n_outputs)`` weights; bound ``objective @ y`` instead of ``y``.
    outputs: indices (of outputs, or objective rows) to solve; the others keep CROWN bounds.
    solver: ``"highs"`` (in process, default) or ``"cbc"`` (via pulp); HiGHS falls back to CBC
        when it is missing or a solve errors.
    time_limit: seconds for the whole run; solve_time_limit: seconds per solve (both: sound
        bounds and status ``timeout`` when hit).
    tighten: ``"lp"`` (default) re-bounds every neuron in doubt by LPs before encoding the
        next layer; None uses CROWN's bounds only. tighten_time: seconds for that, per box.
    relaxed: encode non-piecewise-linear nodes by their linear relaxation (sound outer bounds,
        not exact) instead of refusing them.
    split: solve a box by input splitting with MILP leaves (``bab.minimize``, to the gap
        ``SPLIT_ATOL``) instead of one MILP.
        None (default): when CROWN leaves more than ``SPLIT_BINARIES`` neurons unstable on a
        piecewise-linear net with at most 64 inputs; one big-M MILP over a wide box often
        finds neither a feasible point nor a useful bound in minutes.
    progress: called after each solve with a dict (box, output, sense, done, total,
        remaining, status, gap, seconds).
    start: MIP starts (and inner bounds when a solve finds nothing) from a quick sampling +
        gradient search (True, or a dict of ``sampling.run`` options), or False.
    gap_rel, gap_abs: the solver's stopping gap.
    """
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + float(time_limit)
    g = graph if objective is None else with_objective(graph, objective)
    if not relaxed and (reason := unsupported_reason(g)):
        raise EngineError(reason)
    n_out = g.output_size
    chosen = g.output_indices(outputs)
    start_opts = None if start is False else {**START, **(start if isinstance(start, dict) else {})}
    nb, shape = box.n, g.input_shape
    lower, upper = np.full((nb, n_out), -np.inf), np.full((nb, n_out), np.inf)
    inner_lo, inner_hi = np.full((nb, n_out), np.inf), np.full((nb, n_out), -np.inf)
    w_lo = np.broadcast_to(box.center[:, None], (nb, n_out, *shape)).copy()
    w_hi = w_lo.copy()
    status = Status.OK
    boxes_info, mismatches, notes = [], [], []
    total, done = nb * len(chosen) * 2, 0
    solver_name, exact_encoding = solver, True
    for b in range(nb):
        lo_b, hi_b = box.lo[b], box.hi[b]
        bounds, (lower[b], upper[b]) = _bounds_for(g, lo_b, hi_b, None)
        one_box = {k: (v[0][None], v[1][None]) for k, v in bounds.items()}
        n_unstable = int(np.sum(unstable_counts(g, one_box)))  # a scalar 0 for linear nets
        if _split_box(g, n_unstable, split, relaxed):
            enc = sv = lp = None
            stats = {"split": True, "unstable": n_unstable, "pieces": 0}
        else:
            tdl = None if tighten_time is None else time.perf_counter() + float(tighten_time)
            tdl = deadline if tdl is None else (tdl if deadline is None else min(tdl, deadline))
            enc, stats, lp = _encode(g, lo_b, hi_b, bounds, relaxed, tighten, tdl)
            exact_encoding = exact_encoding and enc.exact
            sv = _Solver(enc, solver, gap_rel, gap_abs, threads)
            solver_name = sv.name
        if start_opts is not None:
            s = sampling.run(g, box[b], seed=seed, **start_opts)
            inner_hi[b], inner_lo[b] = s.inner_upper, s.inner_lower
            w_hi[b], w_lo[b] = s.witness_upper, s.witness_lower
        solves = []
        for j in chosen:
            for d, sense in ((1.0, "max"), (-1.0, "min")):
                row = np.zeros(n_out)
                row[j] = -d  # minimise -d * y_j
                limit = solve_time_limit
                if deadline is not None:
                    left = deadline - time.perf_counter()
                    limit = left if limit is None else min(limit, left)
                if enc is None:
                    out, x, pieces = _split_minimize(
                        g, lo_b, hi_b, row, limit, gap_rel, seed, n_unstable
                    )
                    stats["pieces"] += pieces
                else:
                    cost, offset = enc.objective(row)
                    known = -d * (upper[b, j] if d > 0 else lower[b, j])
                    x0 = (w_hi if d > 0 else w_lo)[b, j] if start_opts is not None else None
                    gaps = (gap_rel, gap_abs)
                    out = _minimize(enc, sv, lp, cost, offset, x0, known, limit, None, gaps)
                    x = None if out.cols is None else enc.input_of(out.cols)
                if out.status not in ("optimal", "cutoff"):
                    status = Status.TIMEOUT
                if np.isfinite(out.bound):
                    proven = -d * out.bound + d * _slack(out.bound)
                    if d > 0:
                        upper[b, j] = min(upper[b, j], proven)
                    else:
                        lower[b, j] = max(lower[b, j], proven)
                rec = {
                    "output": j,
                    "sense": sense,
                    "status": out.status,
                    "by": out.solver,
                    "seconds": out.seconds,
                    "bound": float(-d * out.bound),
                }
                if x is not None:
                    v = float(g.forward(x[None]).reshape(-1)[j])
                    rec["value"] = solver_v = float(-d * out.value)
                    if exact_encoding and abs(v - solver_v) > WITNESS_TOL * (1 + abs(v)):
                        mismatches.append(
                            {
                                "box": b,
                                "output": j,
                                "sense": sense,
                                "solver": solver_v,
                                "forward": v,
                            }
                        )
                    if d > 0 and v > inner_hi[b, j]:
                        inner_hi[b, j], w_hi[b, j] = v, x
                    elif d < 0 and v < inner_lo[b, j]:
                        inner_lo[b, j], w_lo[b, j] = v, x
                solves.append(rec)
                done += 1
                if progress is not None:
                    gap = upper[b, j] - inner_hi[b, j] if d > 0 else inner_lo[b, j] - lower[b, j]
                    progress(
                        {
                            "box": b,
                            "output": j,
                            "sense": sense,
                            "done": done,
                            "total": total,
                            "remaining": total - done,
                            "status": out.status,
                            "gap": float(gap),
                            "seconds": time.perf_counter() - t0,
                        }
                    )
        # every witness (the box centre at worst) gets its forward value as the inner bound
        diag = (np.arange(n_out), np.arange(n_out))
        inner_hi[b] = g.forward(w_hi[b]).reshape(n_out, -1)[diag]
        inner_lo[b] = g.forward(w_lo[b]).reshape(n_out, -1)[diag]
        stats["solves"] = solves
        boxes_info.append(stats)
        notes += [] if sv is None else sv.notes
    if mismatches:
        m = mismatches[0]
        warnings.warn(
            f"milp: {len(mismatches)} optimum/optima disagree with the forward pass of their "
            f"witness beyond {WITNESS_TOL:g} (first: box {m['box']}, output {m['output']} "
            f"{m['sense']}: solver {m['solver']!r}, forward {m['forward']!r}); see "
            "result.info['witness_mismatch']",
            RuntimeWarning,
            stacklevel=2,
        )
    return BoundsResult(
        n_boxes=nb,
        n_outputs=n_out,
        input_shape=graph.input_shape,
        output_shape=g.output_shape,
        lower=np.minimum(lower, upper),
        upper=np.maximum(lower, upper),
        inner_lower=inner_lo,
        inner_upper=inner_hi,
        witness_lower=w_lo,
        witness_upper=w_hi,
        method="milp",
        batched=box.batched,
        status=status,
        timings={"milp": time.perf_counter() - t0},
        info={
            "milp": {
                "solver": solver_name,
                "exact_encoding": exact_encoding,
                "boxes": boxes_info,
                "notes": notes,
            },
            "witness_mismatch": mismatches,
        },
    )


def _split_box(graph: Graph, n_unstable: int, split: bool | None, relaxed: bool) -> bool:
    if split is None:
        return n_unstable > SPLIT_BINARIES and graph.input_size <= 64 and not relaxed
    if split:
        if relaxed or unsupported_reason(graph):
            raise EngineError(
                "split=True solves exact MILP pieces: it needs a piecewise-linear network and "
                "relaxed=False"
            )
        if graph.input_size > 64:
            raise EngineError(
                f"split=True splits the input box, which pays for at most 64 input values; this "
                f"network has {graph.input_size}. Use split=False (one MILP) instead."
            )
    return bool(split)


def _split_minimize(
    graph, lo, hi, row, limit, gap_rel, seed, n_unstable
) -> tuple[Outcome, np.ndarray, int]:
    """Minimise ``row . y`` over the box by input splitting (``bab.minimize``: pieces bounded
    by CROWN, split where the bound is loosest, those with few unstable neurons left solved by
    LP-tightened MILPs) to the gap ``SPLIT_ATOL``, branching as bab's range searches do
    (``bab.range_branching``), and with one MILP of the whole box if the search is still open
    after 5 s and LP tightening leaves few binaries (``bab.Leaves.root``: ACAS Xu 2_1
    property 3, which splitting alone leaves open at 120 s); returns the outcome, the best input
    and the number of pieces.
    Solving every piece with up to 40 or 60 binaries by MILP at once was slower on ACAS Xu
    property 1 at every gap tried, so boxes that wide (``EARLY_LEAVES_UNSTABLE``) solve only
    pieces with at most 16, but from the start (``bab.FINE_LEAVES``)."""
    from . import bab  # bab uses this module's leaf solves

    s = bab.minimize(
        graph,
        lo,
        hi,
        np.asarray(row, dtype=np.float64)[None],
        atol=SPLIT_ATOL,
        rtol=gap_rel,
        time_limit=np.inf if limit is None else limit,
        seed=seed,
        leaves=bab.EARLY_LEAVES if n_unstable <= EARLY_LEAVES_UNSTABLE else bab.FINE_LEAVES,
        branching=bab.range_branching(n_unstable),
    )
    status = "optimal" if s.status is Status.OK else "timeout"
    out = Outcome(status, s.lower, s.value, None, s.seconds, "split")
    return out, np.asarray(s.witness, dtype=np.float64).reshape(graph.input_shape), s.pieces


class RangeSolve(NamedTuple):
    """``bound``: proven bound of ``c . y`` in the requested sense over the box (the cutoff
    itself when nothing beats it); ``x``/``value``: the best input found and its forward value
    ``c . f(x)``; ``status``: ``Status.OK`` or ``Status.TIMEOUT``; ``bounds``: the encoding's
    bounds of the tensors feeding nonlinear nodes (flat lower, upper; after LP tightening, padded
    outward for rounding), where the solver reports them."""

    bound: float
    x: np.ndarray
    value: float
    status: Status
    bounds: dict | None = None


def solve_range(
    graph: Graph,
    lo,
    hi,
    c,
    sense: str = "max",
    cutoff: float | None = None,
    time_limit: float | None = None,
    pre_bounds: dict | None = None,
    *,
    start: np.ndarray | None = None,
    tighten: str | None = "lp",
    tighten_time: float | None = None,
    solver: str = "highs",
    relaxed: bool = False,
    gap_rel: float = GAP_REL,
    gap_abs: float = GAP_ABS,
) -> RangeSolve:
    """Bound ``c . y`` (``c`` over the flattened outputs) over the box ``[lo, hi]`` by one MILP.

    sense: ``"max"`` (an upper bound) or ``"min"`` (a lower bound).
    cutoff: the best value known so far; only better values are searched for, and when none
        exists the returned bound is the cutoff itself.
    pre_bounds: ``{tensor: (lower, upper)}`` sound bounds of the tensors feeding nonlinear nodes
        (e.g. from a batched CROWN pass); CROWN runs when some are missing.
    start: an input to seed the search (a MIP start; the fallback incumbent). Default: the
        box centre.
    """
    if sense not in ("max", "min"):
        raise EngineError(f"sense must be 'max' or 'min', not {sense!r}")
    d = 1.0 if sense == "max" else -1.0
    g = with_objective(graph, np.asarray(c, dtype=np.float64).reshape(1, -1))
    lo = np.asarray(lo, dtype=np.float64).reshape(graph.input_shape)
    hi = np.asarray(hi, dtype=np.float64).reshape(graph.input_shape)
    bounds, crown_out = _bounds_for(g, lo, hi, pre_bounds)
    deadline = None if tighten_time is None else time.perf_counter() + float(tighten_time)
    enc, _, lp = _encode(g, lo, hi, bounds, relaxed, tighten, deadline)
    cost, offset = enc.objective(np.array([-d]))
    x0 = (lo + hi) / 2 if start is None else np.clip(np.asarray(start).reshape(lo.shape), lo, hi)
    best_x, best_v = x0, float(g.forward(x0[None]).reshape(-1)[0])
    known = -np.inf if crown_out is None else -d * (crown_out[1][0] if d > 0 else crown_out[0][0])
    cut = None if cutoff is None else -d * float(cutoff)
    sv = _Solver(enc, solver, gap_rel, gap_abs, None)
    out = _minimize(enc, sv, lp, cost, offset, x0, known, time_limit, cut, (gap_rel, gap_abs))
    if out.status == "cutoff":
        bound = float(cutoff)
    elif np.isfinite(out.bound):
        bound = -d * out.bound + d * _slack(out.bound)
    else:
        bound = d * np.inf
    if crown_out is not None:
        bound = min(bound, crown_out[1][0]) if d > 0 else max(bound, crown_out[0][0])
    if out.cols is not None:
        x = enc.input_of(out.cols)
        v = float(g.forward(x[None]).reshape(-1)[0])
        if d * v > d * best_v:
            best_x, best_v = x, v
    status = Status.OK if out.status in ("optimal", "cutoff") else Status.TIMEOUT
    return RangeSolve(float(bound), best_x, best_v, status)


def solve_minmax(
    graph: Graph,
    lo,
    hi,
    bounds: dict,
    *,
    enough: float | None = None,
    time_limit: float | None = None,
    start: np.ndarray | None = None,
    tighten: bool = True,
    max_binaries: int | None = None,
) -> RangeSolve:
    """Minimise ``max_i y_i`` (over the flattened outputs) on the box ``[lo, hi]``: the MILP
    ``min t`` subject to ``y_i <= t``, built from ``bounds`` (sound bounds of every tensor that
    feeds a nonlinear node, e.g. from CROWN on this box). Branch and bound calls this on small
    pieces whose few unstable neurons make the MILP cheap and whose bound CROWN leaves open.

    The LP relaxation is solved first; when its bound already exceeds ``enough`` the MILP is
    skipped, else the MILP only decides whether the minimum is above ``enough`` (then ``bound``
    is just above it). ``bound`` is a proven lower bound of the minimum, ``x`` the best input
    found and ``value`` its ``max_i y_i`` by a forward pass. ``tighten`` re-bounds the neurons
    in doubt by LPs first (within the time limit): on small pieces that removes most binaries
    and shrinks the big-M constants, which pays for itself several times over. With
    ``enough``, the LP relaxation over the given bounds is tried before tightening. With more
    than ``max_binaries`` binaries left after that, only the LP relaxation is solved (status
    ``TIMEOUT`` unless its bound settles ``enough``).
    """
    t0 = time.perf_counter()
    lo = np.asarray(lo, dtype=np.float64).reshape(graph.input_shape)
    hi = np.asarray(hi, dtype=np.float64).reshape(graph.input_shape)
    deadline = None if time_limit is None else t0 + time_limit
    x0 = (lo + hi) / 2 if start is None else np.clip(np.asarray(start).reshape(lo.shape), lo, hi)

    def value_at(x):
        return float(graph.forward(x[None]).reshape(-1).max())

    best_x, best_v = x0, value_at(x0)
    tighteners = [LpTightener(deadline) if tighten else None]
    if tighten and enough is not None:
        # the LP relaxation with the given bounds settles about half of branch and bound's
        # leaves (ACAS Xu property 1) at a third of the cost of tightening first
        tighteners.insert(0, None)
    for tightener in tighteners:
        enc, t, bound = _minmax_relaxation(graph, lo, hi, bounds, tightener, deadline)
        known = {name: (tv.lo, tv.hi) for name, tv in enc.tensors.items()}
        if enough is not None and bound > enough:
            return RangeSolve(bound, best_x, best_v, Status.OK, known)
    if max_binaries is not None and enc.n_binaries > max_binaries:
        return RangeSolve(float(min(bound, best_v)), best_x, best_v, Status.TIMEOUT, known)
    cols = enc.assignment(x0)
    cols[t] = best_v  # the start must satisfy y_i <= t
    cost = np.zeros(enc.model.n_cols)
    cost[t] = 1.0
    sv = _Solver(enc, "highs", GAP_REL, GAP_ABS, 1)
    # with ``enough``, only whether the minimum is above it matters: a cutoff just above it
    # (by more than the solver's tolerances) makes that a feasibility question, often cheaper
    cut = None if enough is None else enough + 2 * _slack(enough)
    left = None if deadline is None else max(deadline - time.perf_counter(), 0.0)
    out = sv.solve(cost, 0.0, left, cut, None if cut is not None and best_v > cut else cols)
    if out.status == "cutoff":
        bound = max(bound, enough + _slack(enough))
    elif np.isfinite(out.bound):
        bound = max(bound, out.bound - _slack(out.bound))
    if out.cols is not None:
        x = enc.input_of(out.cols)
        v = value_at(x)
        if v < best_v:
            best_x, best_v = x, v
    status = Status.OK if out.status in ("optimal", "cutoff") else Status.TIMEOUT
    return RangeSolve(float(min(bound, best_v)), best_x, best_v, status, known)


def _minmax_relaxation(graph: Graph, lo, hi, bounds: dict, tightener, deadline):
    """``solve_minmax``'s encoding (``min t`` subject to ``y_i <= t``), the column of ``t``,
    the LP relaxation's proven lower bound (``-inf`` when unsolved)."""
    enc = Encoding(graph, lo, hi, bounds, tightener=tightener)
    m, c = enc.output
    k = m.shape[0]
    t = int(enc.model.add_cols(np.array([-np.inf]), np.array([np.inf]))[0])
    rows, cols, vals = nonzeros(m)
    enc.model.add_rows(
        np.concatenate([rows, np.arange(k)]),
        np.concatenate([cols, np.full(k, t)]),
        np.concatenate([vals, -np.ones(k)]),
        np.full(k, -np.inf),
        -np.asarray(c, dtype=np.float64),
    )
    cost = np.zeros(enc.model.n_cols)
    cost[t] = 1.0
    lp = tightener.lp if tightener is not None else None
    lp = HighsSolver(enc.model, integer=False) if lp is None else lp
    left = None if deadline is None else max(deadline - time.perf_counter(), 0.0)
    relax = lp.solve(cost, 0.0, left)
    bound = relax.bound - _slack(relax.bound) if relax.status == "optimal" else -np.inf
    return enc, t, bound
