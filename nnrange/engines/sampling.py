"""Inner bounds from concrete inputs: centre, corners, uniform and Latin-hypercube samples, then
projected gradient ascent/descent from the best starts of every output and direction.

Every value reported here is attained by a stored witness input (re-evaluated after the search),
so inner bounds are never guesses; they show how much of the outer range is surely reachable.
"""

from __future__ import annotations

import time

import numpy as np

from ..box import Box
from ..errors import EngineError
from ..graph import Graph
from ..result import BoundsResult
from . import regions

#: Largest number of float64 values evaluated at once (keeps memory near 100 MB).
_CHUNK_VALUES = 12_000_000


def candidate_points(
    box: Box, samples: int, corners: int, rng: np.random.Generator, lhs: int = 0, faces: int = 0
) -> np.ndarray:
    """Centre, corners, uniform, Latin-hypercube and on-face samples (``Box.on_faces``) of
    every box: ``(B, P, *input)``."""
    parts = [box.center[:, None]]
    if corners > 0:
        parts.append(box.corners(corners, rng))
    if samples > 0:
        parts.append(box.uniform(samples, rng))
    if faces > 0:  # from a child stream: adding them leaves every other draw as it was
        parts.append(box.on_faces(faces, rng.spawn(1)[0]))
    if lhs > 0:
        from scipy.stats import qmc  # costs ~0.8 s to import: only when asked for

        d = int(np.prod(box.shape))
        u = np.stack([qmc.LatinHypercube(d=d, seed=rng).random(lhs) for _ in range(box.n)])
        u = u.reshape(box.n, lhs, *box.shape)
        parts.append(box.lo[:, None] + u * (box.hi - box.lo)[:, None])
    return np.concatenate(parts, axis=1)


