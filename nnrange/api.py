"""The public entry point: ``bounds(model, lo, hi, method=...)``."""

from __future__ import annotations

import inspect
import math
import os
import time

import numpy as np

from .box import Box
from .engines import ALIASES, AUTO_CHAIN, ENGINES, Engine, sampling
from .errors import EngineError
from .graph import Graph, with_objective
from .loaders import load
from .result import BoundsResult, Status


def resolve_method(method: str) -> Engine:
    """The engine registered under ``method`` (or one of its aliases)."""
    key = ALIASES.get(method.lower(), method.lower()) if isinstance(method, str) else method
    if key not in ENGINES:
        known = ", ".join(["auto", *sorted(ENGINES)])
        raise EngineError(f"unknown method {method!r}; choose one of: {known}")
    return ENGINES[key]


def _strict_default() -> bool:
    return os.environ.get("NNRANGE_STRICT", "") not in ("", "0")


#: Arguments of ``bounds()`` that are handed on to engines whose ``run`` accepts them.
_SHARED = ("atol", "rtol", "seed", "time_limit")


def _params(engine: Engine) -> set[str]:
    """The keyword arguments ``engine.run`` takes."""
    return set(inspect.signature(engine.run).parameters)


def _chain_options(chain: list[Engine], options: dict, auto: bool) -> list[dict]:
    """Each engine's share of ``options``: all of them for a named engine (which refuses what
    it does not know); along the auto chain, what each accepts, refusing only options that no
    engine the chain can reach takes."""
    if not auto:
        return [options]
    reach = [ENGINES[name] for name in AUTO_CHAIN if name in ENGINES]
    unknown = set(options) - set().union(*(_params(e) for e in reach))
    if unknown:
        names = ", ".join(e.name for e in reach)
        raise EngineError(
            f"option(s) {', '.join(sorted(unknown))} taken by no engine of method='auto' "
            f"({names}); name one engine with method= to pass its own options"
        )
    return [{k: v for k, v in options.items() if k in _params(e)} for e in chain]


