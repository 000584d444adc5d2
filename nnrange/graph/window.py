"""Sliding-window geometry shared by convolution and pooling nodes.

A window op over ``n`` spatial axes pads its input, then, for each kernel offset, reads a
strided slice of the padded input. Forward passes add (or take the max of) those slices;
transposed passes scatter-add into the same slices, which makes every adjoint exact by
construction.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.kernel)

    def output_spatial(self, in_spatial: tuple[int, ...]) -> tuple[int, ...]:
        out = []
        for n, k, s, d, pb, pe in zip(
            in_spatial,
            self.kernel,
            self.strides,
            self.dilations,
            self.pads_begin,
            self.pads_end,
            strict=True,
        ):
            extent = d * (k - 1) + 1
            size = n + pb + pe - extent
            if size < 0:
                raise ValueError(
                    f"window of extent {extent} does not fit a padded axis of size {n + pb + pe}"
                )
            out.append(size // s + 1)
        return tuple(out)

    def offsets(self, in_spatial: tuple[int, ...]):
        """Yield ``(kernel_index, slices)``: slices into the padded spatial axes per offset."""
        out = self.output_spatial(in_spatial)
        for idx in itertools.product(*(range(k) for k in self.kernel)):
            yield (
                idx,
                tuple(
                    slice(i * d, i * d + (o - 1) * s + 1, s)
                    for i, d, o, s in zip(idx, self.dilations, out, self.strides, strict=True)
                ),
            )

    def pad(self, x: np.ndarray, value: float = 0.0) -> np.ndarray:
        """Pad the trailing spatial axes of x."""
        if not any(self.pads_begin) and not any(self.pads_end):
            return x
        widths = [(0, 0)] * (x.ndim - self.ndim) + list(
            zip(self.pads_begin, self.pads_end, strict=True)
        )
        return np.pad(x, widths, constant_values=value)

    def crop(self, g: np.ndarray, in_spatial: tuple[int, ...]) -> np.ndarray:
        """Inverse of ``pad`` for the transpose: drop the padded border."""
        lead = (slice(None),) * (g.ndim - self.ndim)
        return g[
            lead
            + tuple(slice(pb, pb + n) for pb, n in zip(self.pads_begin, in_spatial, strict=True))
        ]

    def padded_spatial(self, in_spatial: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(
            n + pb + pe
            for n, pb, pe in zip(in_spatial, self.pads_begin, self.pads_end, strict=True)
        )


def same_padding(
    in_spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilations: tuple[int, ...],
    extra_at_end: bool = True,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Padding giving ``ceil(n / stride)`` outputs (TensorFlow 'same', ONNX SAME_UPPER/LOWER)."""
    begin, end = [], []
    for n, k, s, d in zip(in_spatial, kernel, strides, dilations, strict=True):
        out = -(-n // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
        small = total // 2
        begin.append(small if extra_at_end else total - small)
        end.append(total - small if extra_at_end else small)
    return tuple(begin), tuple(end)


def ceil_mode_extra(in_spatial: tuple[int, ...], window: Window) -> tuple[int, ...]:
    """Extra end padding so that the output size is rounded up (pooling ``ceil_mode``).

    As in ONNX/PyTorch, a last window must start inside the input or the begin padding.
    """
    extra = []
    for n, k, s, d, pb, pe in zip(
        in_spatial,
        window.kernel,
        window.strides,
        window.dilations,
        window.pads_begin,
        window.pads_end,
        strict=True,
    ):
        extent = d * (k - 1) + 1
        span = n + pb + pe - extent
        out = -(-span // s) + 1
        if (out - 1) * s >= n + pb:
            out -= 1
        extra.append(max((out - 1) * s + extent - (n + pb + pe), 0))
    return tuple(extra)
