"""ONNX loader: every zoo model and opsets 8-21 agree with ONNX Runtime; IBP bounds on them are
sound; bad models fail with one clear error naming every problem."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import close
from onnx import TensorProto, helper
from onnx_zoo import CASES, N, make, opset_cases

import nnrange
from nnrange.engines import sampling


def _ort(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x.astype(np.float32)})[0]


ALL = {**CASES, **opset_cases()}


@pytest.mark.parametrize("name", sorted(ALL))
def test_forward_matches_onnx_runtime(name):
    model = ALL[name]()
    g = nnrange.load(model)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.normal(size=g.input_shape).astype(np.float32)
        expected = _ort(model, x)
        got = g.forward(x.astype(np.float64))
        assert got.size == expected.size
        assert close(got.reshape(expected.shape), expected), name


@pytest.mark.parametrize("name", sorted(CASES))
def test_ibp_bounds_contain_onnx_runtime_outputs(name):
    model = CASES[name]()
    g = nnrange.load(model)
    rng = np.random.default_rng(1)
    lo = rng.normal(size=g.input_shape)
    hi = lo + rng.uniform(0, 1, size=g.input_shape)
    r = nnrange.bounds(g, lo, hi, inner={"samples": 20})
    box = nnrange.Box.from_bounds(lo, hi, g.input_shape)
    pts = sampling.candidate_points(box, 30, 8, rng)[0]
    for x in pts:
        y = _ort(model, x).reshape(-1).astype(np.float64)
        slack = 1e-5 * (1 + np.abs(y))  # float32 runtime vs float64 bounds
        assert np.all(y >= r.lower - slack) and np.all(y <= r.upper + slack), name


def test_symbolic_batch_axis_becomes_one():
    g = nnrange.load(CASES["symbolic_batch"]())
    assert g.input_shape == (1, 4)


def test_symbolic_inner_axis_needs_input_shape(tmp_path):
    model = make([N("Relu", ["x"], ["y"])], [1, 3])
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "L"
    with pytest.raises(
        nnrange.ModelLoadError, match="symbolic dimension 'L' at axis 1.*input_shape"
    ):
        nnrange.load(model)
    assert nnrange.load(model, input_shape=(1, 7)).input_shape == (1, 7)


def test_all_unsupported_ops_listed_at_once():
    model = make(
        [
            N("Sin", ["x"], ["a"]),
            N("Relu", ["a"], ["b"]),
            N("Cos", ["b"], ["c"]),
            N("Mul", ["x", "x"], ["d"]),
            N("Add", ["c", "d"], ["y"]),
        ],
        [1, 3],
    )
    with pytest.raises(nnrange.UnsupportedOperatorError) as info:
        nnrange.load(model)
    ops = [p[0] for p in info.value.problems]
    assert ops == ["Sin", "Cos", "Mul"]
    text = str(info.value)
    assert "Sin (node 'a')" in text and "Cos (node 'c')" in text and "two variable tensors" in text
    # Cos comes after the unsupported Sin: the same reason, not a vaguer one
    reasons = [p[2] for p in info.value.problems]
    assert reasons[0] == reasons[1] and "depend on the model input" in reasons[1]


def test_unsupported_attribute_is_named():
    model = make(
        [N("Pad", ["x", "p"], ["y"], mode="reflect")], [1, 4], {"p": np.array([0, 1, 0, 1])}
    )
    with pytest.raises(nnrange.UnsupportedOperatorError, match="Pad.*mode='reflect'"):
        nnrange.load(model)


@pytest.mark.parametrize(
    "nodes, inits, opset, message",
    [
        (  # random at inference: not a function of the input
            [N("Dropout", ["x", "ratio", "train"], ["y"])],
            {"ratio": np.array(0.5, np.float32), "train": np.array(True)},
            13,
            "Dropout in training mode",
        ),
        ([N("Cast", ["x"], ["y"], to=10)], {}, 13, "half precision round"),
        (  # ONNX's evaluator knows only opset 13's Softmax; folding must not use it below
            [N("Softmax", ["c"], ["s"], axis=1), N("Add", ["x", "s"], ["y"])],
            {"c": np.ones((1, 3, 4), np.float32)},
            11,
            "cannot fold Softmax of a constant at opset 11",
        ),
        (  # an invalid model (ONNX Runtime refuses it too)
            [N("Sub", ["x", "c"], ["y"])],
            {"c": np.ones((1, 4), np.float32)},
            13,
            r"input shape \(1, 3\) does not broadcast with its constant",
        ),
        (
            [N("Slice", ["x", "s", "e", "a"], ["h"]), N("Add", ["x", "h"], ["y"])],
            {"s": np.array([1]), "e": np.array([3]), "a": np.array([1])},
            13,
            r"input shapes \[\(1, 3\), \(1, 2\)\] do not broadcast together",
        ),
    ],
)
def test_models_nnrange_cannot_bound_exactly_are_refused(nodes, inits, opset, message):
    with pytest.raises(nnrange.NNRangeError, match=message):
        nnrange.load(make(nodes, [1, 3], inits, opset=opset))


def test_missing_file(tmp_path):
    with pytest.raises(nnrange.ModelLoadError, match="nope.onnx: file not found"):
        nnrange.load(tmp_path / "nope.onnx")


def test_truncated_file(tmp_path):
    data = CASES["residual_conv_block"]().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(nnrange.ModelLoadError, match="cut.onnx"):
        nnrange.load(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00\xffthis is not a model" * 10)
    with pytest.raises(nnrange.ModelLoadError, match="junk.onnx"):
        nnrange.load(path)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"x")
    with pytest.raises(nnrange.ModelLoadError, match="unknown model file type '.pt'"):
        nnrange.load(path)


def test_multiple_outputs_need_a_choice():
    model = make([N("Relu", ["x"], ["y"]), N("Tanh", ["x"], ["z"])], [1, 3])
    model.graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    with pytest.raises(nnrange.ModelLoadError, match="2 outputs.*output="):
        nnrange.load(model)
    g = nnrange.load(model, output="z")
    np.testing.assert_allclose(g.forward(np.array([[0.5, 0, -1]])), np.tanh([[0.5, 0, -1]]))


def test_integer_input_refused():
    model = make([N("Relu", ["x"], ["y"])], [1, 3])
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.INT64
    with pytest.raises(nnrange.ModelLoadError, match="non-float element type"):
        nnrange.load(model)


def test_two_inputs_refused():
    extra = helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 3])
    model = make([N("Add", ["x", "x2"], ["y"])], [1, 3], extra_inputs=[extra])
    with pytest.raises(nnrange.ModelLoadError, match="exactly one input.*'x2'"):
        nnrange.load(model)


def test_roundtrip_through_file(tmp_path):
    model = CASES["conv2d_groups_pads"]()
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(3).normal(size=(1, 4, 6, 5))
    np.testing.assert_allclose(nnrange.load(path).forward(x), nnrange.load(model).forward(x))


@pytest.mark.parametrize(
    "name,fewer",
    [
        ("matmul_add", 1),
        ("batchnorm_opset9", 0),
        ("sub_div_normalisation", 1),
        ("mul_add_const_left", 1),
        ("normalise_flatten_matmul", 3),  # Sub, Div and the bias Add all folded into the Dense
        ("rowwise_scale_matmul", 0),
    ],
)
def test_simplify_folds_affine_chains_without_changing_the_function(name, fewer):
    model = CASES[name]()
    raw = nnrange.load(model, simplify=False)
    simple = nnrange.load(model)
    assert len(simple) == len(raw) - fewer
    x = np.random.default_rng(5).normal(size=(7, *raw.input_shape))
    np.testing.assert_allclose(simple.forward(x), raw.forward(x), rtol=1e-12, atol=1e-12)


def test_simplify_folds_batchnorm_into_conv():
    model = make(
        [
            N("Conv", ["x", "W", "b"], ["c"]),
            N("BatchNormalization", ["c", "g", "be", "m", "v"], ["y"]),
        ],
        [1, 2, 5, 5],
        {
            "W": np.ones((3, 2, 3, 3), np.float32),
            "b": np.ones(3, np.float32),
            "g": np.array([1, 2, 3], np.float32),
            "be": np.zeros(3, np.float32),
            "m": np.ones(3, np.float32),
            "v": np.ones(3, np.float32),
        },
    )
    g = nnrange.load(model)
    assert [n.op for n in g] == ["Conv"]
    x = np.random.default_rng(0).normal(size=(2, 1, 2, 5, 5)).astype(np.float32)
    assert close(g.forward(x.astype(np.float64)), np.stack([_ort(model, xi) for xi in x]))
