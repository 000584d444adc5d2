"""Every linear relaxation is sound on its whole interval (dense grids, hypothesis), exact where
the function is linear on the interval, and collapses on a point interval."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnrange.graph import Clip, Elu, LeakyRelu, Relu, Sigmoid, Softplus, Tanh
from nnrange.relax import activation_relaxation, alpha_range

NODES = {
    "relu": Relu("n", ["x"]),
    "leaky_relu": LeakyRelu("n", ["x"], 0.1),
    "leaky_relu_steep": LeakyRelu("n", ["x"], 2.5),
    "clip": Clip("n", ["x"], -0.5, 0.7),
    "relu6": Clip("n", ["x"], 0.0, 6.0),
    "clip_low_only": Clip("n", ["x"], 0.0, np.inf),
    "sigmoid": Sigmoid("n", ["x"]),
    "tanh": Tanh("n", ["x"]),
    "softplus": Softplus("n", ["x"]),
    "elu": Elu("n", ["x"], 1.0),
    "elu_small": Elu("n", ["x"], 0.3),
    "selu_like": Elu("n", ["x"], 1.6732632423543772),
}


def _check(node, l, u, lower_slope=None, n=401):
    ls, lb, us, ub = activation_relaxation(node, l, u, lower_slope)
    t = np.linspace(0.0, 1.0, n)
    z = l[..., None] + t * (u - l)[..., None]
    f = node.value(z)
    lower = ls[..., None] * z + lb[..., None]
    upper = us[..., None] * z + ub[..., None]
    tol = 1e-10 * (1 + np.abs(f))
    assert np.all(lower <= f + tol), f"lower bound cuts f: {np.max(lower - f):.3g}"
    assert np.all(upper >= f - tol), f"upper bound cuts f: {np.max(f - upper):.3g}"
    return ls, lb, us, ub


@pytest.mark.parametrize("name", sorted(NODES))
def test_sound_on_many_intervals(name):
    rng = np.random.default_rng(0)
    centers = np.concatenate([rng.normal(size=400) * 3, [0.0, -0.5, 0.7, 6.0, 50.0, -50.0]])
    widths = np.concatenate([rng.exponential(2.0, size=400), [1e-12, 0.0, 1e-6, 20.0, 1.0, 1.0]])
    _check(NODES[name], centers - widths / 2, centers + widths / 2)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(NODES)), a=st.floats(-30, 30), b=st.floats(-30, 30))
def test_sound_hypothesis(name, a, b):
    l, u = np.array([min(a, b)]), np.array([max(a, b)])
    _check(NODES[name], l, u)


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_any_alpha_in_range_is_sound(name):
    node = NODES[name]
    lo, hi = alpha_range(node)
    rng = np.random.default_rng(1)
    l, u = -rng.exponential(size=200), rng.exponential(size=200)
    for a in (lo, hi, (lo + hi) / 2, rng.uniform(lo, hi, size=200)):
        _check(node, l, u, lower_slope=np.broadcast_to(a, l.shape))
        # the slope is the lower line's: the upper line (the chord) does not move
        ls, _, us, ub = activation_relaxation(node, l, u, lower_slope=np.broadcast_to(a, l.shape))
        np.testing.assert_allclose(ls, a)
        np.testing.assert_allclose((us, ub), activation_relaxation(node, l, u)[2:])


def test_concave_leaky_relu_has_no_lower_slope_to_optimise():
    # alpha > 1: the line through the origin is the upper bound and the lower one is the chord,
    # so engines that move lower slopes (alpha-CROWN, CROWN's second slope) must leave it alone;
    # replacing the chord's slope while keeping its intercept is unsound (it was, until a
    # random concave network in the contract suite showed it)
    node = NODES["leaky_relu_steep"]
    assert alpha_range(node) is None
    rng = np.random.default_rng(1)
    l, u = -rng.exponential(size=200), rng.exponential(size=200)
    for a in (1.0, node.alpha, rng.uniform(1.0, node.alpha, size=200)):
        _check(node, l, u, lower_slope=np.broadcast_to(a, l.shape))  # moves the upper line


def test_relu_textbook_relaxation_hand_computed():
    l, u = np.array([-1.0, -3.0, 1.0, -2.0]), np.array([3.0, 1.0, 2.0, -1.0])
    ls, lb, us, ub = activation_relaxation(Relu("n", ["x"]), l, u)
    # unstable: chord u/(u-l), intercept -lu/(u-l); lower slope 1 iff u > -l
    np.testing.assert_allclose(us, [0.75, 0.25, 1.0, 0.0])
    np.testing.assert_allclose(ub, [0.75, 0.75, 0.0, 0.0])
    np.testing.assert_allclose(ls, [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(lb, 0.0)


def test_relu_fast_path_equals_leaky_relu_with_zero_slope():
    """The ReLU relaxation is written separately for speed; it must be the same lines as the
    general max(z, alpha z) one at alpha = 0, stable, unstable and degenerate intervals alike."""
    from nnrange.relax.activations import leaky_relu, relu

    rng = np.random.default_rng(3)
    l = np.concatenate([rng.normal(size=300), [0.0, 0.0, -1.0, -2.0, 1.0, -1.0]])
    u = np.concatenate([l[:300] + rng.exponential(size=300), [0.0, 1.0, 0.0, 2.0, 1.0, 1.0]])
    for slope in (None, rng.uniform(-0.5, 1.5, size=l.size)):
        for a, b in zip(relu(l, u, slope), leaky_relu(l, u, 0.0, slope), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "clip", "relu6"])
def test_piecewise_linear_exact_on_pieces(name):
    node = NODES[name]
    l = np.array([-5.0, 0.1, 0.75, 7.0])
    u = np.array([-4.0, 0.6, 0.9, 8.0])
    ls, lb, us, ub = _check(node, l, u)
    inside = np.ones(4, dtype=bool)
    np.testing.assert_allclose(ls[inside], us[inside])
    np.testing.assert_allclose(lb[inside], ub[inside])


@pytest.mark.parametrize("name", sorted(NODES))
def test_point_interval_collapses(name):
    node = NODES[name]
    z = np.array([-2.0, -0.3, 0.0, 0.4, 3.0])
    ls, lb, us, ub = activation_relaxation(node, z, z)
    f = node.value(z)
    np.testing.assert_allclose(ls * z + lb, f, atol=1e-9)
    np.testing.assert_allclose(us * z + ub, f, atol=1e-9)


def test_sigmoid_crossing_uses_tangent_through_endpoint():
    # tangent through (l, f(l)) touches the curve at d in [0, u]: the upper line meets f at l
    node = NODES["sigmoid"]
    l, u = np.array([-4.0]), np.array([6.0])
    ls, lb, us, ub = activation_relaxation(node, l, u)
    assert abs((us * l + ub) - node.value(l))[0] < 1e-6
    assert abs((ls * u + lb) - node.value(u))[0] < 1e-6
