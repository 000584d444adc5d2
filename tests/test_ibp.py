"""IBP and the bounds() entry point: hand-computed ranges, soundness on random networks of every
node kind (hypothesis), point boxes, batching."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from random_graphs import ACTIVATIONS, random_box, random_cnn, random_mlp

import nnrange
from nnrange import Box
from nnrange.engines import ibp, sampling
from nnrange.graph import Dense, Graph, Relu


def _graph(layers, n_in):
    nodes, x = [], "x"
    for k, w in enumerate(layers):
        nodes.append(Dense(f"d{k}", [x], np.asarray(w, dtype=float)))
        x = f"d{k}"
    return Graph("x", (n_in,), nodes, x)


@pytest.mark.parametrize(
    "layers,expected",
    [
        ([[[1.0], [1.0]]], (0.0, 2.0)),
        ([[[-0.5], [1.0]]], (-0.5, 1.0)),
        ([np.ones((2, 2)), [[1.0], [1.0]]], (0.0, 4.0)),
    ],
)
def test_foundation_examples_exact(layers, expected):
    r = nnrange.bounds(_graph(layers, 2), 0, 1, method="ibp")
    assert (r.lower[0], r.upper[0]) == expected
    assert (r.inner_lower[0], r.inner_upper[0]) == expected
    assert r.exact.all()


def test_relu_interval_hand_computed():
    # y = relu(x0 - x1) + relu(x1) on [0,1]^2: IBP gives [0, 1] + [0, 1] = [0, 2]; true max 1.
    nodes = [
        Dense("h", ["x"], np.array([[1.0, 0.0], [-1.0, 1.0]])),
        Relu("r", ["h"]),
        Dense("y", ["r"], np.array([[1.0], [1.0]])),
    ]
    g = Graph("x", (2,), nodes, "y")
    r = nnrange.bounds(g, 0, 1, method="ibp")
    assert r.lower[0] == 0 and r.upper[0] == 2.0
    assert r.inner_upper[0] == pytest.approx(1.0) and not r.exact[0]


def _assert_sound(graph, lo, hi, n=400, seed=0):
    box = Box.from_bounds(lo, hi, graph.input_shape)
    res = ibp.run(graph, box)
    pts = sampling.candidate_points(box, n, 64, np.random.default_rng(seed))
    vals = sampling.evaluate(graph, pts)
    lower, upper = res.lower, res.upper
    tol = 1e-9 * (1 + np.abs(vals))
    assert np.all(vals >= lower - tol), "a sample fell below the IBP lower bound"
    assert np.all(vals <= upper + tol), "a sample rose above the IBP upper bound"
    assert np.all(lower <= upper)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    act=st.sampled_from(sorted(ACTIVATIONS)),
    width=st.floats(0.01, 3.0),
    fixed=st.sampled_from([0.0, 0.5]),
)
def test_ibp_sound_on_random_mlps(seed, act, width, fixed):
    rng = np.random.default_rng(seed)
    g = random_mlp(rng, activations=[act])
    lo, hi = random_box(rng, g, width, fixed)
    _assert_sound(g, lo, hi, seed=seed)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31), act=st.sampled_from(sorted(ACTIVATIONS)), width=st.floats(0.01, 2.0)
)
def test_ibp_sound_on_random_cnns(seed, act, width):
    rng = np.random.default_rng(seed)
    g = random_cnn(rng, activations=[act])
    lo, hi = random_box(rng, g, width)
    _assert_sound(g, lo, hi, seed=seed)


@pytest.mark.parametrize("seed", range(10))
def test_point_box_collapses_to_forward_value(seed):
    rng = np.random.default_rng(seed)
    g = random_mlp(rng) if seed % 2 else random_cnn(rng)
    x = rng.normal(size=g.input_shape)
    r = nnrange.bounds(g, x, x, method="ibp", inner={"samples": 0, "corners": 0, "steps": 0})
    y = g.forward(x).reshape(-1)
    np.testing.assert_allclose(r.lower, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.upper, y, rtol=1e-12, atol=1e-12)
    assert r.exact.all()


def test_batched_equals_one_by_one(rng):
    g = random_cnn(rng)
    boxes = [random_box(rng, g, 0.5) for _ in range(4)]
    lo = np.stack([b[0] for b in boxes])
    hi = np.stack([b[1] for b in boxes])
    r = nnrange.bounds(g, lo, hi, method="ibp", inner={"samples": 50})
    assert r.batched and r.lower.shape == (4, g.output_size)
    for k in range(4):
        single = nnrange.bounds(g, lo[k], hi[k], method="ibp", inner=False)
        np.testing.assert_allclose(r.lower[k], single.lower, rtol=1e-12)
        np.testing.assert_allclose(r.upper[k], single.upper, rtol=1e-12)
        assert r[k].lower.shape == (g.output_size,)


def test_float32_and_float64_boxes_agree(rng):
    g = random_mlp(rng)
    lo, hi = random_box(rng, g, 0.5)
    lo32, hi32 = lo.astype(np.float32), hi.astype(np.float32)
    a = nnrange.bounds(g, lo32, hi32, method="ibp", inner=False)
    b = nnrange.bounds(
        g, lo32.astype(np.float64), hi32.astype(np.float64), method="ibp", inner=False
    )
    np.testing.assert_array_equal(a.lower, b.lower)


def test_witnesses_reproduce_inner_bounds(rng):
    g = random_mlp(rng)
    lo, hi = random_box(rng, g, 1.0)
    r = nnrange.bounds(g, lo, hi, inner={"samples": 200})
    for j in range(g.output_size):
        assert g.forward(r.witness_upper[j]).reshape(-1)[j] == pytest.approx(r.inner_upper[j])
        assert g.forward(r.witness_lower[j]).reshape(-1)[j] == pytest.approx(r.inner_lower[j])
        assert np.all(r.witness_upper[j] >= lo - 1e-12) and np.all(r.witness_upper[j] <= hi + 1e-12)


def test_result_to_dict_and_repr():
    r = nnrange.bounds(_graph([[[1.0], [1.0]]], 2), 0, 1, method="ibp")
    d = r.to_dict()
    assert d["lower"] == [0.0] and d["upper"] == [2.0] and d["exact"] == [True]
    assert d["method"] == "ibp" and "ibp" in d["timings"]
    text = repr(r)
    assert "inner lower" in text and "yes" in text


def test_unknown_method_is_a_clear_error():
    with pytest.raises(nnrange.EngineError, match="unknown method 'magic'.*ibp"):
        nnrange.bounds(_graph([[[1.0], [1.0]]], 2), 0, 1, method="magic")


def test_self_check_catches_a_shrunk_bound(monkeypatch):
    """A deliberately broken engine (upper bound shrunk) must be caught, never returned."""
    real = ibp.run

    def broken(graph, box, **kw):
        res = real(graph, box, **kw)
        res._upper = res._upper - 0.5
        return res

    from nnrange.engines import ENGINES, Engine

    monkeypatch.setitem(ENGINES, "broken", Engine("broken", broken, True, False, "test only"))
    g = _graph([[[1.0], [1.0]]], 2)
    with pytest.raises(nnrange.UnsoundBoundError, match="output 0.*proven"):
        nnrange.bounds(g, 0, 1, method="broken", strict=True)
    with pytest.warns(RuntimeWarning, match="soundness self-check failed"):
        nnrange.bounds(g, 0, 1, method="broken", strict=False)
