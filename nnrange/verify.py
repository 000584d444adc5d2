"""Deciding VNN-LIB properties: ``verify(model, prop)`` -> holds / violated / unknown.

A property is violated when some input of one of its boxes drives the outputs into one of its
unsafe polytopes ``A y <= b``. For each (box, polytope) pair nnrange minimises
``g(x) = max_i (A_i y(x) - b_i)``: the polytope is unreachable when a proven lower bound of g is
positive, and reached by any input with ``g(x) <= 0``. Each pair first gets a short try (attack
for a counterexample, CROWN and a little branch and bound for a proof), then the pairs still open
share the remaining time in a longer branch and bound, run with both of ``bab``'s input
branching modes side by side (two processes per piece of the box, or one after the other in
process): each mode is several times faster than the other on some boxes, so the pair takes the
faster. ReLU networks with more than 64 inputs are searched by ReLU splitting instead.
"""

from __future__ import annotations

import enum
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .api import check_options
from .engines import bab
from .errors import EngineError, SpecError
from .graph import Graph
from .loaders import load
from .parallel import one_blas_thread
from .spec.vnnlib import Property, load_vnnlib


class Verdict(enum.StrEnum):
    HOLDS = "holds"  # no input in the boxes reaches an unsafe region (proved)
    VIOLATED = "violated"  # a counterexample was found and checked by a forward pass
    UNKNOWN = "unknown"  # neither within the time limit


@dataclass
class VerifyResult:
    """Outcome of ``verify``. ``counterexample`` (model input shape) and ``output`` (flattened
    model output at it) are set when the property is violated."""

    verdict: Verdict
    counterexample: np.ndarray | None
    output: np.ndarray | None
    seconds: float
    pieces: int
    detail: str

    def __str__(self) -> str:
        return f"{self.verdict.value} ({self.detail}, {self.seconds:.3g} s)"


def _property(prop, graph: Graph) -> Property:
    if isinstance(prop, str | os.PathLike):
        prop = load_vnnlib(prop)
    if prop.n_inputs != graph.input_size:
        raise SpecError(
            f"{prop.source}: declares {prop.n_inputs} inputs X_i but the model has "
            f"{graph.input_size} (input shape {graph.input_shape})"
        )
    if prop.n_outputs > graph.output_size:
        raise SpecError(
            f"{prop.source}: uses {prop.n_outputs} outputs Y_j but the model has "
            f"{graph.output_size}"
        )
    if any(len(a) == 0 for case in prop.cases for a, _ in case.unsafe):
        raise SpecError(
            f"{prop.source}: a case of the property constrains no output Y_j, so every input "
            "of its box would be a counterexample; assert the unsafe output region, e.g. "
            "(assert (>= Y_0 1.0))"
        )
    return prop


