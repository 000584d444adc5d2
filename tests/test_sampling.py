"""Inner bounds: gradients from the layer graph match finite differences, linear regions
reproduce the network on their polyhedron, and attacks reach hand-computed optima."""

from __future__ import annotations

import numpy as np
import pytest
from random_graphs import random_box, random_cnn, random_mlp

import nnrange
from nnrange import Box
from nnrange.engines import regions, sampling
from nnrange.errors import EngineError
from nnrange.graph import Dense, Graph, Relu


def _fd_grad(graph, x, cot, h=1e-6):
    flat = x.reshape(-1)
    grad = np.zeros_like(flat)
    for i in range(flat.size):
        e = np.zeros_like(flat)
        e[i] = h
        up = graph.forward((flat + e).reshape(1, *graph.input_shape))
        down = graph.forward((flat - e).reshape(1, *graph.input_shape))
        grad[i] = np.sum(cot * (up - down)) / (2 * h)
    return grad.reshape(x.shape)


@pytest.mark.parametrize("seed", range(12))
def test_value_and_grad_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    graph = random_mlp(rng, softmax=seed % 3 == 0) if seed % 2 else random_cnn(rng)
    x = rng.normal(size=(3, *graph.input_shape))
    cot = rng.normal(size=(3, *graph.output_shape))
    y, grad = graph.value_and_grad(x, cot)
    np.testing.assert_allclose(y, graph.forward(x), rtol=1e-12, atol=1e-12)
    for k in range(3):
        fd = _fd_grad(graph, x[k], cot[k])
        np.testing.assert_allclose(grad[k], fd, rtol=1e-4, atol=1e-6)


def _pl_graph(rng, family):
    acts = ["relu", "leaky_relu", "clip"]
    return (
        random_mlp(rng, activations=acts, softmax=False)
        if family == "mlp"
        else (random_cnn(rng, activations=acts))
    )


@pytest.mark.parametrize("seed", range(10))
def test_linear_region_reproduces_network_on_its_polyhedron(seed):
    rng = np.random.default_rng(seed)
    graph = _pl_graph(rng, "mlp" if seed % 2 else "cnn")
    if not regions.piecewise_linear(graph):  # random_cnn may add average pooling only
        pytest.skip("graph drew a non piecewise-linear node")
    x = rng.normal(size=graph.input_shape)
    region = regions.linear_region(graph, x)
    flat = x.reshape(-1)
    assert np.all(region.G @ flat <= region.h + 1e-9)
    np.testing.assert_allclose(
        region.A @ flat + region.b, graph.forward(x[None]).reshape(-1), atol=1e-9
    )
    pts = flat + rng.normal(size=(400, flat.size)) * 10.0 ** rng.uniform(-4, 0, size=(400, 1))
    # PL networks are continuous, so points on a facet may count as inside
    inside = np.all(pts @ region.G.T <= region.h + 1e-12, axis=1)
    assert inside.any()
    got = pts[inside] @ region.A.T + region.b
    want = graph.forward(pts[inside].reshape(-1, *graph.input_shape)).reshape(len(got), -1)
    np.testing.assert_allclose(got, want, atol=1e-8)


def _chain(nodes):
    """A graph of two inputs ``x`` from nodes in order, bound to their shapes; output: the last."""
    shapes = {"x": (2,)}
    for n in nodes:
        n.bind(tuple(shapes[i] for i in n.inputs))
        shapes[n.name] = n.out_shape
    return Graph("x", (2,), nodes, nodes[-1].name)


def _abs_net():
    """y = -|x0 - 0.3| + 0 * x1 written with two ReLUs: maximum 0 at x0 = 0.3, minimum -1.3."""
    w1 = np.array([[1.0, -1.0], [0.0, 0.0]])
    nodes = [
        Dense("d1", ["x"], w1, np.array([-0.3, 0.3])),
        Relu("r", ["d1"]),
        Dense("d2", ["r"], np.array([[-1.0], [-1.0]])),
    ]
    return _chain(nodes)


