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