def _pieces_of(lo: np.ndarray, hi: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cut a box into n pieces by repeatedly halving the widest dimension of the largest."""
    out = [(lo.reshape(-1), hi.reshape(-1))]
    while len(out) < n:
        a, b = out.pop(0)
        d = int(np.argmax(b - a))
        mid = (a[d] + b[d]) / 2
        left_hi, right_lo = b.copy(), a.copy()
        left_hi[d], right_lo[d] = mid, mid
        out += [(a, left_hi), (right_lo, b)]
    return [(a.reshape(lo.shape), b.reshape(hi.shape)) for a, b in out]


def _violation(graph: Graph, prop: Property, s: bab.Search, idx: int, t0, pieces):
    """The VIOLATED result when the search's witness really lands in the unsafe region (checked
    by a forward pass), else None."""
    if s.value > 0:
        return None
    y = graph.forward(s.witness[None]).reshape(-1)
    if not prop.is_unsafe(y[: prop.n_outputs]):
        return None
    detail = f"counterexample for box {idx}"
    return VerifyResult(Verdict.VIOLATED, s.witness, y, time.perf_counter() - t0, pieces, detail)


def _settled(n_pairs: int, undecided: int, t0: float, pieces: int) -> VerifyResult:
    """HOLDS when no pair is left undecided, else UNKNOWN."""
    seconds = time.perf_counter() - t0
    if not undecided:
        detail = f"all {n_pairs} box/region pair(s) proved unreachable"
        return VerifyResult(Verdict.HOLDS, None, None, seconds, pieces, detail)
    detail = f"{undecided} of {n_pairs} pair(s) undecided at the time limit"
    return VerifyResult(Verdict.UNKNOWN, None, None, seconds, pieces, detail)


#: set in each pool worker: one flag per (box, polytope) pair, 1 once the pair is decided; and
#: the number of jobs finished, the job count, the number of workers and the wall-clock deadline
_DECIDED = None
_SCHEDULE = None


def _init_worker(decided, finished, schedule) -> None:
    global _DECIDED, _SCHEDULE
    _DECIDED = decided
    _SCHEDULE = (finished, *schedule)
    one_blas_thread()


def _budget() -> float:
    """An equal share of the time left among the jobs not finished yet, spread over the workers:
    what a job cancelled early leaves unused goes to the jobs after it."""
    finished, total, workers, deadline = _SCHEDULE
    remaining = max(1, total - finished.value)
    return max(deadline - time.time(), 0.0) * min(workers, remaining) / remaining


def _solve_piece(job) -> tuple[int, str, bab.Search]:
    graph, idx, mode, lo, hi, w, b, seed = job
    if _DECIDED[idx]:  # the other mode was faster
        return idx, mode, bab.Search(-np.inf, np.inf, lo, bab.Status.TIMEOUT, 0, 0, 0.0)
    budget = _budget()

    def decided() -> bool:
        return bool(_DECIDED[idx])

    s = bab.minimize(
        graph, lo, hi, w, b, target=0.0, time_limit=budget, seed=seed, branching=mode, stop=decided
    )
    return idx, mode, s


def _modes(graph: Graph) -> tuple[str, ...]:
    """Branching modes to run: ReLU splitting where ``bab``'s "auto" picks it (ReLU networks
    with many inputs), else rank and strong input splitting side by side."""
    return ("relu",) if bab.choose_branching(graph, "auto") == "relu" else ("rank", "strong")


def _portfolio(graph: Graph, workers: int, n_pairs: int) -> dict[str, int]:
    """Pieces per branching mode: input-splitting modes run side by side (each wins on
    different boxes), the workers shared equally. ReLU splitting starts with an exact solve of
    the whole box, which halving the box does not make much cheaper: the pairs themselves keep
    the workers busy, and boxes are cut only when there are fewer pairs than workers."""
    modes = _modes(graph)
    if modes == ("relu",):
        return {"relu": max(1, workers // max(n_pairs, 1))}
    return {mode: max(1, workers // len(modes)) for mode in modes}


def _parallel_round(graph, prop, pairs, open_pairs, workers, left, seed, t0, pieces, progress):
    """The long round on a pool of processes: every open pair's box, once per branching mode,
    cut into pieces; a pair holds as soon as one mode proves all its pieces."""
    modes = _portfolio(graph, workers, len(open_pairs))
    jobs = []
    for idx in open_pairs:
        lo, hi, w, b = pairs[idx]
        for mode, n in modes.items():
            for p_lo, p_hi in _pieces_of(lo, hi, n):
                jobs.append((graph, idx, mode, p_lo, p_hi, w, b, seed))
    proved = {(idx, mode): 0 for idx in open_pairs for mode in modes}
    decided = mp.Array("b", len(pairs), lock=False)
    finished = mp.Value("i", 0, lock=False)
    n_proc = min(workers, len(jobs))
    schedule = (len(jobs), n_proc, time.time() + max(left, 0.0))
    # fork starts fast and needs no __main__ guard in the caller's script; but a parent running
    # TensorFlow holds threads that do not survive a fork, so then spawn
    method = "spawn" if "tensorflow" in sys.modules else "fork"
    ctx = mp.get_context(method)
    with ctx.Pool(n_proc, _init_worker, (decided, finished, schedule)) as pool:
        for k, (idx, mode, s) in enumerate(pool.imap_unordered(_solve_piece, jobs)):
            finished.value = k + 1
            pieces += s.pieces
            if progress is not None:
                progress(
                    {
                        "done": k + 1,
                        "total": len(jobs),
                        "pair": idx,
                        "lower": s.lower,
                        "open": s.open,
                        "pieces": pieces,
                    }
                )
            found = _violation(graph, prop, s, idx, t0, pieces)
            if found is not None:
                pool.terminate()
                return found
            if s.lower > 0:
                proved[idx, mode] += 1
                if proved[idx, mode] == modes[mode]:
                    decided[idx] = 1
                    if all(decided[i] for i in open_pairs):
                        pool.terminate()
                        break
    return _settled(len(pairs), sum(not decided[i] for i in open_pairs), t0, pieces)


def verify(
    model,
    prop,
    *,
    timeout: float = 60.0,
    first_try: float = 1.0,
    progress: Callable[[dict], None] | None = None,
    seed: int = 0,
    workers: int | None = None,
) -> VerifyResult:
    """Decide a VNN-LIB property (a path or a parsed ``Property``) on a model.

    ``timeout`` bounds the whole run in seconds; ``first_try`` is the budget of each
    (box, polytope) pair's first attempt. ``progress`` receives dicts with ``done``, ``total``
    (pairs) and the running branch and bound's ``lower``/``open``/``pieces``. ``workers``
    processes (default: all cores) share the longer second round, each pair's box cut into
    one piece per worker; a decided answer does not depend on it. The pool forks, except when
    TensorFlow is loaded (its threads do not survive a fork): then it spawns, which needs the
    usual ``if __name__ == "__main__":`` guard in a calling script, or pass ``workers=1``.
    """
    t0 = time.perf_counter()
    check_options(timeout=timeout, first_try=first_try, seed=seed)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise EngineError(f"workers must be a whole number >= 1 or None, not {workers!r}")
    graph = load(model)
    prop = _property(prop, graph)
    pairs = []
    for case in prop.cases:
        for a, b in case.unsafe:
            w = np.zeros((a.shape[0], graph.output_size))
            w[:, : prop.n_outputs] = a
            shape = graph.input_shape
            pairs.append((case.lo.reshape(shape), case.hi.reshape(shape), w, b))
    pieces = 0
    open_pairs = list(range(len(pairs)))
    modes = _modes(graph)
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    for round_ in (0, 1):
        left = timeout - (time.perf_counter() - t0)
        if round_ == 1 and workers > 1 and open_pairs and left > 0:
            return _parallel_round(
                graph, prop, pairs, open_pairs, workers, left, seed, t0, pieces, progress
            )
        still = []
        for k, idx in enumerate(open_pairs):
            left = timeout - (time.perf_counter() - t0)
            if left <= 0:
                still.extend(open_pairs[k:])
                break
            share = min(first_try, left) if round_ == 0 else left / (len(open_pairs) - k)
            # first try: rank branching; then each mode in turn gets half the pair's share
            if modes == ("relu",):
                tries = [("relu", share if round_ == 0 else None)]
            else:
                tries = (
                    [("rank", share)] if round_ == 0 else [("strong", share / 2), ("rank", None)]
                )
            lo, hi, w, b = pairs[idx]

            report = None
            if progress is not None:
                head = {"done": len(pairs) - len(open_pairs) + k, "total": len(pairs), "pair": idx}

                def report(info, head=head):
                    progress({**head, **info})

            start = time.perf_counter()
            for mode, budget in tries:
                if budget is None:
                    budget = share - (time.perf_counter() - start)
                s = bab.minimize(
                    graph,
                    lo,
                    hi,
                    w,
                    b,
                    target=0.0,
                    time_limit=budget,
                    seed=seed,
                    progress=report,
                    branching=mode,
                )
                pieces += s.pieces
                found = _violation(graph, prop, s, idx, t0, pieces)
                if found is not None:
                    return found
                if s.lower > 0:
                    break
            if s.lower <= 0:
                still.append(idx)
        open_pairs = still
        if not open_pairs:
            return _settled(len(pairs), 0, t0, pieces)
    return _settled(len(pairs), len(open_pairs), t0, pieces)