def test_attack_reaches_interior_maximum_without_polish():
    g = _abs_net()
    r = sampling.run(
        g, Box.from_bounds([-1, -1], [1, 1], (2,)), samples=0, corners=4, polish=False, seed=1
    )
    assert r.inner_upper[0] > -1e-3  # corners alone give -0.7
    assert r.inner_lower[0] == pytest.approx(-1.3)


def test_polish_lands_on_the_exact_optimum():
    g = _abs_net()
    lo, hi = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    x = regions.polish(g, lo, hi, np.array([0.9, 0.0]), 0, 1.0)
    assert g.forward(x[None])[0, 0] == pytest.approx(0.0, abs=1e-9)


def _spike_net(a=0.37, b=0.81):
    """y = relu(1 - 100 (|x0 - a| + |x1 - b|)) + 0.001 x0 on [0, 1]^2: a peak of height
    1 + 0.001 a on a diamond of radius 0.01, below 0.001 everywhere else."""
    w1 = np.array([[1.0, -1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, -1.0, 0.0]])
    w2 = np.zeros((5, 2))
    w2[:4, 0], w2[4, 1] = -100.0, 1.0
    nodes = [
        Dense("d1", ["x"], w1, np.array([-a, a, -b, b, 0.0])),
        Relu("r1", ["d1"]),
        Dense("d2", ["r1"], w2, np.array([1.0, 0.0])),
        Relu("r2", ["d2"]),
        Dense("y", ["r2"], np.array([[1.0], [0.001]]), np.zeros(1)),
    ]
    return _chain(nodes)


def test_guided_search_finds_a_peak_local_search_misses():
    """Hand-computed: the maximum is 1.00037 at (0.37, 0.81). From the centre alone, gradient
    steps and LP polish stay on the flat part (0.001); the bound-guided search finds the peak."""
    g = _spike_net()
    box = Box.from_bounds([0, 0], [1, 1], (2,))
    opts = dict(samples=0, faces=0, corners=0, steps=0, seed=0)
    local = sampling.run(g, box, search=0.0, **opts)
    guided = sampling.run(g, box, search=2.0, **opts)
    assert local.inner_upper[0] <= 0.0011
    assert guided.inner_upper[0] == pytest.approx(1.00037, abs=1e-9)
    np.testing.assert_allclose(guided.witness_upper.reshape(-1, 2)[0], [0.37, 0.81], atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_witnesses_are_in_the_box_and_give_the_reported_values(seed):
    rng = np.random.default_rng(seed)
    graph = random_mlp(rng) if seed % 2 else random_cnn(rng)
    lo, hi = random_box(rng, graph, fixed_fraction=0.3)
    r = sampling.run(
        graph,
        Box.from_bounds(lo, hi, graph.input_shape),
        samples=100,
        corners=16,
        starts=2,
        steps=10,
        seed=seed,
    )
    for wit, inner in ((r.witness_lower, r.inner_lower), (r.witness_upper, r.inner_upper)):
        assert np.all(wit >= lo) and np.all(wit <= hi)
        values = graph.forward(wit).reshape(graph.output_size, -1)
        np.testing.assert_allclose(np.diag(values), inner, rtol=1e-12, atol=1e-12)


def test_attack_beats_its_own_samples(rng):
    graph = random_mlp(rng, activations=["tanh", "relu"], n_in=5)
    box = Box.from_bounds(-np.ones(5), np.ones(5), (5,))
    only = sampling.run(graph, box, samples=200, corners=0, steps=0, polish=False, seed=3)
    attacked = sampling.run(graph, box, samples=200, corners=0, steps=30, polish=False, seed=3)
    assert np.all(attacked.inner_upper >= only.inner_upper)
    assert np.all(attacked.inner_lower <= only.inner_lower)


def test_inner_presets_and_errors():
    assert sampling.preset(False) is None
    assert sampling.preset(True) == sampling.PRESETS["fast"]
    assert sampling.preset({"steps": 0})["steps"] == 0
    with pytest.raises(EngineError, match="preset 'slowest'"):
        sampling.preset("slowest")
    with pytest.raises(EngineError, match="samplez"):
        sampling.preset({"samplez": 3})
    r = nnrange.bounds(_abs_net(), [-1, -1], [1, 1], inner=False)
    assert np.isinf(r.inner_upper).all() and r.witness_upper is None
