"""Node kinds that are neither affine nor elementwise: max pooling and softmax."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logsumexp, softmax

from .core import NonlinearNode
from .linear import _channels_back, _channels_first, _join_layout, _split_layout
from .window import Window, ceil_mode_extra


class MaxPool(NonlinearNode):
    """Max over each window; padding cells never win (they hold -inf)."""

    op = "MaxPool"

    def __init__(
        self, name, inputs, window: Window, ceil_mode=False, channels_last=False, source=None
    ):
        super().__init__(name, inputs, source)
        self.window = window
        self.ceil_mode = bool(ceil_mode)
        self.channels_last = bool(channels_last)

    def infer_shape(self, s):
        w = self.window
        lead, c, sp = _split_layout(s, w.ndim, self.channels_last)
        if self.ceil_mode:
            extra = ceil_mode_extra(sp, w)
            self.window = Window(
                w.kernel,
                w.strides,
                w.dilations,
                w.pads_begin,
                tuple(e + x for e, x in zip(w.pads_end, extra, strict=True)),
            )
            self.ceil_mode = False
        if any(
            p >= d * (k - 1) + 1
            for p, k, d in zip(
                self.window.pads_begin, self.window.kernel, self.window.dilations, strict=True
            )
        ):
            raise self.fail("padding as wide as the window would create windows with no input cell")
        self._spatial = sp
        return _join_layout(lead, c, self.window.output_spatial(sp), self.channels_last)

    def windows(self, x: np.ndarray) -> list[np.ndarray]:
        """The window slices of x (channels-first), one array per kernel offset."""
        nsp = self.window.ndim
        xp = self.window.pad(_channels_first(x, nsp, self.channels_last), -np.inf)
        return [xp[(..., *sl)] for _, sl in self.window.offsets(self._spatial)]

    def forward(self, x):
        y = np.maximum.reduce(self.windows(x))
        return _channels_back(y, self.window.ndim, self.channels_last)

    def interval(self, los, his):
        return self.forward(los[0]), self.forward(his[0])

    def vjp(self, xs, y, g):
        nsp = self.window.ndim
        wins = np.stack(self.windows(xs[0]))
        winner = wins.argmax(axis=0)
        g_cf = _channels_first(g, nsp, self.channels_last)
        padded = np.zeros((*g_cf.shape[:-nsp], *self.window.padded_spatial(self._spatial)))
        for j, (_, sl) in enumerate(self.window.offsets(self._spatial)):
            padded[(..., *sl)] += np.where(winner == j, g_cf, 0.0)
        return [_channels_back(self.window.crop(padded, self._spatial), nsp, self.channels_last)]

    def describe(self):
        w = self.window
        return f"k={w.kernel} s={w.strides} pads={w.pads_begin}/{w.pads_end}"


class Softmax(NonlinearNode):
    """Softmax along one sample axis."""

    op = "Softmax"

    def __init__(self, name, inputs, axis=-1, source=None):
        super().__init__(name, inputs, source)
        self.axis = int(axis)

    def infer_shape(self, s):
        axis = self.axis + len(s) if self.axis < 0 else self.axis
        if not 0 <= axis < len(s):
            raise self.fail(f"axis {self.axis} out of range for shape {s}")
        self.axis = axis
        return s

    def forward(self, x):
        return softmax(x, axis=self.axis + 1)

    def vjp(self, xs, y, g):
        axis = self.axis + 1
        return [y * (g - (g * y).sum(axis=axis, keepdims=True))]

    def interval(self, los, his):
        # y_i = 1 / (1 + sum_{j != i} exp(x_j - x_i)) is increasing in x_i, decreasing in x_j.
        lo = np.moveaxis(los[0], self.axis + 1, -1)
        hi = np.moveaxis(his[0], self.axis + 1, -1)
        n = lo.shape[-1]
        off = np.where(np.eye(n, dtype=bool), -np.inf, 0.0)
        lse_hi_others = logsumexp(hi[..., None, :] + off, axis=-1)
        lse_lo_others = logsumexp(lo[..., None, :] + off, axis=-1)
        lower = expit(lo - lse_hi_others)
        upper = expit(hi - lse_lo_others)
        return (np.moveaxis(lower, -1, self.axis + 1), np.moveaxis(upper, -1, self.axis + 1))

    def describe(self):
        return f"axis={self.axis}"
