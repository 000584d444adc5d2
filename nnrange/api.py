"""The public entry point: ``bounds(model, lo, hi, method=...)``."""

from __future__ import annotations

import os

from .box import Box
from .engines import ALIASES, ENGINES, Engine, sampling
from .errors import EngineError
from .loaders import load
from .result import BoundsResult


def resolve_method(method: str) -> Engine:
    """The engine registered under ``method`` (or one of its aliases)."""
    key = ALIASES.get(method.lower(), method.lower()) if isinstance(method, str) else method
    if key not in ENGINES:
        known = ", ".join(sorted(ENGINES))
        raise EngineError(f"unknown method {method!r}; choose one of: {known}")
    return ENGINES[key]


def _strict_default() -> bool:
    return os.environ.get("NNRANGE_STRICT", "") not in ("", "0")


def bounds(
    model,
    lo,
    hi,
    method: str = "crown",
    *,
    samples: int = 1000,
    corners: int = 256,
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
    method: engine name: ``"crown"`` (default), ``"alpha-crown"`` (tighter, slower), ``"ibp"``
        (fastest, loosest), ``"sample"`` (inner bounds only).
    samples, corners, seed: budget of the inner bounds attached to every result (uniform
        samples and box corners, plus the centre); ``samples=0, corners=0`` leaves only the centre.
    atol, rtol: tolerance for calling an output's range exact.
    strict: raise ``UnsoundBoundError`` (instead of warning) when a witness escapes an outer
        bound; defaults to the environment variable ``NNRANGE_STRICT``.
    options: passed to the engine.

    Returns a ``BoundsResult``.
    """
    engine = resolve_method(method)
    graph = load(model)
    box = Box.from_bounds(lo, hi, graph.input_shape)
    try:
        result = engine.run(graph, box, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise EngineError(f"method {engine.name!r}: {exc}") from exc
        raise
    if engine.gives_outer:
        result = result.combine(
            sampling.run(graph, box, samples=samples, corners=corners, seed=seed)
        )
    result.atol, result.rtol = atol, rtol
    return result.check(strict=_strict_default() if strict is None else strict)
