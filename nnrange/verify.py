"""Deciding VNN-LIB properties: ``verify(model, prop)`` -> holds / violated / unknown.

A property is violated when some input of one of its boxes drives the outputs into one of its
unsafe polytopes ``A y <= b``. For each (box, polytope) pair nnrange minimises
``g(x) = max_i (A_i y(x) - b_i)``: the polytope is unreachable when a proven lower bound of g is
positive, and reached by any input with ``g(x) <= 0``. Each pair first gets a short try (attack
for a counterexample, CROWN and a little branch and bound for a proof), then the pairs still open
share the remaining time in a longer branch and bound.
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

from .engines import bab
from .errors import SpecError
from .graph import Graph
from .loaders import load
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


def _solve_piece(job) -> tuple[int, bab.Search]:
    graph, idx, lo, hi, w, b, budget, seed = job
    return idx, bab.minimize(graph, lo, hi, w, b, target=0.0, time_limit=budget, seed=seed)


def _parallel_round(graph, prop, pairs, open_pairs, workers, left, seed, t0, pieces, progress):
    """The long round on a pool of processes: every open pair's box in ``workers`` pieces."""
    jobs = []
    for idx in open_pairs:
        lo, hi, w, b = pairs[idx]
        for p_lo, p_hi in _pieces_of(lo, hi, workers):
            jobs.append([graph, idx, p_lo, p_hi, w, b, 0.0, seed])
    for job in jobs:  # equal shares of the wall time left, spread over the workers
        job[6] = max(left, 0.0) * min(workers, len(jobs)) / len(jobs)
    undecided = set()
    # fork starts fast and needs no __main__ guard in the caller's script; but a parent running
    # TensorFlow holds threads that do not survive a fork, so then spawn
    method = "spawn" if "tensorflow" in sys.modules else "fork"
    with mp.get_context(method).Pool(min(workers, len(jobs))) as pool:
        for k, (idx, s) in enumerate(pool.imap_unordered(_solve_piece, jobs)):
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
            if s.value <= 0:
                y = graph.forward(s.witness[None]).reshape(-1)
                if prop.is_unsafe(y[: prop.n_outputs]):
                    pool.terminate()
                    return VerifyResult(
                        Verdict.VIOLATED,
                        s.witness,
                        y,
                        time.perf_counter() - t0,
                        pieces,
                        f"counterexample for box {idx}",
                    )
            if s.lower <= 0:
                undecided.add(idx)
    seconds = time.perf_counter() - t0
    if not undecided:
        return VerifyResult(
            Verdict.HOLDS,
            None,
            None,
            seconds,
            pieces,
            f"all {len(pairs)} box/region pair(s) proved unreachable",
        )
    return VerifyResult(
        Verdict.UNKNOWN,
        None,
        None,
        seconds,
        pieces,
        f"{len(undecided)} of {len(pairs)} pair(s) undecided at the time limit",
    )


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
            budget = min(first_try, left) if round_ == 0 else left / (len(open_pairs) - k)
            lo, hi, w, b = pairs[idx]

            report = None
            if progress is not None:
                head = {"done": len(pairs) - len(open_pairs) + k, "total": len(pairs), "pair": idx}

                def report(info, head=head):
                    progress({**head, **info})

            s = bab.minimize(
                graph, lo, hi, w, b, target=0.0, time_limit=budget, seed=seed, progress=report
            )
            pieces += s.pieces
            if s.value <= 0:
                y = graph.forward(s.witness[None]).reshape(-1)
                if prop.is_unsafe(y[: prop.n_outputs]):
                    return VerifyResult(
                        Verdict.VIOLATED,
                        s.witness,
                        y,
                        time.perf_counter() - t0,
                        pieces,
                        f"counterexample for box {idx}",
                    )
            if s.lower <= 0:
                still.append(idx)
        open_pairs = still
        if not open_pairs:
            return VerifyResult(
                Verdict.HOLDS,
                None,
                None,
                time.perf_counter() - t0,
                pieces,
                f"all {len(pairs)} box/region pair(s) proved unreachable",
            )
    return VerifyResult(
        Verdict.UNKNOWN,
        None,
        None,
        time.perf_counter() - t0,
        pieces,
        f"{len(open_pairs)} of {len(pairs)} pair(s) undecided at the time limit",
    )
