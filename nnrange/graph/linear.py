"""Affine node kinds: each knows its map, the map with absolute coefficients, and its transpose.

Engines never materialise the matrix of a convolution or a reshape: interval propagation uses
``abs_linear`` and back-substitution uses ``backward``.
"""

from __future__ import annotations

import numpy as np

from .core import LinearNode, Shape
from .window import Window, ceil_mode_extra


def _align(x: np.ndarray, in_shape: Shape, out_ndim: int) -> np.ndarray:
    """View a batch ``(B, *in_shape)`` with singleton axes so it broadcasts to ``out_ndim`` dims."""
    extra = out_ndim - len(in_shape)
    return x.reshape(x.shape[0], *(1,) * extra, *in_shape) if extra > 0 else x


def _unbroadcast(g: np.ndarray, in_shape: Shape) -> np.ndarray:
    """Transpose of broadcasting ``in_shape`` up to ``g.shape[1:]``: sum over the copies."""
    out_shape = g.shape[1:]
    extra = len(out_shape) - len(in_shape)
    if extra:
        g = g.sum(axis=tuple(range(1, 1 + extra)))
    axes = tuple(
        1 + i
        for i, (n, m) in enumerate(zip(in_shape, g.shape[1:], strict=True))
        if n == 1 and m != 1
    )
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def _channels_first(x: np.ndarray, nsp: int, channels_last: bool) -> np.ndarray:
    return np.moveaxis(x, -1, -nsp - 1) if channels_last else x


def _channels_back(x: np.ndarray, nsp: int, channels_last: bool) -> np.ndarray:
    return np.moveaxis(x, -nsp - 1, -1) if channels_last else x


def _split_layout(shape: Shape, nsp: int, channels_last: bool) -> tuple[Shape, int, Shape]:
    """``(leading axes, channels, spatial)`` of a sample shape for a window op."""
    if len(shape) < nsp + 1:
        raise ValueError(f"needs at least {nsp + 1} axes (channels + {nsp} spatial), got {shape}")
    if channels_last:
        return shape[: -nsp - 1], shape[-1], shape[-nsp - 1 : -1]
    return shape[: -nsp - 1], shape[-nsp - 1], shape[-nsp:]


def _join_layout(lead: Shape, channels: int, spatial: Shape, channels_last: bool) -> Shape:
    return (*lead, *spatial, channels) if channels_last else (*lead, channels, *spatial)


class Dense(LinearNode):
    """``y = x @ W + b`` over the last axis; W has shape ``(n_in, n_out)``."""

    op = "Dense"

    def __init__(self, name, inputs, weight, bias=None, source=None):
        super().__init__(name, inputs, source)
        self.weight = np.asarray(weight, dtype=np.float64)
        if self.weight.ndim != 2:
            raise self.fail(f"weight must be 2-D, got shape {self.weight.shape}")
        self.abs_weight = np.abs(self.weight)
        self.weight_t = np.ascontiguousarray(self.weight.T)  # BLAS is faster on this than on .T
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)

    def infer_shape(self, s):
        if not s or s[-1] != self.weight.shape[0]:
            raise self.fail(f"input shape {s} does not end in {self.weight.shape[0]} features")
        return (*s[:-1], self.weight.shape[1])

    @staticmethod
    def _matmul(x, w):
        # 2-D products hit one BLAS call; numpy would loop over extra leading axes.
        return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[1])

    def linear(self, x):
        return self._matmul(x, self.weight)

    def abs_linear(self, x):
        return self._matmul(x, self.abs_weight)

    def backward(self, a):
        return [self._matmul(a, self.weight_t)]

    def _slices(self, idx):
        # a read-only index array (CROWN's alive neurons) comes back for every pass over one
        # state: slice the weights once for it
        cached = self.__dict__.get("_rows")
        if cached is None or cached[0] is not idx:
            bias = np.zeros(idx.size) if self.bias is None else self.bias[idx]
            cached = (idx, self.weight_t[idx], bias)
            if not idx.flags.writeable:
                self._rows = cached
        return cached[1], cached[2]

    def backward_sparse(self, a, idx):
        if self.out_size != self.weight.shape[1]:  # several rows of features: no shortcut
            return super().backward_sparse(a, idx)
        rows, bias = self._slices(idx)
        return [(a @ rows).reshape(a.shape[0], *self.in_shapes[0])], a @ bias

    def backward_rows(self, idx):
        if self.out_size != self.weight.shape[1]:
            return super().backward_rows(idx)
        rows, bias = self._slices(idx)
        return [rows.reshape(idx.size, *self.in_shapes[0])], bias

    def params(self):
        return self.weight.size + (0 if self.bias is None else self.bias.size)

    def describe(self):
        return f"{self.weight.shape[0]}->{self.weight.shape[1]}"


