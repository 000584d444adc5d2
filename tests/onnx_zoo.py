"""The ONNX layer zoo: one small hand-built model per supported op and attribute variant.

Used by the loader tests (forward equivalence with ONNX Runtime) and the engine tests.
``CASES`` maps a case name to a zero-argument builder returning an ``onnx.ModelProto``.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

_rng = np.random.default_rng(2024)


def _w(*shape, scale=0.5):
    return (_rng.normal(size=shape) * scale).astype(np.float32)


def make(nodes, in_shape, inits=None, opset=13, out="y", inits_as_inputs=False, extra_inputs=()):
    """A single-input model: ``x`` of ``in_shape`` (None entries become symbolic) -> ``out``."""
    inits = inits or {}
    dims = [d if d is not None else "N" for d in in_shape]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)]
    initializers = [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()]
    if inits_as_inputs:  # old exporters listed every weight as a graph input too
        inputs += [
            helper.make_tensor_value_info(k, TensorProto.FLOAT, list(np.shape(v)))
            for k, v in inits.items()
        ]
    graph = helper.make_graph(
        nodes,
        "zoo",
        inputs + list(extra_inputs),
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        initializer=initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets)
    )
    return model


def _i64(*v):
    return np.array(v, dtype=np.int64)


N = helper.make_node


def _activation(op, **attrs):
    return lambda: make([N(op, ["x"], ["y"], **attrs)], [1, 3, 4])


CASES = {
    # ---- linear maps
    "gemm_transB_alpha_beta": lambda: make(
        [N("Gemm", ["x", "W", "b"], ["y"], transB=1, alpha=0.5, beta=2.0)],
        [1, 4],
        {"W": _w(3, 4), "b": _w(3)},
    ),
    "gemm_opset8_bias_row": lambda: make(
        [N("Gemm", ["x", "W", "b"], ["y"])], [1, 4], {"W": _w(4, 3), "b": _w(1, 3)}, opset=8
    ),
    "gemm_const_A": lambda: make([N("Gemm", ["A", "x"], ["y"])], [4, 2], {"A": _w(3, 4)}),
    "matmul_add": lambda: make(
        [N("MatMul", ["x", "W"], ["h"]), N("Add", ["h", "b"], ["y"])],
        [1, 4],
        {"W": _w(4, 3), "b": _w(3)},
    ),
    "matmul_left_const": lambda: make([N("MatMul", ["C", "x"], ["y"])], [1, 2, 4], {"C": _w(3, 2)}),
    "matmul_vector_weight": lambda: make([N("MatMul", ["x", "w"], ["y"])], [1, 4], {"w": _w(4)}),
    "matmul_left_vector": lambda: make([N("MatMul", ["v", "x"], ["y"])], [1, 2, 4], {"v": _w(2)}),
    "matmul_left_vector_4d": lambda: make(
        [N("MatMul", ["v", "x"], ["y"])], [1, 3, 2, 4], {"v": _w(2)}
    ),
    "matmul_1d_input": lambda: make([N("MatMul", ["C", "x"], ["y"])], [3], {"C": _w(2, 3)}),
    "sub_div_normalisation": lambda: make(
        [N("Sub", ["x", "mean"], ["h"]), N("Div", ["h", "std"], ["y"])],
        [1, 1, 1, 5],
        {"mean": _w(5), "std": np.abs(_w(5)) + 0.5},
        opset=8,
    ),
    "normalise_flatten_matmul": lambda: make(
        [
            N("Sub", ["x", "mean"], ["h"]),
            N("Div", ["h", "std"], ["n"]),
            N("Flatten", ["n"], ["f"]),
            N("MatMul", ["f", "W"], ["m"]),
            N("Add", ["m", "b"], ["y"]),
        ],
        [1, 1, 1, 5],
        {"mean": _w(5), "std": np.abs(_w(5)) + 0.5, "W": _w(5, 3), "b": _w(3)},
    ),
    "rowwise_scale_matmul": lambda: make(  # scale differs per row: must not fold into W
        [N("Mul", ["x", "s"], ["h"]), N("MatMul", ["h", "W"], ["y"])],
        [1, 3, 4],
        {"s": _w(3, 1), "W": _w(4, 2)},
    ),
    "mul_add_const_left": lambda: make(
        [N("Mul", ["s", "x"], ["h"]), N("Add", ["c", "h"], ["y"])],
        [1, 3, 4],
        {"s": _w(3, 1), "c": _w(1, 4)},
    ),
    "sub_from_const_neg": lambda: make(
        [N("Sub", ["c", "x"], ["h"]), N("Neg", ["h"], ["y"])], [1, 3], {"c": _w(3)}
    ),
    "add_broadcast_to_bigger": lambda: make(
        [N("Add", ["x", "c"], ["y"])], [1, 3], {"c": _w(2, 1, 3)}
    ),
    "add_sub_two_variables": lambda: make(
        [
            N("Relu", ["x"], ["r"]),
            N("Add", ["x", "r"], ["s"]),
            N("Sigmoid", ["s"], ["t"]),
            N("Sub", ["s", "t"], ["y"]),
        ],
        [1, 3, 4],
    ),
    "add_variables_broadcast": lambda: make(
        [N("GlobalAveragePool", ["x"], ["g"]), N("Add", ["x", "g"], ["y"])], [1, 2, 3, 3]
    ),
    # the output node takes one tensor twice (each use must count in back-substitution)
    "add_same_tensor_twice": lambda: make(
        [N("Relu", ["x"], ["r"]), N("Add", ["r", "r"], ["y"])], [1, 3]
    ),
    "concat_same_tensor_twice": lambda: make(
        [N("Relu", ["x"], ["r"]), N("Concat", ["r", "r"], ["y"], axis=1)], [1, 3]
    ),
    "sub_same_tensor": lambda: make([N("Tanh", ["x"], ["t"]), N("Sub", ["t", "t"], ["y"])], [1, 3]),
    # ---- activations
    "relu": _activation("Relu"),
    "leaky_relu": _activation("LeakyRelu", alpha=0.2),
    "sigmoid": _activation("Sigmoid"),
    "tanh": _activation("Tanh"),
    "softplus": _activation("Softplus"),
    "elu": _activation("Elu", alpha=0.5),
    "hard_sigmoid": _activation("HardSigmoid", alpha=0.3, beta=0.4),
    "clip_opset8_attrs": lambda: make(
        [N("Clip", ["x"], ["y"], min=-0.2, max=0.3)], [1, 5], opset=8
    ),
    "clip_opset13_inputs": lambda: make(
        [N("Clip", ["x", "lo", "hi"], ["y"])],
        [1, 5],
        {"lo": np.array(-0.1, np.float32), "hi": np.array(0.4, np.float32)},
    ),
    "clip_opset13_max_only": lambda: make(
        [N("Clip", ["x", "", "hi"], ["y"])], [1, 5], {"hi": np.array(0.4, np.float32)}
    ),
    "prelu_shared_slope": lambda: make(
        [N("PRelu", ["x", "s"], ["y"])], [1, 4], {"s": np.array([0.25], np.float32)}
    ),
    "softmax_opset13": lambda: make([N("Softmax", ["x"], ["y"], axis=1)], [1, 4, 2]),
    "softmax_opset11_coerced": lambda: make(
        [N("Softmax", ["x"], ["y"], axis=1)], [1, 2, 3], opset=11
    ),
    # ---- convolution and pooling
    "conv1d_stride_dilation": lambda: make(
        [N("Conv", ["x", "W", "b"], ["y"], strides=[2], dilations=[2], pads=[1, 2])],
        [1, 2, 9],
        {"W": _w(3, 2, 3), "b": _w(3)},
    ),
    "conv2d_groups_pads": lambda: make(
        [N("Conv", ["x", "W"], ["y"], group=2, pads=[1, 0, 2, 1], strides=[1, 2])],
        [1, 4, 6, 5],
        {"W": _w(6, 2, 3, 2)},
    ),
    "conv2d_same_upper": lambda: make(
        [N("Conv", ["x", "W", "b"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])],
        [1, 2, 5, 6],
        {"W": _w(3, 2, 4, 3), "b": _w(3)},
    ),
    "conv2d_same_lower": lambda: make(
        [N("Conv", ["x", "W"], ["y"], auto_pad="SAME_LOWER", kernel_shape=[2, 2])],
        [1, 1, 5, 5],
        {"W": _w(2, 1, 2, 2)},
    ),
    "conv2d_valid": lambda: make(
        [N("Conv", ["x", "W"], ["y"], auto_pad="VALID")], [1, 1, 5, 5], {"W": _w(2, 1, 3, 3)}
    ),
    "conv3d": lambda: make(
        [N("Conv", ["x", "W", "b"], ["y"], pads=[1, 0, 1, 0, 1, 1], strides=[1, 2, 1])],
        [1, 2, 4, 5, 4],
        {"W": _w(2, 2, 2, 2, 3), "b": _w(2)},
    ),
    "batchnorm_opset9": lambda: make(
        [N("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], epsilon=1e-3)],
        [1, 3, 4, 4],
        {"g": _w(3), "b": _w(3), "m": _w(3), "v": np.abs(_w(3)) + 0.2},
        opset=9,
    ),
    "batchnorm_opset15_2d": lambda: make(
        [N("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"])],
        [1, 3],
        {"g": _w(3), "b": _w(3), "m": _w(3), "v": np.abs(_w(3)) + 0.2},
        opset=15,
    ),
    "maxpool_pads_strides": lambda: make(
        [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1])],
        [1, 2, 7, 5],
    ),
    "maxpool_ceil_dilation": lambda: make(
        [
            N(
                "MaxPool",
                ["x"],
                ["y"],
                kernel_shape=[2, 2],
                strides=[2, 2],
                ceil_mode=1,
                dilations=[1, 2],
            )
        ],
        [1, 1, 7, 8],
        opset=12,
    ),
    "maxpool_same_upper_1d": lambda: make(
        [N("MaxPool", ["x"], ["y"], kernel_shape=[3], strides=[2], auto_pad="SAME_UPPER")],
        [1, 2, 7],
    ),
    "avgpool_count_include_pad": lambda: make(
        [
            N(
                "AveragePool",
                ["x"],
                ["y"],
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
                count_include_pad=1,
            )
        ],
        [1, 2, 6, 6],
    ),
    "avgpool_exclude_pad_ceil": lambda: make(
        [
            N(
                "AveragePool",
                ["x"],
                ["y"],
                kernel_shape=[2, 2],
                strides=[2, 2],
                pads=[1, 0, 0, 1],
                ceil_mode=1,
            )
        ],
        [1, 1, 6, 7],
    ),
    "avgpool_3d": lambda: make(
        [N("AveragePool", ["x"], ["y"], kernel_shape=[2, 2, 2])], [1, 1, 4, 4, 4]
    ),
    "global_avg_and_max_pool": lambda: make(
        [
            N("GlobalAveragePool", ["x"], ["a"]),
            N("GlobalMaxPool", ["x"], ["m"]),
            N("Concat", ["a", "m"], ["y"], axis=1),
        ],
        [1, 3, 4, 5],
    ),
    # ---- shape ops
    "pad_opset8_attrs": lambda: make(
        [N("Pad", ["x"], ["y"], pads=[0, 0, 1, 2, 0, 0, 2, 1], value=0.5)], [1, 1, 3, 3], opset=8
    ),
    "pad_opset13_inputs_crop": lambda: make(
        [N("Pad", ["x", "p", "v"], ["y"])],
        [1, 2, 4, 4],
        {"p": _i64(0, 0, 1, -1, 0, 0, -1, 2), "v": np.array(-0.3, np.float32)},
    ),
    "pad_opset18_axes": lambda: make(
        [N("Pad", ["x", "p", "", "ax"], ["y"])],
        [1, 2, 4],
        {"p": _i64(2, 1), "ax": _i64(-1)},
        opset=18,
    ),
    "slice_opset13_crop": lambda: make(
        [N("Slice", ["x", "st", "en", "ax"], ["y"])],
        [1, 3, 6, 5],
        {"st": _i64(1, -4), "en": _i64(9999, -1), "ax": _i64(2, 3)},
    ),
    "slice_opset9_attrs": lambda: make(
        [N("Slice", ["x"], ["y"], starts=[0, 1], ends=[1, 3])], [1, 5], opset=9
    ),
    "flatten_axis2": lambda: make([N("Flatten", ["x"], ["y"], axis=2)], [1, 2, 3, 2]),
    "reshape_zero_minus_one": lambda: make(
        [N("Reshape", ["x", "s"], ["y"])], [1, 2, 3, 4], {"s": _i64(0, -1, 4)}
    ),
    "transpose_default_perm": lambda: make([N("Transpose", ["x"], ["y"])], [1, 2, 3]),
    "transpose_perm": lambda: make([N("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], [1, 2, 3, 4]),
    "squeeze_unsqueeze_opset11": lambda: make(
        [N("Unsqueeze", ["x"], ["u"], axes=[1, -1]), N("Squeeze", ["u"], ["y"], axes=[0, 1])],
        [1, 3],
        opset=11,
    ),
    "squeeze_unsqueeze_opset13": lambda: make(
        [N("Unsqueeze", ["x", "a"], ["u"]), N("Squeeze", ["u"], ["y"])], [1, 3], {"a": _i64(0)}
    ),
    "concat_identity_dropout_cast": lambda: make(
        [
            N("Identity", ["x"], ["i"]),
            N("Dropout", ["i"], ["d"]),
            N("Cast", ["d"], ["c"], to=1),
            N("Tanh", ["x"], ["t"]),
            N("Concat", ["c", "t"], ["y"], axis=-1),
        ],
        [1, 2, 3],
    ),
    "constant_node": lambda: make(
        [
            N("Constant", [], ["c"], value=numpy_helper.from_array(_w(3), "c")),
            N("Add", ["x", "c"], ["y"]),
        ],
        [1, 3],
    ),
    "shape_subgraph_reshape": lambda: make(
        [
            N("Shape", ["x"], ["s"]),
            N("Gather", ["s", "i0"], ["n"], axis=0),
            N("Unsqueeze", ["n", "a0"], ["n1"]),
            N("Concat", ["n1", "m1"], ["shape"], axis=0),
            N("Cast", ["shape"], ["shape64"], to=7),
            N("Reshape", ["x", "shape64"], ["y"]),
        ],
        [None, 2, 3],
        {"i0": np.array(0, np.int64), "a0": _i64(0), "m1": _i64(-1)},
    ),
    # PyTorch's opset-11 flatten: Unsqueeze takes its axes as an attribute before opset 13
    "shape_subgraph_reshape_opset11": lambda: make(
        [
            N("Shape", ["x"], ["s"]),
            N("Gather", ["s", "i0"], ["n"], axis=0),
            N("Unsqueeze", ["n"], ["n1"], axes=[0]),
            N("Concat", ["n1", "m1"], ["shape"], axis=0),
            N("Reshape", ["x", "shape"], ["y"]),
        ],
        [None, 2, 3],
        {"i0": np.array(0, np.int64), "m1": _i64(-1)},
        opset=11,
    ),
    "clip_one_element_bounds": lambda: make(
        [N("Clip", ["x", "lo", "hi"], ["y"])],
        [1, 4],
        {"lo": np.array([-0.3], np.float32), "hi": np.array([0.4], np.float32)},
    ),
    "max_of_two_scalar_constants": lambda: make(
        [N("Max", ["x", "a", "b"], ["y"])],
        [1, 4],
        {"a": np.array(0.3, np.float32), "b": np.array(-0.7, np.float32)},
    ),
    "symbolic_batch": lambda: make(
        [N("Gemm", ["x", "W", "b"], ["h"], transB=1), N("Relu", ["h"], ["y"])],
        [None, 4],
        {"W": _w(3, 4), "b": _w(3)},
    ),
    "weights_listed_as_inputs": lambda: make(
        [N("MatMul", ["x", "W"], ["h"]), N("Add", ["h", "b"], ["r"]), N("Relu", ["r"], ["y"])],
        [1, 4],
        {"W": _w(4, 3), "b": _w(3)},
        opset=8,
        inits_as_inputs=True,
    ),
    "residual_conv_block": lambda: make(
        [
            N("Conv", ["x", "W1"], ["c1"], pads=[1, 1, 1, 1]),
            N("Relu", ["c1"], ["r1"]),
            N("Conv", ["r1", "W2"], ["c2"], pads=[1, 1, 1, 1]),
            N("Add", ["c2", "x"], ["s"]),
            N("Relu", ["s"], ["y"]),
        ],
        [1, 2, 5, 5],
        {"W1": _w(2, 2, 3, 3), "W2": _w(2, 2, 3, 3)},
    ),
}


def opset_cases():
    """The same small Gemm/Relu/Softmax model at every opset from 8 to 21."""
    out = {}
    for opset in range(8, 22):
        out[f"opset{opset}"] = lambda o=opset: make(
            [
                N("Gemm", ["x", "W", "b"], ["h"], transB=1),
                N("Relu", ["h"], ["r"]),
                N("Softmax", ["r"], ["y"], axis=1),
            ],
            [1, 4],
            {"W": _w(3, 4), "b": _w(3)},
            opset=o,
        )
    return out
