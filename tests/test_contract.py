"""The engine contract, in the style of scikit-learn's estimator checks: every registered engine
on every model of the layer zoo (ONNX, Keras, random graphs of each activation) must

- contain every sampled output in its outer bounds, with lower <= upper;
- report inner values that its witnesses (inside the box) actually give;
- collapse on a point box to the forward value, and handle lo == hi on some dimensions;
- give the same bounds for a batch of boxes as one by one, and for float32 as float64 input.

A new engine is covered by registering it in ``nnrange.engines.ENGINES``; a new layer by adding
it to a zoo. A deliberately broken engine must fail these checks.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from conftest import close
from keras_zoo import NAMES as KERAS_NAMES
from onnx_zoo import CASES
from random_graphs import ACTIVATIONS, random_box, random_cnn, random_mlp

import nnrange
from nnrange import Box
from nnrange.engines import ENGINES, Engine, crown, sampling
from nnrange.errors import UnsoundBoundError
from nnrange.result import BoundsResult

#: Cheaper budgets for the contract runs; engines not listed run with their defaults.
OPTIONS = {
    "alpha-crown": {"iterations": 5},
    "milp": {"outputs": [0]},  # real MILPs on the conv models: one output keeps it quick
    # a piece budget, not a time limit, keeps batched and one-by-one runs identical
    "bab": {
        "outputs": [0],
        "max_pieces": 16,
        "batch": 8,
        "attack": {"samples": 20, "corners": 4, "starts": 1, "steps": 3},
    },
    "sample": {"samples": 100, "corners": 16, "starts": 2, "steps": 8, "polish": False},
}


def _run(name, graph, lo, hi) -> BoundsResult:
    return ENGINES[name].run(
        graph, Box.from_bounds(lo, hi, graph.input_shape), **OPTIONS.get(name, {})
    )


def _slack(v):
    return 1e-9 * (1 + np.abs(v))


def check_engine(name: str, graph, seed: int = 0) -> None:
    """Assert the engine contract for one engine on one graph (raises AssertionError)."""
    engine = ENGINES[name]
    if engine.supports is not None and (reason := engine.supports(graph)):
        pytest.skip(f"{name}: {reason}")
    rng = np.random.default_rng(seed)
    lo, hi = random_box(rng, graph, width=0.5, fixed_fraction=0.25)
    r = _run(name, graph, lo, hi)
    box = Box.from_bounds(lo, hi, graph.input_shape)
    values = sampling.evaluate(graph, sampling.candidate_points(box, 200, 32, rng))[0]
    if engine.gives_outer:
        assert np.all(r.lower <= r.upper), f"{name}: lower > upper"
        below = r.lower - values
        above = values - r.upper
        assert np.all(below <= _slack(r.lower)), f"{name}: sample below lower by {below.max():.3g}"
        assert np.all(above <= _slack(r.upper)), f"{name}: sample above upper by {above.max():.3g}"
    if engine.gives_inner:
        assert np.all(r.inner_lower <= r.inner_upper)
        for wit, inner in ((r.witness_lower, r.inner_lower), (r.witness_upper, r.inner_upper)):
            assert np.all(wit >= lo) and np.all(wit <= hi), f"{name}: witness outside the box"
            got = np.diag(graph.forward(wit).reshape(graph.output_size, -1))
            np.testing.assert_allclose(got, inner, rtol=1e-12, atol=1e-12)
    r.check(strict=True)

    # point box: the range is the forward value
    x = rng.normal(size=graph.input_shape)
    y = graph.forward(x[None]).reshape(-1)
    p = _run(name, graph, x, x)
    tol = 1e-7 * (1 + np.abs(y))
    if engine.gives_outer:
        assert np.all(np.abs(p.lower - y) <= tol) and np.all(np.abs(p.upper - y) <= tol), (
            f"{name}: point box bounds [{p.lower}, {p.upper}] != forward {y}"
        )
    if engine.gives_inner:
        assert np.all(np.abs(p.inner_lower - y) <= tol) and np.all(np.abs(p.inner_upper - y) <= tol)

    # batched == one by one, float32 == float64 of the same numbers
    los, his = zip(*(random_box(rng, graph, width=0.3) for _ in range(3)), strict=True)
    los32, his32 = np.array(los, dtype=np.float32), np.array(his, dtype=np.float32)
    batch = _run(name, graph, los32, his32)
    assert batch.batched and batch.n_boxes == 3
    for k in range(3):
        single = _run(name, graph, los32[k].astype(np.float64), his32[k].astype(np.float64))
        if engine.gives_outer:
            for a, b in ((batch[k].lower, single.lower), (batch[k].upper, single.upper)):
                np.testing.assert_allclose(
                    a, b, rtol=1e-9, atol=1e-9, err_msg=f"{name}: batched != one by one"
                )


def _random_graphs():
    cases = {}
    for k, act in enumerate(sorted(ACTIVATIONS)):
        cases[f"mlp_{act}"] = lambda a=act, s=k: random_mlp(np.random.default_rng(s), [a])
        cases[f"cnn_{act}"] = lambda a=act, s=k: random_cnn(
            np.random.default_rng(s), activations=[a]
        )
    cases["mlp_residual_concat_softmax"] = lambda: random_mlp(
        np.random.default_rng(99), residual=True, concat=True, softmax=True
    )
    # ReLU-family slopes behind a softmax: alpha-CROWN's relaxed forward pass must give the
    # softmax's output a value although its input is never reached
    cases["mlp_hidden_softmax_relu"] = lambda: random_mlp(
        np.random.default_rng(1), ["relu", "leaky_relu"], hidden_softmax=True
    )
    return cases


RANDOM = _random_graphs()


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_contract_onnx_zoo(engine, case):
    check_engine(engine, nnrange.load(CASES[case]()), seed=len(case))


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("case", sorted(RANDOM))
def test_contract_random_graphs(engine, case):
    check_engine(engine, RANDOM[case](), seed=len(case))


@pytest.mark.keras
@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("case", KERAS_NAMES)
def test_contract_keras_zoo(engine, case, keras_zoo):
    check_engine(engine, nnrange.load(keras_zoo[case]), seed=len(case))


def _shrunk_crown(fraction):
    def run(graph, box, **options):
        r = crown.run(graph, box, **options)
        r._upper = r._upper - fraction * (r._upper - r._lower) - 1e-3
        return r

    return run


def test_broken_engine_is_caught(monkeypatch):
    slightly = Engine("broken", _shrunk_crown(0.01), True, False, "upper bounds shrunk by 1%")
    monkeypatch.setitem(ENGINES, "broken", slightly)
    graph = RANDOM["mlp_relu"]()
    with pytest.raises(AssertionError, match="above upper|point box"):
        check_engine("broken", graph)
    # the inner bounds attached to every result catch a clearly broken engine at run time
    badly = Engine("broken", _shrunk_crown(0.5), True, False, "upper bounds halved")
    monkeypatch.setitem(ENGINES, "broken", badly)
    lo, hi = random_box(np.random.default_rng(0), graph, width=0.5)
    with pytest.raises(UnsoundBoundError, match="broken"):
        nnrange.bounds(graph, lo, hi, method="broken", strict=True)


# ---------------------------------------------------------------- witnesses vs the real runtime
@pytest.mark.parametrize("case", sorted(CASES))
def test_witnesses_reproduce_in_onnx_runtime(case):
    model = CASES[case]()
    graph = nnrange.load(model)
    lo, hi = random_box(np.random.default_rng(5), graph, width=0.5)
    r = nnrange.bounds(graph, lo, hi, method="ibp", inner=OPTIONS["sample"])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for wit, inner in ((r.witness_lower, r.inner_lower), (r.witness_upper, r.inner_upper)):
        for j in range(graph.output_size):
            y = sess.run(None, {"x": wit[j].astype(np.float32)})[0].reshape(-1)
            assert close(y[j], inner[j], 1e-4), (case, j, y[j], inner[j])


@pytest.mark.keras
@pytest.mark.parametrize("case", KERAS_NAMES)
def test_witnesses_reproduce_in_keras(case, keras_zoo):
    model = keras_zoo[case]
    graph = nnrange.load(model)
    lo, hi = random_box(np.random.default_rng(6), graph, width=0.5)
    r = nnrange.bounds(model, lo, hi, method="ibp", inner=OPTIONS["sample"])
    for wit, inner in ((r.witness_lower, r.inner_lower), (r.witness_upper, r.inner_upper)):
        y = np.asarray(model(wit.astype(np.float32))).reshape(graph.output_size, -1)
        assert close(np.diag(y), inner, 1e-4), case