class Conv(LinearNode):
    """N-d convolution (cross-correlation, as in ONNX and Keras) with groups.

    ``weight`` has shape ``(C_out, C_in / groups, *kernel)``. The op acts on the trailing
    ``1 + ndim`` axes of the sample: ``(C, *spatial)`` or, with ``channels_last``,
    ``(*spatial, C)``. Leading axes (an ONNX batch axis of 1) are carried along.
    """

    op = "Conv"

    def __init__(
        self, name, inputs, weight, bias, window: Window, groups=1, channels_last=False, source=None
    ):
        super().__init__(name, inputs, source)
        self.weight = np.asarray(weight, dtype=np.float64)
        self.window = window
        self.groups = int(groups)
        self.channels_last = bool(channels_last)
        nsp = window.ndim
        if self.weight.ndim != nsp + 2:
            raise self.fail(f"weight shape {self.weight.shape} does not match a {nsp}-D kernel")
        if self.weight.shape[0] % self.groups:
            raise self.fail(
                f"{self.weight.shape[0]} output channels not divisible by groups={groups}"
            )
        c_out = self.weight.shape[0]
        g, cg = self.groups, self.weight.shape[1]
        k = int(np.prod(window.kernel))
        # (G, C_out/G, C_in/G * K) so one einsum per call does the whole convolution.
        self._w = self.weight.reshape(g, c_out // g, cg * k)
        self._abs_w = np.abs(self._w)
        if bias is not None:
            b = np.asarray(bias, dtype=np.float64).reshape(-1)
            self.bias = b if self.channels_last else b.reshape(-1, *(1,) * nsp)

    def infer_shape(self, s):
        lead, c, sp = _split_layout(s, self.window.ndim, self.channels_last)
        if c != self.weight.shape[1] * self.groups:
            raise self.fail(
                f"input has {c} channels but the kernel expects "
                f"{self.weight.shape[1] * self.groups}"
            )
        return _join_layout(
            lead, self.weight.shape[0], self.window.output_spatial(sp), self.channels_last
        )

    def _in_spatial(self):
        return _split_layout(self.in_shapes[0], self.window.ndim, self.channels_last)[2]

    def _apply(self, x, w):
        nsp = self.window.ndim
        sp = self._in_spatial()
        xc = _channels_first(x, nsp, self.channels_last)
        batch_shape = xc.shape[: -nsp - 1]
        xp = self.window.pad(xc.reshape(-1, *xc.shape[-nsp - 1 :]))
        cols = np.stack(
            [xp[(slice(None), slice(None), *sl)] for _, sl in self.window.offsets(sp)], axis=2
        )
        n, c, k = cols.shape[:3]
        out_sp = cols.shape[3:]
        cols = cols.reshape(n, self.groups, (c // self.groups) * k, *out_sp)
        y = np.einsum("ngk...,gok->ngo...", cols, w, optimize=True)
        y = y.reshape(*batch_shape, self.weight.shape[0], *out_sp)
        return _channels_back(y, nsp, self.channels_last)

    def linear(self, x):
        return self._apply(x, self._w)

    def abs_linear(self, x):
        return self._apply(x, self._abs_w)

    def backward(self, a):
        nsp = self.window.ndim
        sp = self._in_spatial()
        ac = _channels_first(a, nsp, self.channels_last)
        batch_shape = ac.shape[: -nsp - 1]
        ac = ac.reshape(-1, *ac.shape[-nsp - 1 :])
        n, out_sp = ac.shape[0], ac.shape[2:]
        ag = ac.reshape(n, self.groups, -1, *out_sp)
        cols = np.einsum("ngo...,gok->ngk...", ag, self._w, optimize=True)
        k = int(np.prod(self.window.kernel))
        c_in = self.weight.shape[1] * self.groups
        cols = cols.reshape(n, c_in, k, *out_sp)
        gp = np.zeros((n, c_in, *self.window.padded_spatial(sp)))
        for j, (_, sl) in enumerate(self.window.offsets(sp)):
            gp[(slice(None), slice(None), *sl)] += cols[:, :, j]
        g = self.window.crop(gp, sp).reshape(*batch_shape, c_in, *sp)
        return [_channels_back(g, nsp, self.channels_last)]

    def params(self):
        return self.weight.size + (0 if self.bias is None else self.bias.size)

    def describe(self):
        w = self.window
        return f"k={w.kernel} s={w.strides} d={w.dilations} pads={w.pads_begin}/{w.pads_end}" + (
            f" groups={self.groups}" if self.groups > 1 else ""
        )


class AvgPool(LinearNode):
    """Average pooling; the divisor at each position counts the cells the window covers.

    ``count_include_pad`` counts explicit padding cells (ONNX semantics); cells added only to
    round the output size up (``ceil_mode``) are never counted.
    """

    op = "AvgPool"
    nonnegative = True

    def __init__(
        self,
        name,
        inputs,
        window: Window,
        count_include_pad=False,
        ceil_mode=False,
        channels_last=False,
        source=None,
    ):
        super().__init__(name, inputs, source)
        self.explicit = window
        self.count_include_pad = bool(count_include_pad)
        self.ceil_mode = bool(ceil_mode)
        self.channels_last = bool(channels_last)
        self.window = window

    def infer_shape(self, s):
        lead, c, sp = _split_layout(s, self.explicit.ndim, self.channels_last)
        w = self.explicit
        extra = ceil_mode_extra(sp, w) if self.ceil_mode else (0,) * w.ndim
        self.window = Window(
            w.kernel,
            w.strides,
            w.dilations,
            w.pads_begin,
            tuple(e + x for e, x in zip(w.pads_end, extra, strict=True)),
        )
        mask = np.pad(
            np.ones(sp),
            list(zip(w.pads_begin, w.pads_end, strict=True)),
            constant_values=1.0 if self.count_include_pad else 0.0,
        )
        mask = np.pad(mask, [(0, e) for e in extra])
        count = sum(mask[sl] for _, sl in self.window.offsets(sp))
        self.inv_count = np.where(count > 0, 1.0 / np.maximum(count, 1e-300), 0.0)
        return _join_layout(lead, c, self.window.output_spatial(sp), self.channels_last)

    def _in_spatial(self):
        return _split_layout(self.in_shapes[0], self.window.ndim, self.channels_last)[2]

    def linear(self, x):
        nsp = self.window.ndim
        xp = self.window.pad(_channels_first(x, nsp, self.channels_last))
        total = sum(xp[(..., *sl)] for _, sl in self.window.offsets(self._in_spatial()))
        return _channels_back(total * self.inv_count, nsp, self.channels_last)

    def backward(self, a):
        nsp = self.window.ndim
        sp = self._in_spatial()
        g = _channels_first(a, nsp, self.channels_last) * self.inv_count
        gp = np.zeros((*g.shape[:-nsp], *self.window.padded_spatial(sp)))
        for _, sl in self.window.offsets(sp):
            gp[(..., *sl)] += g
        return [_channels_back(self.window.crop(gp, sp), nsp, self.channels_last)]

    def describe(self):
        w = self.window
        return f"k={w.kernel} s={w.strides} pads={w.pads_begin}/{w.pads_end}"


class Affine(LinearNode):
    """Elementwise ``y = x * scale + shift`` with numpy broadcasting (BatchNorm, Mul/Add const)."""

    op = "Affine"

    def __init__(self, name, inputs, scale=None, shift=None, source=None, op=None):
        super().__init__(name, inputs, source)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)
        self.abs_scale = None if scale is None else np.abs(self.scale)
        self.bias = None if shift is None else np.asarray(shift, dtype=np.float64)
        if op:
            self.op = op

    def infer_shape(self, s):
        parts = [s] + [p.shape for p in (self.scale, self.bias) if p is not None]
        try:
            return np.broadcast_shapes(*parts)
        except ValueError:
            raise self.fail(
                f"input shape {s} does not broadcast with its constant(s) of shape(s) "
                f"{[tuple(p) for p in parts[1:]]}"
            ) from None

    def _scaled(self, x, scale):
        x = _align(x, self.in_shapes[0], len(self.out_shape))
        y = x if scale is None else x * scale
        if y.shape[1:] != self.out_shape:
            y = np.broadcast_to(y, (y.shape[0], *self.out_shape))
        return y

    def linear(self, x):
        return self._scaled(x, self.scale)

    def abs_linear(self, x):
        return self._scaled(x, self.abs_scale)

    def backward(self, a):
        g = a if self.scale is None else a * self.scale
        g = _unbroadcast(np.broadcast_to(g, a.shape), self.in_shapes[0])
        return [g.reshape(a.shape[0], *self.in_shapes[0])]

    def params(self):
        return sum(p.size for p in (self.scale, self.bias) if p is not None)


class Sum(LinearNode):
    """``y = sum_i c_i * x_i`` of variable tensors, with broadcasting (Add, Sub, Average)."""

    op = "Sum"

    def __init__(self, name, inputs, coefficients=None, source=None):
        super().__init__(name, inputs, source)
        self.coefficients = tuple(float(c) for c in (coefficients or [1.0] * len(self.inputs)))
        if len(self.coefficients) != len(self.inputs):
            raise self.fail("one coefficient per input is needed")
        self.nonnegative = all(c >= 0 for c in self.coefficients)

    def infer_shape(self, *shapes):
        try:
            return np.broadcast_shapes(*shapes)
        except ValueError:
            raise self.fail(f"input shapes {list(shapes)} do not broadcast together") from None

    def _combine(self, xs, coefs):
        n = len(self.out_shape)
        y = sum(c * _align(x, s, n) for c, x, s in zip(coefs, xs, self.in_shapes, strict=True))
        return np.broadcast_to(y, (y.shape[0], *self.out_shape))

    def linear(self, *xs):
        return self._combine(xs, self.coefficients)

    def abs_linear(self, *xs):
        return self._combine(xs, [abs(c) for c in self.coefficients])

    def backward(self, a):
        return [
            _unbroadcast(c * a, s).reshape(a.shape[0], *s)
            for c, s in zip(self.coefficients, self.in_shapes, strict=True)
        ]

    def describe(self):
        return " ".join(f"{c:+g}" for c in self.coefficients)


class Reshape(LinearNode):
    """Reinterpret the sample in C order (Flatten, Reshape, Squeeze, Unsqueeze)."""

    op = "Reshape"
    nonnegative = True

    def __init__(self, name, inputs, shape, source=None, op=None):
        super().__init__(name, inputs, source)
        self.target = tuple(int(d) for d in shape)
        if op:
            self.op = op

    def infer_shape(self, s):
        if int(np.prod(self.target)) != int(np.prod(s)):
            raise self.fail(f"cannot reshape {s} ({int(np.prod(s))} values) to {self.target}")
        return self.target

    def linear(self, x):
        return x.reshape(x.shape[0], *self.out_shape)

    def backward(self, a):
        return [a.reshape(a.shape[0], *self.in_shapes[0])]

    def describe(self):
        return f"to {self.target}"


class Transpose(LinearNode):
    """Permute the sample axes (``perm`` does not include the engines' batch axis)."""

    op = "Transpose"
    nonnegative = True

    def __init__(self, name, inputs, perm, source=None):
        super().__init__(name, inputs, source)
        self.perm = tuple(int(p) for p in perm)

    def infer_shape(self, s):
        if sorted(self.perm) != list(range(len(s))):
            raise self.fail(f"perm {self.perm} is not a permutation of the {len(s)} axes of {s}")
        return tuple(s[p] for p in self.perm)

    def linear(self, x):
        return x.transpose(0, *(p + 1 for p in self.perm))

    def backward(self, a):
        inverse = np.argsort(self.perm)
        return [a.transpose(0, *(int(p) + 1 for p in inverse))]

    def describe(self):
        return f"perm={self.perm}"


class Pad(LinearNode):
    """Constant padding of the sample axes; negative widths crop."""

    op = "Pad"
    nonnegative = True

    def __init__(self, name, inputs, pads_begin, pads_end, value=0.0, source=None):
        super().__init__(name, inputs, source)
        self.pads_begin = tuple(int(p) for p in pads_begin)
        self.pads_end = tuple(int(p) for p in pads_end)
        self.value = float(value)

    def infer_shape(self, s):
        if len(s) != len(self.pads_begin) or len(s) != len(self.pads_end):
            raise self.fail(f"{len(self.pads_begin)} pad widths for a tensor of {len(s)} axes")
        out = tuple(n + b + e for n, b, e in zip(s, self.pads_begin, self.pads_end, strict=True))
        if any(d <= 0 for d in out):
            raise self.fail(
                f"padding {self.pads_begin}/{self.pads_end} leaves an empty axis in {s}"
            )
        self._crop = (slice(None),) + tuple(
            slice(max(-b, 0), n - max(-e, 0))
            for n, b, e in zip(s, self.pads_begin, self.pads_end, strict=True)
        )
        self._widths = [(0, 0)] + [
            (max(b, 0), max(e, 0)) for b, e in zip(self.pads_begin, self.pads_end, strict=True)
        ]
        self._inner = (slice(None),) + tuple(
            slice(w0, w0 + sl.stop - sl.start)
            for (w0, _), sl in zip(self._widths[1:], self._crop[1:], strict=True)
        )
        self._uncrop = [(0, 0)] + [
            (max(-b, 0), max(-e, 0)) for b, e in zip(self.pads_begin, self.pads_end, strict=True)
        ]
        if self.value != 0.0:
            self.bias = np.pad(
                np.zeros(s)[self._crop[1:]], self._widths[1:], constant_values=self.value
            )
        return out

    def linear(self, x):
        return np.pad(x[self._crop], self._widths)

    def backward(self, a):
        return [np.pad(a[self._inner], self._uncrop)]

    def describe(self):
        return f"pads={self.pads_begin}/{self.pads_end} value={self.value:g}"


class Concat(LinearNode):
    """Concatenate variable tensors along a sample axis."""

    op = "Concat"
    nonnegative = True

    def __init__(self, name, inputs, axis, source=None):
        super().__init__(name, inputs, source)
        self.axis = int(axis)

    def infer_shape(self, *shapes):
        nd = len(shapes[0])
        axis = self.axis + nd if self.axis < 0 else self.axis
        if not 0 <= axis < nd:
            raise self.fail(f"axis {self.axis} out of range for shape {shapes[0]}")
        self.axis = axis
        for s in shapes:
            if len(s) != nd or any(
                a != b for i, (a, b) in enumerate(zip(s, shapes[0], strict=True)) if i != axis
            ):
                raise self.fail(f"inputs of shapes {list(shapes)} differ outside axis {axis}")
        self._splits = np.cumsum([s[axis] for s in shapes])[:-1]
        return tuple(
            sum(s[axis] for s in shapes) if i == axis else d for i, d in enumerate(shapes[0])
        )

    def linear(self, *xs):
        return np.concatenate(xs, axis=self.axis + 1)

    def backward(self, a):
        return np.split(a, self._splits, axis=self.axis + 1)

    def describe(self):
        return f"axis={self.axis}"