def _run(engine: Engine, graph: Graph, box: Box, options: dict, shared: dict) -> BoundsResult:
    params = _params(engine)
    options = {**{k: v for k, v in shared.items() if k in params and v is not None}, **options}
    try:
        result = engine.run(graph, box, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise EngineError(f"method {engine.name!r}: {exc}") from exc
        raise
    result.method = engine.name  # the registered name, which the self-check reports
    if engine.name not in result.engines:
        result.engines = (engine.name, *result.engines)
    return result


def bounds(
    model,
    lo,
    hi,
    method: str = "auto",
    *,
    inner="fast",
    tolerance: float | None = None,
    exact: bool = False,
    time_limit: float | None = None,
    seed: int = 0,
    atol: float = 1e-6,
    rtol: float = 1e-6,
    strict: bool | None = None,
    **options,
) -> BoundsResult:
    """Bound every output of ``model`` over the input box ``[lo, hi]``.

    Parameters
    ----------
    model: path to an .onnx/.keras/.h5 file, an ONNX ModelProto, a Keras model, or a Graph.
    lo, hi: box bounds: scalars, flat sequences, arrays in the input shape, or a leading batch
        axis of several boxes (see ``Box.from_bounds``).
    method: ``"auto"`` (default: CROWN; when ``tolerance``/``exact`` ask for more, it escalates
        to alpha-CROWN, then branch and bound), or one engine: ``"crown"``, ``"alpha-crown"``
        (tighter, slower), ``"ibp"`` (fastest, loosest), ``"bab"`` (anytime exact ranges),
        ``"milp"`` (exact ranges of piecewise-linear nets), ``"sample"`` (inner bounds only).
    inner: inner bounds (attained values with witness inputs) attached to an outer engine's
        result: ``"fast"`` (default), ``"thorough"``, a dict of ``sampling.run`` options
        (e.g. ``{"samples": 5000, "steps": 0}``), or ``False`` for none.
    tolerance: with ``method="auto"``, the gap between proven and attained bounds (on each
        side, absolute) that counts as closed; the engines escalate until every output is
        closed or the chain ends. Sets ``atol``.
    exact: same as a tolerance of ``atol``.
    time_limit: seconds for the whole run: the chain of ``method="auto"`` stops escalating when
        it is spent (status "timeout" if a gap is still open then; the thorough inner search
        before escalating gets at most half of what is left), and engines with a time limit of
        their own (bab, milp) get what is left.
    seed: random seed of the inner-bound search (and of engines that take one).
    atol, rtol: tolerance for calling an output's range exact; bab gets them as the gap it
        stops at (milp solves to its own fixed gaps, far smaller).
    strict: raise ``UnsoundBoundError`` (instead of warning) when a witness escapes an outer
        bound; defaults to the environment variable ``NNRANGE_STRICT``.
    options: passed to the engine; for ``"auto"``, each engine of the chain gets those it
        takes. ``outputs=`` (engines that search per output: bab, milp) also limits the
        escalation to those outputs: the others keep the bounds the chain gives them.

    Returns a ``BoundsResult``; ``result.engines`` says which engines ran.
    """
    check_options(tolerance=tolerance, time_limit=time_limit, atol=atol, rtol=rtol, seed=seed)
    if tolerance is not None:
        atol = float(tolerance)
    escalate = exact or tolerance is not None
    inner_opts = sampling.preset(inner)
    chain = _chain(method, escalate)
    graph = load(model)
    box = Box.from_bounds(lo, hi, graph.input_shape)
    auto = isinstance(method, str) and method.lower() == "auto"
    per_engine = _chain_options(chain, options, auto)
    # what the engines bound: the model's outputs, or the rows of milp's objective= (the inner
    # search must attain values of the same functions)
    bounded = graph
    if options.get("objective") is not None:
        bounded = with_objective(graph, options["objective"])
    watched = bounded.output_indices(options.get("outputs"))  # outputs whose gap decides
    t0 = time.perf_counter()
    result = None
    for step, engine in enumerate(chain):
        left = None if time_limit is None else max(time_limit - (time.perf_counter() - t0), 0.0)
        shared = {"atol": atol, "rtol": rtol, "seed": seed, "time_limit": left}
        part = _run(engine, graph, box, per_engine[step], shared)
        result = part if result is None else result.combine(part)
        if engine.gives_outer and inner_opts is not None and step == 0:
            result = result.combine(sampling.run(bounded, box, seed=seed, **inner_opts))
        result.atol, result.rtol = atol, rtol
        if step == 0 and escalate and inner_opts is not None and not _closed(result, watched):
            # before paying for tighter outer bounds, make sure the inner side is not the gap
            thorough = dict(sampling.PRESETS["thorough"])
            if time_limit is not None:  # its guided search gets at most half the time left
                left = max(time_limit - (time.perf_counter() - t0), 0.0)
                searches = 2 * bounded.output_size * box.n
                thorough["search"] = min(thorough["search"], 0.5 * left / searches)
            result = result.combine(sampling.run(bounded, box, seed=seed, **thorough))
            result.atol, result.rtol = atol, rtol
        if _closed(result, watched):
            break
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            if step + 1 < len(chain):  # stopped escalating: what is left open is the time's
                result.status = Status.TIMEOUT
            break
    if auto:
        result.method = "auto"
    return result.check(strict=_strict_default() if strict is None else strict)


def _closed(result: BoundsResult, outputs: list[int]) -> bool:
    """Every box's ``outputs`` are exact within the result's tolerance."""
    exact = result.exact.reshape(result.n_boxes, -1)
    return bool(exact[:, outputs].all())


def check_options(**values) -> None:
    """Refuse negative, NaN or infinite tolerances and time limits, and seeds that are not
    whole numbers >= 0, before any work (engines would misread them silently)."""
    for name, v in values.items():
        if v is None:
            continue
        if name == "seed":
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise EngineError(f"seed must be a whole number >= 0, not {v!r}")
            continue
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise EngineError(f"{name} must be a number, not {v!r}") from None
        seconds = name in ("time_limit", "timeout")
        if not ((x > 0 if seconds else x >= 0) and math.isfinite(x)):
            need = "a positive number of seconds" if seconds else "a number >= 0"
            raise EngineError(f"{name} must be {need}, not {v!r}")


def _chain(method: str, escalate: bool) -> list[Engine]:
    if isinstance(method, str) and method.lower() == "auto":
        chain = [ENGINES[name] for name in AUTO_CHAIN if name in ENGINES]
        return chain if escalate else chain[:1]
    return [resolve_method(method)]
