"""Progressive LP bound tightening.

Before the consumers of a tensor are encoded, each of its neurons in doubt (an unstable ReLU,
a Clip straddling a breakpoint, a max-pooling input) is minimised and maximised over the LP
relaxation of everything encoded so far (binaries relaxed to [0, 1]). The LP optima, padded for
floating point like CROWN's bounds, replace the bounds when tighter: fewer unstable neurons and
smaller big-M coefficients for the layers that follow. The LP is kept in one HiGHS instance
that grows with the model, so each solve is a warm-started simplex.
"""

from __future__ import annotations

import time

import numpy as np

from .encoding import PAD_ABS, PAD_REL, Encoding
from .solving import HighsSolver


class LpTightener:
    """A ``Tightener`` for ``Encoding``; stops tightening (keeping the bounds it has) once
    ``deadline`` (a ``time.perf_counter()`` value) passes."""

    def __init__(
        self, deadline: float | None = None, pad_abs: float = PAD_ABS, pad_rel: float = PAD_REL
    ):
        self.deadline = deadline
        self.pad = (pad_abs, pad_rel)
        self.lp: HighsSolver | None = None
        self.lps = 0
        self.tightened = 0
        self.seconds = 0.0
        self.stopped = False

    def stats(self) -> dict:
        return {
            "lps": self.lps,
            "tightened": self.tightened,
            "seconds": self.seconds,
            "stopped_by_time": self.stopped,
        }

    def __call__(self, enc: Encoding, cols, lo, hi, need):
        t0 = time.perf_counter()
        lo, hi = lo.copy(), hi.copy()
        try:
            if self.stopped:
                return lo, hi
            if self.lp is None:
                self.lp = HighsSolver(enc.model, integer=False)
            else:
                self.lp.sync()
            pa, pr = self.pad
            for i in np.flatnonzero(need):
                remaining = None if self.deadline is None else self.deadline - time.perf_counter()
                if remaining is not None and remaining <= 0:
                    self.stopped = True
                    break
                col = int(cols[i])
                low = self.lp.lp_value(col, 1.0, remaining)
                if low is not None:
                    low -= pa + pr * abs(low)
                    if low > lo[i]:
                        lo[i] = min(low, hi[i])
                        self.tightened += 1
                high = self.lp.lp_value(col, -1.0, remaining)
                if high is not None:
                    high = -high
                    high += pa + pr * abs(high)
                    if high < hi[i]:
                        hi[i] = max(high, lo[i])
                        self.tightened += 1
                self.lps += 2
                self.lp.set_bounds(cols[i : i + 1], lo[i : i + 1], hi[i : i + 1])
            return lo, hi
        finally:
            self.seconds += time.perf_counter() - t0
