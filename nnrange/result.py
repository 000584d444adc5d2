"""BoundsResult: both sides of an output range, with witnesses, exact flags and timings.

Arrays are stored with a leading box axis. For a single box (``batched`` False) the public
attributes drop that axis, so ``result.upper`` is a vector with one entry per output.
"""

from __future__ import annotations

import enum
import warnings

import numpy as np

from .errors import UnsoundBoundError

#: Absolute and relative slack of the soundness self-check (float64 rounding, not modelling).
SOUNDNESS_ATOL = 1e-9
SOUNDNESS_RTOL = 1e-9


class Status(enum.StrEnum):
    """How an engine run ended."""

    OK = "ok"  # finished; outer bounds as tight as this engine gets them
    TIMEOUT = "timeout"  # stopped by a limit; outer bounds still sound, maybe loose


class _Batched:
    """Attribute stored with a box axis, returned without it for a single box."""

    def __set_name__(self, owner, name):
        self.slot = "_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = getattr(obj, self.slot)
        return value if obj.batched or value is None else value[0]


class BoundsResult:
    """Outer (proven) and inner (attained) bounds on each output of a model over a box.

    Attributes (one entry per output, flattened in C order; with a leading box axis when
    several boxes were given):

    - ``lower``, ``upper``: proven bounds, ``lower <= f(x) <= upper`` for every x in the box.
    - ``inner_lower``, ``inner_upper``: values reached by the inputs ``witness_lower`` /
      ``witness_upper`` (shape ``(n_outputs, *input_shape)`` per box).
    - ``exact``: True where outer and inner bounds meet within ``atol + rtol * |bound|``.
    - ``method``, ``engines``, ``timings``, ``status``.
    - ``linear`` (symbolic engines): ``A_lower x + b_lower <= f(x) <= A_upper x + b_upper``
      over the box, a ``LinearBounds`` with arrays per box, output and (flattened) input.
    - ``layers`` (symbolic engines): per tensor that feeds a nonlinear node, its bounds and the
      number of unstable neurons, named by the source model's layer names.
    """

    lower = _Batched()
    upper = _Batched()
    inner_lower = _Batched()
    inner_upper = _Batched()
    witness_lower = _Batched()
    witness_upper = _Batched()

    def __init__(
        self,
        *,
        n_boxes: int,
        n_outputs: int,
        input_shape: tuple[int, ...],
        output_shape: tuple[int, ...] | None = None,
        lower=None,
        upper=None,
        inner_lower=None,
        inner_upper=None,
        witness_lower=None,
        witness_upper=None,
        method: str = "",
        engines: tuple[str, ...] = (),
        timings: dict[str, float] | None = None,
        status: Status = Status.OK,
        batched: bool = False,
        atol: float = 1e-6,
        rtol: float = 1e-6,
        output_names: list[str] | None = None,
        info: dict | None = None,
        linear=None,
        layers: list | None = None,
    ):
        shape = (n_boxes, n_outputs)
        self._lower = self._array(lower, shape, -np.inf)
        self._upper = self._array(upper, shape, np.inf)
        if np.isnan(self._lower).any() or np.isnan(self._upper).any():
            # float64 overflow inside an engine (inf - inf): no information, which is sound
            self._lower = np.where(np.isnan(self._lower), -np.inf, self._lower)
            self._upper = np.where(np.isnan(self._upper), np.inf, self._upper)
            warnings.warn(
                "float64 overflow while bounding (a very wide box or very large weights): "
                "outer bounds it made NaN are reported as -inf / inf; a narrower or rescaled "
                "box gives finite bounds",
                RuntimeWarning,
                stacklevel=2,
            )
        self._inner_lower = self._array(inner_lower, shape, np.inf)
        self._inner_upper = self._array(inner_upper, shape, -np.inf)
        self._witness_lower = witness_lower
        self._witness_upper = witness_upper
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(output_shape) if output_shape is not None else (n_outputs,)
        self.method = method
        self.engines = tuple(engines) or ((method,) if method else ())
        self.timings = dict(timings or {})
        self.status = Status(status)
        self.batched = batched
        self.atol, self.rtol = float(atol), float(rtol)
        self.output_names = output_names
        self.info = dict(info or {})
        self.linear = linear
        self.layers = layers

    @staticmethod
    def _array(value, shape, fill):
        if value is None:
            return np.full(shape, fill)
        return np.asarray(value, dtype=np.float64).reshape(shape)

    # ---------------------------------------------------------------- derived views
    @property
    def n_boxes(self) -> int:
        return self._lower.shape[0]

    @property
    def n_outputs(self) -> int:
        return self._lower.shape[1]

    def _tol(self, value):
        return self.atol + self.rtol * np.abs(np.where(np.isfinite(value), value, 0.0))

    @property
    def exact(self) -> np.ndarray:
        """Per output: proven and attained bounds meet on both sides within tolerance."""
        ok = (self._upper - self._inner_upper <= self._tol(self._upper)) & (
            self._inner_lower - self._lower <= self._tol(self._lower)
        )
        return ok if self.batched else ok[0]

    @property
    def gap(self) -> np.ndarray:
        """Per output: how much of the outer range is not yet attained (0 when exact)."""
        g = (self._upper - self._lower) - np.maximum(self._inner_upper - self._inner_lower, 0.0)
        return g if self.batched else g[0]

    @property
    def width(self) -> np.ndarray:
        """Per output: width of the proven range, ``upper - lower``."""
        w = self._upper - self._lower
        return w if self.batched else w[0]

    def __getitem__(self, i: int) -> BoundsResult:
        """The result for box ``i`` of a batched run."""
        if not self.batched:
            raise IndexError("this result holds one box; index the outputs with result.upper[j]")
        sl = slice(i, i + 1)
        return BoundsResult(
            n_boxes=1,
            n_outputs=self.n_outputs,
            input_shape=self.input_shape,
            output_shape=self.output_shape,
            lower=self._lower[sl],
            upper=self._upper[sl],
            inner_lower=self._inner_lower[sl],
            inner_upper=self._inner_upper[sl],
            witness_lower=None if self._witness_lower is None else self._witness_lower[sl],
            witness_upper=None if self._witness_upper is None else self._witness_upper[sl],
            method=self.method,
            engines=self.engines,
            timings=self.timings,
            status=self.status,
            batched=False,
            atol=self.atol,
            rtol=self.rtol,
            output_names=self.output_names,
            info=self.info,
            linear=None if self.linear is None else self.linear.select(i),
            layers=None if self.layers is None else [layer.select(i) for layer in self.layers],
        )

    # ---------------------------------------------------------------- combining
    def combine(self, other: BoundsResult) -> BoundsResult:
        """Intersect the outer bounds and keep the wider inner bounds of two results.

        Both must be about the same boxes. The result is checked: a witness outside an outer
        bound raises ``UnsoundBoundError`` (see ``check``).
        """
        lower = np.maximum(self._lower, other._lower)
        upper = np.minimum(self._upper, other._upper)
        take_o_lo = other._inner_lower < self._inner_lower
        take_o_hi = other._inner_upper > self._inner_upper
        out = BoundsResult(
            n_boxes=self.n_boxes,
            n_outputs=self.n_outputs,
            input_shape=self.input_shape,
            output_shape=self.output_shape,
            lower=lower,
            upper=upper,
            inner_lower=np.where(take_o_lo, other._inner_lower, self._inner_lower),
            inner_upper=np.where(take_o_hi, other._inner_upper, self._inner_upper),
            witness_lower=_pick(take_o_lo, other._witness_lower, self._witness_lower),
            witness_upper=_pick(take_o_hi, other._witness_upper, self._witness_upper),
            method=self.method or other.method,
            engines=self.engines + tuple(e for e in other.engines if e not in self.engines),
            timings={**self.timings, **other.timings},
            status=Status.TIMEOUT if Status.TIMEOUT in (self.status, other.status) else Status.OK,
            batched=self.batched,
            atol=self.atol,
            rtol=self.rtol,
            output_names=self.output_names or other.output_names,
            info={**other.info, **self.info},
            linear=self.linear if self.linear is not None else other.linear,
            layers=self.layers if self.layers is not None else other.layers,
        )
        return out

    def violations(self) -> np.ndarray:
        """Boolean ``(B, n_outputs)``: an attained value lies outside a proven bound."""
        slack_hi = SOUNDNESS_ATOL + SOUNDNESS_RTOL * np.abs(np.nan_to_num(self._upper))
        slack_lo = SOUNDNESS_ATOL + SOUNDNESS_RTOL * np.abs(np.nan_to_num(self._lower))
        return (self._inner_upper > self._upper + slack_hi) | (
            self._inner_lower < self._lower - slack_lo
        )

    def check(self, strict: bool = True) -> BoundsResult:
        """Raise ``UnsoundBoundError`` (or warn, when not strict) if a witness escapes."""
        bad = self.violations()
        if bad.any():
            b, j = (int(v) for v in np.argwhere(bad)[0])
            msg = (
                f"soundness self-check failed ({int(bad.sum())} output bound(s)): box {b}, output "
                f"{j}: attained [{float(self._inner_lower[b, j])!r}, "
                f"{float(self._inner_upper[b, j])!r}] but "
                f"proven [{float(self._lower[b, j])!r}, {float(self._upper[b, j])!r}] by "
                f"{'+'.join(self.engines)}. This is a bug in nnrange; please report it with the "
                "model and box."
            )
            if strict:
                raise UnsoundBoundError(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        return self

    # ---------------------------------------------------------------- output
    def to_dict(self) -> dict:
        """Plain JSON-serialisable data (lists, floats, strings); infinities become None."""

        def arr(a):
            if a is None:
                return None
            a = a if self.batched else a[0]
            return (
                np.where(np.isfinite(a), a, np.nan).tolist() if a.dtype.kind == "f" else a.tolist()
            )

        def clean(x):
            if isinstance(x, list):
                return [clean(v) for v in x]
            return None if isinstance(x, float) and x != x else x

        return {
            "method": self.method,
            "engines": list(self.engines),
            "status": self.status.value,
            "batched": self.batched,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "lower": clean(arr(self._lower)),
            "upper": clean(arr(self._upper)),
            "inner_lower": clean(arr(self._inner_lower)),
            "inner_upper": clean(arr(self._inner_upper)),
            "exact": arr(self.exact if self.batched else self.exact[None]),
            "witness_lower": clean(arr(self._witness_lower)),
            "witness_upper": clean(arr(self._witness_upper)),
            "timings": dict(self.timings),
            "tolerance": {"atol": self.atol, "rtol": self.rtol},
        }

    def table(self, box: int = 0) -> str:
        """A readable table of one box's bounds."""
        names = self.output_names or [str(j) for j in range(self.n_outputs)]
        exact = self.exact if self.batched else self.exact[None]
        w = max(6, *(len(n) for n in names))
        head = (
            f"{'output':>{w}} {'lower':>13} {'inner lower':>13} {'inner upper':>13} "
            f"{'upper':>13}  exact"
        )
        rows = [head]
        for j, name in enumerate(names):
            rows.append(
                f"{name:>{w}} {_fmt(self._lower[box, j])} {_fmt(self._inner_lower[box, j], '-')} "
                f"{_fmt(self._inner_upper[box, j], '-')} {_fmt(self._upper[box, j])}  "
                f"{'yes' if exact[box, j] else ''}"
            )
        return "\n".join(rows)

    def __repr__(self) -> str:
        boxes = f", box 0 of {self.n_boxes}" if self.batched else ""
        total = sum(self.timings.values())
        head = (
            f"BoundsResult(method={self.method!r}, engines={'+'.join(self.engines)}, "
            f"status={self.status.value}, {self.n_outputs} output(s){boxes}, {total:.3g} s)"
        )
        return head + "\n" + self.table(0)


def _fmt(v: float, missing: str | None = None) -> str:
    if np.isfinite(v):
        return f"{v:>13.6g}"
    return f"{missing or ('-inf' if v < 0 else 'inf'):>13}"


def _pick(mask, a, b):
    """Per (box, output) choose witness rows from a where mask, else from b."""
    if a is None:
        return b
    if b is None:
        return a
    m = mask.reshape(mask.shape + (1,) * (a.ndim - 2))
    return np.where(m, a, b)