def _chunk(graph: Graph) -> int:
    width = max([graph.input_size] + [n.out_size for n in graph])
    return max(1, _CHUNK_VALUES // max(width, 1))


def evaluate(graph: Graph, points: np.ndarray) -> np.ndarray:
    """Outputs of the graph for points ``(B, P, *input_shape)`` -> ``(B, P, n_outputs)``."""
    b, p = points.shape[:2]
    flat = points.reshape(b * p, *graph.input_shape)
    step = _chunk(graph)
    out = [
        graph.forward(flat[i : i + step]).reshape(-1, graph.output_size)
        for i in range(0, b * p, step)
    ]
    return np.concatenate(out).reshape(b, p, graph.output_size)


def attack(
    graph: Graph,
    box: Box,
    starts: np.ndarray,
    steps: int = 50,
    step_first: float = 0.2,
    step_last: float = 1e-4,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Projected sign-gradient ascent for every (box, output, direction) from given starts.

    ``starts`` has shape ``(B, n_outputs, 2, S, *input_shape)``: S starting points per output
    and direction (0: maximise, 1: minimise). The step is a fraction of each dimension's width,
    shrinking geometrically from ``step_first`` to ``step_last``. Returns the best point found
    per (box, output, direction) and its value: ``(B, n_out, 2, *input)``, ``(B, n_out, 2)``.
    A point with a zero gradient (a flat region, e.g. every ReLU before the output dead) takes
    a random sign step instead, so it can walk off the plateau.
    """
    rng = rng or np.random.default_rng(0)
    b, n, _, s = starts.shape[:4]
    shape = graph.input_shape
    rows = b * n * 2 * s
    x = starts.reshape(rows, *shape).copy()
    lo = np.broadcast_to(box.lo[:, None, None, None], starts.shape).reshape(rows, *shape)
    hi = np.broadcast_to(box.hi[:, None, None, None], starts.shape).reshape(rows, *shape)
    width = hi - lo
    sign = np.broadcast_to(np.array([1.0, -1.0])[None, None, :, None], (b, n, 2, s)).reshape(rows)
    out_idx = np.broadcast_to(np.arange(n)[None, :, None, None], (b, n, 2, s)).reshape(rows)
    cot = np.zeros((rows, graph.output_size))
    cot[np.arange(rows), out_idx] = sign
    cot = cot.reshape(rows, *graph.output_shape)
    best_x, best_v = x.copy(), np.full(rows, -np.inf)
    factors = np.geomspace(step_first, step_last, max(steps, 1))
    step_rows = _chunk(graph)
    for t in range(steps + 1):
        ys, gs = [], []
        for i in range(0, rows, step_rows):
            y, g = graph.value_and_grad(x[i : i + step_rows], cot[i : i + step_rows])
            ys.append(y.reshape(-1, graph.output_size))
            gs.append(g)
        value = sign * np.concatenate(ys)[np.arange(rows), out_idx]
        better = value > best_v
        best_v = np.where(better, value, best_v)
        best_x[better] = x[better]
        if t == steps:
            break
        direction = np.sign(np.concatenate(gs))
        flat = ~direction.reshape(rows, -1).any(axis=1)
        if flat.any():
            direction[flat] = rng.choice([-1.0, 1.0], size=direction[flat].shape)
        x = np.clip(x + factors[t] * width * direction, lo, hi)
    best_v = best_v.reshape(b, n, 2, s)
    pick = best_v.argmax(axis=3)
    best_x = best_x.reshape(b, n, 2, s, *shape)
    xs = np.take_along_axis(best_x, pick.reshape(b, n, 2, 1, *(1,) * len(shape)), axis=3)[
        :, :, :, 0
    ]
    vs = np.take_along_axis(best_v, pick[..., None], axis=3)[..., 0] * np.array([1.0, -1.0])
    return xs, vs


def _starts(points: np.ndarray, values: np.ndarray, k: int, rng) -> np.ndarray:
    """Starting points per (box, output, direction): the ``ceil(k/2)`` best points and, for
    diversity, random others. Shape ``(B, n_out, 2, k, *input)``."""
    b, p, n = values.shape
    k = min(k, p)
    best = (k + 1) // 2
    order_max = np.argsort(-values, axis=1)[:, :best]  # (B, best, n)
    order_min = np.argsort(values, axis=1)[:, :best]
    rand = rng.integers(0, p, size=(b, k - best, n))
    idx = np.stack(
        [np.concatenate([order_max, rand], axis=1), np.concatenate([order_min, rand], axis=1)],
        axis=2,
    )  # (B, k, 2, n)
    idx = np.moveaxis(idx, (1, 2, 3), (3, 2, 1))  # (B, n, 2, k)
    return points[np.arange(b)[:, None, None, None], idx]


#: Sample points (the best for each output and direction) that LP polish also starts from.
#: On the 50 exact ACAS Xu ranges, 4 / 8 / 16 starts reach 46.5 / 47.3 / 48 of them within
#: 1e-4 (mean over 4 seeds) at about 1x / 2.3x / 3x the time; extremes in tiny linear regions
#: are found from some good sample or not at all.
_POLISH_STARTS = 16

#: Inputs up to this size get the bound-guided search: input splitting narrows the pieces
#: quickly only in few dimensions (on an 8x8-image CNN it spends its whole budget, unclosed).
_SEARCH_INPUTS = 16

#: Budgets of the inner-bound search: "fast" is attached to every outer engine's result,
#: "thorough" is what ``method="sample"`` runs.
PRESETS = {
    "fast": {
        "samples": 1000,
        "faces": 1000,
        "corners": 256,
        "starts": 4,
        "steps": 30,
        "polish": False,
        "search": 0.0,
    },
    "thorough": {
        "samples": 10000,
        "faces": 10000,
        "corners": 1024,
        "starts": 8,
        "steps": 100,
        "polish": None,
        "search": 2.0,
    },
}


def preset(inner) -> dict | None:
    """Options of ``run`` for an ``inner=`` argument: a preset name, True ("fast"), a dict
    (overrides of "fast"), or False/None (no inner bounds: returns None)."""
    if inner is None or inner is False:
        return None
    if inner is True:
        inner = "fast"
    if isinstance(inner, str):
        if inner not in PRESETS:
            raise EngineError(
                f"unknown inner-bound preset {inner!r}; choose one of: "
                f"{', '.join(PRESETS)}, or pass a dict of options or False"
            )
        return dict(PRESETS[inner])
    if isinstance(inner, dict):
        unknown = set(inner) - set(PRESETS["fast"]) - {"lhs"}
        if unknown:
            raise EngineError(
                f"unknown inner-bound option(s) {sorted(unknown)}; known: "
                f"{', '.join([*PRESETS['fast'], 'lhs'])}"
            )
        return {**PRESETS["fast"], **inner}
    raise EngineError(f"inner= must be a preset name, True/False or a dict, not {inner!r}")


def run(
    graph: Graph,
    box: Box,
    samples: int = 10000,
    corners: int = 1024,
    lhs: int = 0,
    faces: int = 10000,
    starts: int = 8,
    steps: int = 100,
    polish: bool | None = None,
    search: float = 2.0,
    seed: int = 0,
) -> BoundsResult:
    """Inner bounds: centre, up to ``corners`` corners, ``samples`` uniform, ``lhs``
    Latin-hypercube and ``faces`` on-face points (``Box.on_faces``), then ``steps`` of
    projected gradient ascent/descent from ``starts`` points per output and direction (the best
    and some random ones; ``steps=0`` or ``starts=0``: no attack), then, with ``polish``, exact
    LP optimisation over the linear regions around the best points (default: on for
    piecewise-linear networks; with more than 64 inputs one LP from the attack's point only),
    then, where polish runs on at most 16 inputs, up to ``search`` seconds per output and
    direction of a bound-guided search: branch and bound's best-first input splitting
    (``bab.minimize``), whose pieces with the highest bounds are where it looks for witnesses.
    It finds extremes in linear regions too small and far from the best samples for local
    search to reach (ACAS Xu 1_1 property 3, output 4's maximum: 0.1709 against the polished
    samples' 0.1705). The defaults are the "thorough" preset."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    points = candidate_points(box, samples, corners, rng, lhs, faces)
    values = evaluate(graph, points)
    rows = np.arange(box.n)[:, None]
    i_lo, i_hi = values.argmin(axis=1), values.argmax(axis=1)
    inner_lo, inner_hi = values.min(axis=1), values.max(axis=1)
    w_lo, w_hi = points[rows, i_lo], points[rows, i_hi]
    if steps > 0 and starts > 0:
        xs, _ = attack(graph, box, _starts(points, values, starts, rng), steps, rng=rng)
        # re-evaluate: an inner bound is the value its witness gives in a plain forward pass
        n = graph.output_size
        check = evaluate(graph, xs.reshape(box.n, 2 * n, *graph.input_shape))
        check = check.reshape(box.n, n, 2, n)[:, np.arange(n), :, np.arange(n)]  # (n, B, 2)
        up, down = np.moveaxis(check, 0, 1)[..., 0], np.moveaxis(check, 0, 1)[..., 1]
        better_hi, better_lo = up > inner_hi, down < inner_lo
        inner_hi, inner_lo = np.where(better_hi, up, inner_hi), np.where(better_lo, down, inner_lo)
        expand = (1,) * len(graph.input_shape)
        w_hi = np.where(better_hi.reshape(*better_hi.shape, *expand), xs[:, :, 0], w_hi)
        w_lo = np.where(better_lo.reshape(*better_lo.shape, *expand), xs[:, :, 1], w_lo)
    if polish is None:
        polish = regions.piecewise_linear(graph)
    if polish:
        from . import bab  # bab builds on this module

        # with many inputs each LP costs a few tenths of a second: the attack's point only
        n_starts, rounds = (_POLISH_STARTS, 6) if graph.input_size <= 64 else (0, 1)
        guided = search if graph.input_size <= _SEARCH_INPUTS else 0.0
        n = graph.output_size
        for b in range(box.n):
            for j in range(n):
                for sign, wit, inner in ((1.0, w_hi, inner_hi), (-1.0, w_lo, inner_lo)):
                    # extremes in tiny regions: also start from the next best samples, whose
                    # linear regions may hold a better optimum than the attack's
                    best = np.argsort(-sign * values[b, :, j])[:n_starts]
                    found = [
                        regions.polish(graph, box.lo[b], box.hi[b], start, j, sign, rounds)
                        for start in [wit[b, j].copy(), *points[b, best]]
                    ]
                    if guided > 0:
                        weight = -sign * np.eye(n)[j]
                        found.append(
                            bab.minimize(
                                graph, box.lo[b], box.hi[b], weight, time_limit=guided, seed=seed
                            ).witness
                        )
                    for x in found:
                        v = graph.forward(x[None]).reshape(-1)[j]
                        if sign * v > sign * inner[b, j]:
                            inner[b, j], wit[b, j] = v, x
    return BoundsResult(
        n_boxes=box.n,
        n_outputs=graph.output_size,
        input_shape=graph.input_shape,
        output_shape=graph.output_shape,
        inner_lower=inner_lo,
        inner_upper=inner_hi,
        witness_lower=w_lo,
        witness_upper=w_hi,
        method="sample",
        batched=box.batched,
        timings={"sample": time.perf_counter() - t0},
    )
