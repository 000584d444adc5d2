"""Forward equivalence with ONNX Runtime on every network in the shared benchmark folder:
100 random inputs inside each listed property box. Skipped when the folder is absent."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import benchmarks_dir

import nnrange
from nnrange.spec import load_vnnlib


def _instances():
    root = benchmarks_dir()
    if root is None:
        return [
            pytest.param(
                None,
                None,
                marks=pytest.mark.skip(
                    reason="benchmark networks absent: set NNRANGE_BENCHMARKS "
                    "or provide ../shared/benchmarks"
                ),
            )
        ]
    pairs = {}
    for csv_path in sorted(root.glob("*/*instances.csv")):
        with open(csv_path) as f:
            for row in csv.reader(f):
                if len(row) >= 2:
                    net = csv_path.parent / row[0].strip()
                    prop = (csv_path.parent / row[1].strip()).resolve()
                    pairs.setdefault(net, prop)  # one property box per network is enough
    return [pytest.param(n, p, id=n.name) for n, p in sorted(pairs.items())]


@pytest.mark.parametrize("net,prop", _instances())
def test_forward_matches_onnx_runtime_in_property_box(net: Path, prop: Path):
    graph = nnrange.load(net)
    spec = load_vnnlib(prop)
    case = spec.cases[0]
    rng = np.random.default_rng(0)
    x = case.lo + rng.random((100, case.lo.size)) * (case.hi - case.lo)
    x = x.reshape(100, *graph.input_shape).astype(np.float32)
    sess = ort.InferenceSession(str(net), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    expected = np.stack([sess.run(None, {name: xi})[0].reshape(-1) for xi in x]).astype(np.float64)
    got = graph.forward(x.astype(np.float64)).reshape(100, -1)
    err = np.abs(got - expected) / (1 + np.abs(expected))
    assert err.max() <= 1e-5, f"max relative difference {err.max():.2e}"


@pytest.mark.parametrize("net,prop", _instances())
def test_ibp_contains_onnx_runtime_outputs(net: Path, prop: Path):
    graph = nnrange.load(net)
    case = load_vnnlib(prop).cases[0]
    r = nnrange.bounds(graph, case.lo, case.hi, inner={"samples": 200})
    rng = np.random.default_rng(1)
    x = case.lo + rng.random((50, case.lo.size)) * (case.hi - case.lo)
    sess = ort.InferenceSession(str(net), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for xi in x.reshape(50, *graph.input_shape).astype(np.float32):
        y = sess.run(None, {name: xi})[0].reshape(-1).astype(np.float64)
        slack = 1e-5 * (1 + np.abs(y))
        assert np.all(y >= r.lower - slack) and np.all(y <= r.upper + slack)
