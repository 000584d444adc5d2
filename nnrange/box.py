"""Input boxes: validation, batching, sampling helpers.

A ``Box`` holds ``B`` boxes over the model input, as arrays ``lo`` and ``hi`` of shape
``(B, *input_shape)``. ``batched`` remembers whether the user asked for several boxes, so
results come back in the shape the user expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import BoxError


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape without leading singleton axes (an ONNX batch axis of 1)."""
    i = 0
    while i < len(shape) - 1 and shape[i] == 1:
        i += 1
    return shape[i:]


@dataclass(frozen=True)
class Box:
    lo: np.ndarray
    hi: np.ndarray
    batched: bool = False

    @classmethod
    def from_bounds(cls, lo, hi, input_shape: tuple[int, ...]) -> Box:
        """Build and validate boxes for a model input of shape ``input_shape``.

        ``lo``/``hi`` may be scalars (broadcast), flat sequences of the input size, arrays in
        the input shape (with or without leading singleton axes), or a leading batch axis of
        several boxes in any of those layouts.
        """
        input_shape = tuple(int(d) for d in input_shape)
        size = int(np.prod(input_shape, dtype=np.int64))
        arrays = []
        for which, value in (("lo", lo), ("hi", hi)):
            if value is None:
                raise BoxError(f"{which} is missing (None): give a number or an array of numbers")
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise BoxError(f"{which} is not a number or an array of numbers: {exc}") from exc
            arrays.append(arr)
        lo_a, hi_a = arrays
        batch_sizes = {
            cls._batch_size(which, a, input_shape, size)
            for which, a in (("lo", lo_a), ("hi", hi_a))
        }
        batch_sizes.discard(None)
        if len(batch_sizes) > 1:
            raise BoxError(
                f"lo and hi describe different numbers of boxes ({sorted(batch_sizes)}); "
                "give both the same leading batch size"
            )
        batched = bool(batch_sizes)
        b = batch_sizes.pop() if batched else 1
        if b == 0:
            raise BoxError("lo and hi hold a batch of zero boxes: give at least one box")
        lo_a = cls._reshape(lo_a, b, input_shape, size)
        hi_a = cls._reshape(hi_a, b, input_shape, size)
        cls._validate(lo_a, hi_a, input_shape, batched)
        lo_a.setflags(write=False)
        hi_a.setflags(write=False)
        return cls(lo_a, hi_a, batched)

    @staticmethod
    def _batch_size(which, a, input_shape, size):
        """None for one box (scalar or exactly one input's worth), else the batch size."""
        if a.ndim == len(input_shape) + 1 and a.shape[1:] == input_shape:
            return a.shape[0]  # explicitly batched, even a batch of one
        if a.ndim == 0 or a.size == size:
            return None
        if a.ndim >= 2 and a.shape[1:] in {input_shape, _squeezed(input_shape), (size,)}:
            return a.shape[0]
        raise BoxError(
            f"{which} has shape {a.shape} ({a.size} values) but the model input has shape "
            f"{input_shape} ({size} values): give a scalar, {size} values, an array of shape "
            f"{input_shape}, or a batch of boxes of shape (B, *{input_shape})"
        )

    @staticmethod
    def _reshape(a, b, input_shape, size):
        if a.ndim == 0:
            return np.full((b, *input_shape), float(a))
        if a.size == size:
            return np.broadcast_to(a.reshape(1, *input_shape), (b, *input_shape)).copy()
        return a.reshape(b, *input_shape).copy()

    @staticmethod
    def _validate(lo, hi, input_shape, batched):
        def where(flat_index):
            box, rest = divmod(int(flat_index), int(np.prod(input_shape, dtype=np.int64)))
            idx = np.unravel_index(rest, input_shape)
            prefix = f"box {box}, " if batched else ""
            return f"{prefix}input dimension {rest} (index {tuple(int(i) for i in idx)})"

        for which, a in (("lo", lo), ("hi", hi)):
            bad = np.flatnonzero(~np.isfinite(a))
            if bad.size:
                raise BoxError(
                    f"{which} is {float(a.reshape(-1)[bad[0]])} at {where(bad[0])}"
                    f"{f' and {bad.size - 1} more place(s)' if bad.size > 1 else ''}: "
                    "every bound must be a finite number"
                )
        with np.errstate(over="ignore"):
            bad = np.flatnonzero(~np.isfinite(hi - lo))
        if bad.size:
            raise BoxError(
                f"the box's width overflows float64 at {where(bad[0])} (lo = "
                f"{float(lo.reshape(-1)[bad[0]])!r}, hi = {float(hi.reshape(-1)[bad[0]])!r}): "
                "give a narrower box, or rescale the inputs"
            )
        bad = np.flatnonzero(lo > hi)
        if bad.size:
            i = bad[0]
            raise BoxError(
                f"lo > hi at {where(i)}: lo = {float(lo.reshape(-1)[i])!r}, "
                f"hi = {float(hi.reshape(-1)[i])!r}"
                f"{f' (and {bad.size - 1} more dimension(s))' if bad.size > 1 else ''}; "
                "swap them or fix the box"
            )

    @property
    def n(self) -> int:
        """Number of boxes."""
        return self.lo.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """The model input shape."""
        return self.lo.shape[1:]

    @property
    def center(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def radius(self) -> np.ndarray:
        return (self.hi - self.lo) / 2

    def __getitem__(self, i) -> Box:
        lo, hi = self.lo[i], self.hi[i]
        if lo.ndim == len(self.shape):
            return Box(lo[None], hi[None], False)
        return Box(lo, hi, True)

    def uniform(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` uniform points in each box: shape ``(B, n, *input_shape)``."""
        u = rng.random((self.n, n, *self.shape))
        return self.lo[:, None] + u * (self.hi - self.lo)[:, None]

    def on_faces(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points in each box with each coordinate, independently, at its lower bound,
        its upper bound or uniform in between (probabilities 1/4, 1/4, 1/2): shape
        ``(B, n, *input_shape)``. Piecewise-linear networks take their extremes on linear
        regions' vertices, which on ACAS Xu often lie on the box's faces."""
        u = self.uniform(n, rng)
        pick = rng.random(u.shape)
        u = np.where(pick < 0.25, self.lo[:, None], u)
        return np.where(pick > 0.75, self.hi[:, None], u)

    def corners(self, n_max: int, rng: np.random.Generator) -> np.ndarray:
        """Box corners: all of them when there are at most ``n_max``, else ``n_max`` random ones.

        Only dimensions with lo < hi count. Shape ``(B, k, *input_shape)``; boxes with fewer
        corners repeat their first one.
        """
        flat_lo = self.lo.reshape(self.n, -1)
        flat_hi = self.hi.reshape(self.n, -1)
        per_box = []
        for lo, hi in zip(flat_lo, flat_hi, strict=True):
            free = np.flatnonzero(hi > lo)
            k = free.size
            if 2**k <= n_max:
                bits = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1).astype(bool)
            else:
                bits = rng.random((n_max, k)) < 0.5
            pts = np.repeat(lo[None], bits.shape[0], axis=0)
            pts[:, free] = np.where(bits, hi[free], lo[free])
            per_box.append(pts)
        count = max(p.shape[0] for p in per_box)
        out = np.stack(
            [np.concatenate([p, np.repeat(p[:1], count - p.shape[0], axis=0)]) for p in per_box]
        )
        return out.reshape(self.n, count, *self.shape)
