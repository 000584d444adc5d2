"""Elementwise activation node kinds: value, derivative and interval image.

Every activation here is nondecreasing, so its interval image is ``(f(lo), f(hi))``; the linear
relaxations used by the symbolic engines live in ``nnrange.relax``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .core import ActivationNode


class Relu(ActivationNode):
    op = "Relu"
    piecewise_linear = True

    def value(self, x):
        return np.maximum(x, 0.0)

    def derivative(self, x):
        return (x > 0).astype(np.float64)


class LeakyRelu(ActivationNode):
    """``x`` for x >= 0, ``alpha * x`` otherwise; alpha >= 0 keeps it monotone."""

    op = "LeakyRelu"
    piecewise_linear = True

    def __init__(self, name, inputs, alpha=0.01, source=None):
        super().__init__(name, inputs, source)
        self.alpha = float(alpha)
        if not self.alpha >= 0:
            raise self.fail(f"negative slope {self.alpha:.6g} is not supported (must be >= 0)")

    def value(self, x):
        return np.where(x >= 0, x, self.alpha * x)

    def derivative(self, x):
        return np.where(x >= 0, 1.0, self.alpha)

    def describe(self):
        return f"alpha={self.alpha:g}"


class Sigmoid(ActivationNode):
    op = "Sigmoid"

    def value(self, x):
        return expit(x)

    def derivative(self, x):
        s = expit(x)
        return s * (1.0 - s)


class Tanh(ActivationNode):
    op = "Tanh"

    def value(self, x):
        return np.tanh(x)

    def derivative(self, x):
        return 1.0 - np.tanh(x) ** 2


class Softplus(ActivationNode):
    op = "Softplus"

    def value(self, x):
        return np.logaddexp(0.0, x)

    def derivative(self, x):
        return expit(x)


class Elu(ActivationNode):
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise; alpha >= 0 keeps it monotone."""

    op = "Elu"

    def __init__(self, name, inputs, alpha=1.0, source=None):
        super().__init__(name, inputs, source)
        self.alpha = float(alpha)
        if not self.alpha >= 0:
            raise self.fail(f"negative alpha={alpha} is not supported (must be >= 0)")

    def value(self, x):
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0.0)))

    def derivative(self, x):
        return np.where(x > 0, 1.0, self.alpha * np.exp(np.minimum(x, 0.0)))

    def describe(self):
        return f"alpha={self.alpha:g}"


class Clip(ActivationNode):
    """``min(max(x, low), high)``; either end may be infinite (ReLU6, hard sigmoid's clamp)."""

    op = "Clip"
    piecewise_linear = True

    def __init__(self, name, inputs, low=-np.inf, high=np.inf, source=None):
        super().__init__(name, inputs, source)
        self.low, self.high = float(low), float(high)
        if not self.low <= self.high:
            raise self.fail(f"min {low} is greater than max {high}")

    def value(self, x):
        return np.clip(x, self.low, self.high)

    def derivative(self, x):
        return ((x > self.low) & (x < self.high)).astype(np.float64)

    def describe(self):
        return f"[{self.low:g}, {self.high:g}]"
