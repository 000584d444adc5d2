"""``bounds()``: method="auto" escalates only when asked and says which engines ran."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MODELS
from random_graphs import random_mlp

import nnrange
from nnrange.engines import ENGINES
from nnrange.errors import EngineError


def test_auto_stops_at_crown_when_the_range_is_closed():
    # y = x0 + x1 on [0, 1]^2: CROWN is exact on a linear model and the corners attain it
    r = nnrange.bounds(MODELS / "example_sum.onnx", 0, 1, exact=True)
    assert r.engines == ("crown", "sample")
    assert r.exact.all() and r.lower[0] == pytest.approx(0) and r.upper[0] == pytest.approx(2)


def test_auto_escalates_while_a_tolerance_is_not_met():
    g = random_mlp(np.random.default_rng(7), activations=["relu"], n_in=4)
    plain = nnrange.bounds(g, -1, 1)
    assert plain.engines == ("crown", "sample")
    assert not plain.exact.all()
    tight = nnrange.bounds(g, -1, 1, tolerance=1e-5, time_limit=20)
    assert tight.engines == ("crown", "sample", "alpha-crown", "bab")
    assert np.all(tight.width <= plain.width + 1e-12)
    assert tight.atol == 1e-5 and tight.exact.all()


def test_unknown_method_lists_the_choices():
    with pytest.raises(EngineError) as err:
        nnrange.bounds(MODELS / "example_sum.onnx", 0, 1, method="magic")
    assert all(name in str(err.value) for name in ["auto", *ENGINES])


@pytest.mark.parametrize(
    "option, message",
    [
        ({"tolerance": -1.0}, "tolerance must be a number >= 0"),
        ({"atol": float("nan")}, "atol must be a number >= 0"),
        ({"time_limit": 0.0}, "time_limit must be a positive number of seconds"),
        ({"seed": -1}, "seed must be a whole number >= 0"),
        ({"seed": "x"}, "seed must be a whole number >= 0"),
    ],
)
def test_bad_options_are_refused_before_any_work(option, message):
    with pytest.raises(EngineError, match=message):
        nnrange.bounds(MODELS / "example_sum.onnx", 0, 1, **option)


def test_auto_reports_timeout_when_time_stops_the_escalation():
    g = random_mlp(np.random.default_rng(7), activations=["relu"], n_in=4)
    r = nnrange.bounds(g, -1, 1, exact=True, time_limit=1e-6)
    assert not r.exact.all()  # the gap is open (CROWN alone, as the test above shows) ...
    assert r.status is nnrange.Status.TIMEOUT  # ... because the time ran out, and it says so


def test_overflow_gives_infinite_bounds_not_nan():
    # y = 1e300 * relu(1e300 * x - 1e300 * x'): float64 overflows inside every engine's
    # arithmetic; the sound answer is "no information", never NaN
    from onnx import TensorProto, helper, numpy_helper

    w1 = numpy_helper.from_array(np.array([[1e300], [-1e300]]), "w1")
    w2 = numpy_helper.from_array(np.array([[1e300]]), "w2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "overflow",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1, 1])],
        [w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.warns(RuntimeWarning):
        r = nnrange.bounds(model, -1, 1, method="ibp", inner=False)
    assert not np.isnan(r.lower).any() and not np.isnan(r.upper).any()
    assert r.upper[0] == np.inf


def test_auto_hands_each_engine_the_options_it_takes():
    # two_slopes is crown's, alpha_steps bab's: the chain crown -> alpha-crown -> bab used to
    # fail at alpha-crown ("unexpected keyword") after CROWN had run
    g = random_mlp(np.random.default_rng(7), activations=["relu"], n_in=4)
    r = nnrange.bounds(g, -1, 1, exact=True, two_slopes=True, alpha_steps=0, time_limit=20)
    assert r.engines == ("crown", "sample", "alpha-crown", "bab") and r.exact.all()
    with pytest.raises(EngineError, match="bogus taken by no engine of method='auto'"):
        nnrange.bounds(g, -1, 1, exact=True, bogus=1)
    assert nnrange.bounds(g, -1, 1, method="AUTO").method == "auto"  # any case, as matched


def test_auto_escalates_on_the_chosen_outputs_only():
    from test_milp import relu_net

    g = relu_net(np.random.default_rng(7), 4, (8, 6), 3)
    r = nnrange.bounds(g, -1, 1, exact=True, outputs=[1], time_limit=20)
    assert r.engines[-1] == "bab" and r.exact[1] and r.status is nnrange.Status.OK
    # bab searched output 1 only: the others keep the bounds of the engines before it
    others = [j for j in range(g.output_size) if j != 1]
    assert not r.exact[others].all()
