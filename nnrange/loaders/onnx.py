"""ONNX model -> layer graph.

The converter walks the ONNX nodes in order. A node whose inputs are all constants (weights,
``Constant`` nodes, and shape-computation subgraphs around ``Reshape`` once ``Shape`` of a
variable tensor has been answered from its static shape) is folded with the ONNX reference
evaluator. Every other node goes through ``HANDLERS``, a table from op type to a function that
emits layer-graph nodes. Unsupported ops are collected and reported together.

The graph keeps the ONNX tensor layout, including the model's batch axis (of size 1): the
engines add their own batch axis in front, so no axis argument ever needs rewriting.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from ..errors import ModelLoadError, NNRangeError, UnsupportedOperatorError
from ..graph import (
    Affine,
    AvgPool,
    Clip,
    Concat,
    Conv,
    Dense,
    Elu,
    Graph,
    LeakyRelu,
    MaxPool,
    Node,
    Pad,
    Relu,
    Reshape,
    Sigmoid,
    Softmax,
    Softplus,
    Sum,
    Tanh,
    Transpose,
    Window,
)
from ..graph.window import same_padding

_FLOAT_TYPES = {1, 10, 11, 16}  # float, float16, double, bfloat16: inputs nnrange can bound
_CAST_IDENTITY = {1, 11}  # float, double: a cast to these keeps the values (half types round)


#: Why an op nnrange has no handler for fails (ops on constants only are folded instead).
_NOT_ON_INPUT = "not supported on tensors that depend on the model input"


class _Unsupported(Exception):
    """Raised by a handler for a supported op used in an unsupported way."""


class _Converter:
    def __init__(self, model, source: str, input_shape=None, output: str | None = None):
        import onnx
        from onnx import numpy_helper

        self.onnx = onnx
        self.source = source
        self.model = model
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        g = model.graph
        self.consts: dict[str, np.ndarray] = {}
        for init in g.initializer:
            self.consts[init.name] = numpy_helper.to_array(init)
        for sparse in getattr(g, "sparse_initializer", []):
            raise ModelLoadError(
                f"{source}: sparse initializer '{sparse.values.name}' is not supported"
            )
        self.shapes: dict[str, tuple[int, ...]] = {}  # variable ONNX tensor -> sample shape
        self.ir_name: dict[str, str] = {}  # variable ONNX tensor -> layer-graph tensor
        self.nodes: list[Node] = []
        self.problems: list[tuple[str, str, str]] = []
        self.poisoned: set[str] = set()
        self.input_name, self.input_shape = self._graph_input(input_shape)
        self._ir_shapes = {self.input_name: self.input_shape}
        self.output = self._graph_output(output)

    # ------------------------------------------------------------------ graph ends
    def _graph_input(self, override):
        g = self.model.graph
        real = [i for i in g.input if i.name not in self.consts]
        if len(real) != 1:
            names = [i.name for i in real]
            raise ModelLoadError(
                f"{self.source}: nnrange bounds models with exactly one input tensor; this one has "
                f"{len(real)}: {names}. Fix the other inputs as constants (initializers) first."
            )
        inp = real[0]
        ttype = inp.type.tensor_type
        if ttype.elem_type and ttype.elem_type not in _FLOAT_TYPES:
            raise ModelLoadError(
                f"{self.source}: input '{inp.name}' has a non-float element type "
                f"({self.onnx.TensorProto.DataType.Name(ttype.elem_type)}); "
                "only float inputs can be bounded"
            )
        if override is not None:
            shape = tuple(int(d) for d in override)
        else:
            if not ttype.HasField("shape"):
                raise ModelLoadError(
                    f"{self.source}: input '{inp.name}' has no declared shape; give it in Python "
                    "with nnrange.load(path, input_shape=...)"
                )
            shape = []
            for axis, d in enumerate(ttype.shape.dim):
                if d.HasField("dim_value") and d.dim_value > 0:
                    shape.append(int(d.dim_value))
                elif axis == 0:
                    shape.append(1)  # symbolic batch axis: the graph describes one sample
                else:
                    raise ModelLoadError(
                        f"{self.source}: input '{inp.name}' has a symbolic dimension "
                        f"'{d.dim_param or '?'}' at axis {axis}; fix it in Python with "
                        "nnrange.load(path, input_shape=...), every dimension given"
                    )
            shape = tuple(shape)
        self.shapes[inp.name] = shape
        self.ir_name[inp.name] = inp.name
        return inp.name, shape

    def _graph_output(self, chosen):
        outs = [o.name for o in self.model.graph.output]
        if chosen is not None:
            if chosen not in outs:
                raise ModelLoadError(
                    f"{self.source}: no graph output named '{chosen}'; outputs are {outs}"
                )
            return chosen
        if len(outs) != 1:
            raise ModelLoadError(
                f"{self.source}: the model has {len(outs)} outputs {outs}; "
                "choose one in Python with nnrange.load(path, output=NAME) (the command "
                "line takes single-output models)"
            )
        return outs[0]

    # ------------------------------------------------------------------ helpers for handlers
    def is_const(self, name: str) -> bool:
        return name == "" or name in self.consts

    def const(self, node, index: int, default=None) -> np.ndarray | None:
        """Constant input ``index`` of ``node`` (None or ``default`` when absent)."""
        if index >= len(node.input) or node.input[index] == "":
            return default
        name = node.input[index]
        if name not in self.consts:
            raise _Unsupported(
                f"input {index} ('{name}') must be a constant here, "
                "but it depends on the model input"
            )
        return self.consts[name]

    def var(self, name: str) -> str:
        return self.ir_name[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return self.shapes[name]

    def emit(self, node: Node, onnx_out: str | None = None) -> str:
        """Add a layer-graph node (shape-checked now) and map ``onnx_out`` to it."""
        node.bind(tuple(self._ir_shape(i) for i in node.inputs))
        self.nodes.append(node)
        self._ir_shapes[node.name] = node.out_shape
        if onnx_out is not None:
            self.ir_name[onnx_out] = node.name
            self.shapes[onnx_out] = node.out_shape
        return node.name

    def alias(self, onnx_out: str, onnx_in: str) -> None:
        self.ir_name[onnx_out] = self.ir_name[onnx_in]
        self.shapes[onnx_out] = self.shapes[onnx_in]

    def _ir_shape(self, ir: str) -> tuple[int, ...]:
        return self._ir_shapes[ir]

    # ------------------------------------------------------------------ main loop
    def convert(self) -> Graph:
        for node in self.model.graph.node:
            label = node.name or (node.output[0] if node.output else node.op_type)
            inputs = [i for i in node.input]
            if any(i in self.poisoned for i in inputs):
                if node.op_type not in HANDLERS and node.op_type not in _FOLD_ONLY:
                    self.problems.append((node.op_type, label, _NOT_ON_INPUT))
                self.poisoned.update(node.output)
                continue
            try:
                if node.domain not in ("", "ai.onnx"):
                    raise _Unsupported(f"custom domain '{node.domain}' is not supported")
                if all(self.is_const(i) for i in inputs):
                    self._fold(node)
                elif node.op_type == "Shape":
                    self._shape_of(node)
                elif node.op_type in HANDLERS:
                    HANDLERS[node.op_type](self, node, _attrs(node))
                else:
                    raise _Unsupported(_NOT_ON_INPUT)
            except _Unsupported as exc:
                self.problems.append((node.op_type, label, str(exc)))
                self.poisoned.update(node.output)
            except NNRangeError as exc:
                self.problems.append((node.op_type, label, str(exc)))
                self.poisoned.update(node.output)
        if self.problems:
            raise UnsupportedOperatorError(self.problems, self.source)
        if self.output in self.consts:
            raise ModelLoadError(
                f"{self.source}: output '{self.output}' does not depend on the input"
            )
        if self.output not in self.ir_name:
            raise ModelLoadError(f"{self.source}: output '{self.output}' is never computed")
        return Graph(
            self.input_name,
            self.input_shape,
            self.nodes,
            self.var(self.output),
            name=os.path.basename(self.source),
        )

    def _fold(self, node):
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        if node.op_type in ("Softmax", "LogSoftmax", "Hardmax") and self.opset < 13:
            # ONNX's reference evaluator implements only the opset-13 meaning (one axis, not
            # the flattened trailing axes of older opsets)
            raise _Unsupported(
                f"cannot fold {node.op_type} of a constant at opset {self.opset}; "
                "re-export the model with opset 13 or later"
            )
        feeds = {i: self.consts[i] for i in node.input if i}
        # a one-node model with the file's opset: a bare node would run the newest version of
        # its op (Softmax, Unsqueeze, Clip, ... changed meaning or signature across opsets)
        graph = helper.make_graph(
            [node],
            "fold",
            [helper.make_empty_tensor_value_info(i) for i in feeds],
            [helper.make_empty_tensor_value_info(o) for o in node.output if o],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        try:
            outs = ReferenceEvaluator(model).run(None, feeds)
        except Exception as exc:  # the evaluator raises many types; report them uniformly
            raise _Unsupported(f"could not fold constant computation: {exc}") from exc
        for name, value in zip(node.output, outs, strict=False):
            if name:
                self.consts[name] = np.asarray(value)

    def _shape_of(self, node):
        shape = np.array(self.shape(node.input[0]), dtype=np.int64)
        a = _attrs(node)
        start, end = a.get("start", 0), a.get("end", None)
        self.consts[node.output[0]] = shape[start:end]


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for attr in node.attribute:
        value = helper.get_attribute_value(attr)
        out[attr.name] = value.decode() if isinstance(value, bytes) else value
    return out


# ---------------------------------------------------------------------- op handlers
def _label(node) -> str:
    return node.name or node.output[0]


def _var_inputs(cv: _Converter, node) -> list[int]:
    return [i for i, name in enumerate(node.input) if name and not cv.is_const(name)]


def _dense_from(cv, node, x: str, weight: np.ndarray, bias, out: str | None, suffix=""):
    return cv.emit(Dense(out_name(node, suffix), [x], weight, bias, source=_label(node)), out)


def out_name(node, suffix: str = "") -> str:
    return node.output[0] + (f"/{suffix}" if suffix else "")


def _left_matmul(cv, node, x_onnx: str, c: np.ndarray, bias=None):
    """``y = C @ X`` for constant 2-D C and variable X of >= 2 axes: transpose, Dense, transpose.
    A 1-D C (MatMul only, no bias) is a one-row matrix whose row axis the result drops, as in
    numpy."""
    s = cv.shape(x_onnx)
    row = c.ndim == 1 and len(s) >= 2
    if row:
        c = c[None]
    if c.ndim != 2:
        raise _Unsupported(f"constant-times-variable product with shapes {c.shape} @ {s}")
    done = None if bias is not None or row else node.output[0]  # the last node's ONNX name
    if len(s) == 1:  # matrix @ vector: a Dense layer with the transposed matrix
        y = cv.emit(
            Dense(out_name(node, "matmul"), [cv.var(x_onnx)], c.T, None, source=_label(node)), done
        )
    else:
        perm = (*range(len(s) - 2), len(s) - 1, len(s) - 2)
        t = cv.emit(Transpose(out_name(node, "T_in"), [cv.var(x_onnx)], perm, source=_label(node)))
        d = cv.emit(Dense(out_name(node, "matmul"), [t], c.T, None, source=_label(node)))
        y = cv.emit(Transpose(out_name(node, "T_out"), [d], perm, source=_label(node)), done)
    if row:
        cv.emit(Reshape(out_name(node), [y], (*s[:-2], s[-1]), source=_label(node)), node.output[0])
    elif bias is not None:
        cv.emit(
            Affine(out_name(node), [y], shift=bias, source=_label(node), op="Add"), node.output[0]
        )


def _gemm(cv, node, a):
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
    ta, tb = a.get("transA", 0), a.get("transB", 0)
    c = cv.const(node, 2)
    bias = None if c is None else beta * np.asarray(c, dtype=np.float64)
    var = _var_inputs(cv, node)
    if var == [0]:
        b = cv.const(node, 1).astype(np.float64)
        w = alpha * (b.T if tb else b)
        x = cv.var(node.input[0])
        if ta:
            x = cv.emit(Transpose(out_name(node, "transA"), [x], (1, 0), source=_label(node)))
        n_out = w.shape[1]
        if bias is None or np.broadcast_shapes(bias.shape, (1, n_out)) == (1, n_out):
            vec = None if bias is None else np.broadcast_to(bias, (1, n_out)).reshape(n_out)
            _dense_from(cv, node, x, w, vec, node.output[0])
        else:
            d = _dense_from(cv, node, x, w, None, None, "matmul")
            cv.emit(
                Affine(out_name(node), [d], shift=bias, source=_label(node), op="Add"),
                node.output[0],
            )
    elif var == [1]:
        a_ = cv.const(node, 0).astype(np.float64)
        if tb:
            raise _Unsupported("transB on a variable B is not supported")
        _left_matmul(cv, node, node.input[1], alpha * (a_.T if ta else a_), bias)
    else:
        raise _Unsupported("product of two variable tensors (not a linear map)")


def _matmul(cv, node, a):
    var = _var_inputs(cv, node)
    if var == [0]:
        w = cv.const(node, 1).astype(np.float64)
        x = cv.var(node.input[0])
        if w.ndim == 1:
            d = _dense_from(cv, node, x, w[:, None], None, None, "matmul")
            cv.emit(
                Reshape(out_name(node), [d], cv._ir_shape(d)[:-1], source=_label(node)),
                node.output[0],
            )
        elif w.ndim == 2:
            _dense_from(cv, node, x, w, None, node.output[0])
        else:
            raise _Unsupported(f"batched constant weight of shape {w.shape}")
    elif var == [1]:
        _left_matmul(cv, node, node.input[1], cv.const(node, 0).astype(np.float64))
    else:
        raise _Unsupported("product of two variable tensors (not a linear map)")


def _binary(cv, node, a):
    op = node.op_type
    var = _var_inputs(cv, node)
    if len(var) == 2:
        if op in ("Add", "Sub"):
            coefs = (1.0, 1.0 if op == "Add" else -1.0)
            cv.emit(
                Sum(out_name(node), [cv.var(i) for i in node.input], coefs, source=_label(node)),
                node.output[0],
            )
            return
        raise _Unsupported(
            "elementwise product/quotient of two variable tensors is not supported yet"
        )
    c = np.asarray(cv.const(node, 1 - var[0]), dtype=np.float64)
    x = cv.var(node.input[var[0]])
    scale = shift = None
    if op == "Add":
        shift = c
    elif op == "Sub":
        if var[0] == 0:
            shift = -c
        else:
            scale, shift = -np.ones_like(c), c
    elif op == "Mul":
        scale = c
    elif op == "Div":
        if var[0] == 1:
            raise _Unsupported("division by a variable tensor is not supported")
        if np.any(c == 0):
            raise _Unsupported("division by a constant that contains zeros")
        scale = 1.0 / c
    cv.emit(
        Affine(out_name(node), [x], scale=scale, shift=shift, source=_label(node), op=op),
        node.output[0],
    )


def _neg(cv, node, a):
    cv.emit(
        Affine(
            out_name(node),
            [cv.var(node.input[0])],
            scale=np.array(-1.0),
            source=_label(node),
            op="Neg",
        ),
        node.output[0],
    )


def _activation(cls, **defaults):
    def handler(cv, node, a):
        kwargs = {k: a.get(k, v) for k, v in defaults.items()}
        cv.emit(
            cls(out_name(node), [cv.var(node.input[0])], source=_label(node), **kwargs),
            node.output[0],
        )

    return handler


def _leaky_relu(cv, node, a):
    cv.emit(
        LeakyRelu(
            out_name(node), [cv.var(node.input[0])], a.get("alpha", 0.01), source=_label(node)
        ),
        node.output[0],
    )


def _prelu(cv, node, a):
    slope = np.asarray(cv.const(node, 1), dtype=np.float64)
    if slope.size == 0 or not np.all(slope == slope.reshape(-1)[0]):
        raise _Unsupported("per-channel slopes are not supported yet (only one shared slope)")
    cv.emit(
        LeakyRelu(
            out_name(node),
            [cv.var(node.input[0])],
            float(slope.reshape(-1)[0]),
            source=_label(node),
        ),
        node.output[0],
    )


def _elu(cv, node, a):
    cv.emit(
        Elu(out_name(node), [cv.var(node.input[0])], a.get("alpha", 1.0), source=_label(node)),
        node.output[0],
    )


def _selu(cv, node, a):
    alpha, gamma = (
        a.get("alpha", 1.67326319217681884765625),
        a.get("gamma", 1.05070102214813232421875),
    )
    e = cv.emit(Elu(out_name(node, "elu"), [cv.var(node.input[0])], alpha, source=_label(node)))
    cv.emit(
        Affine(out_name(node), [e], scale=np.array(gamma), source=_label(node), op="Selu"),
        node.output[0],
    )


def _min_max(cv, node, a):
    """``Max``/``Min`` of one variable tensor and constants: a one-sided Clip."""
    var = _var_inputs(cv, node)
    if len(var) != 1:
        raise _Unsupported("elementwise max/min of several variable tensors is not supported yet")
    consts = [
        np.asarray(cv.consts[i], dtype=np.float64) for i in node.input if i and cv.is_const(i)
    ]
    values = np.concatenate([c.reshape(-1) for c in consts]) if consts else np.array([])
    x = cv.var(node.input[var[0]])
    if values.size == 0:
        cv.alias(node.output[0], node.input[var[0]])
        return
    if any(c.size and not np.all(c == c.reshape(-1)[0]) for c in consts):
        # each constant may differ from the others: max(x, a, b) = max(x, max(a, b))
        raise _Unsupported("max/min with a non-uniform constant tensor is not supported yet")
    out_shape = np.broadcast_shapes(cv._ir_shape(x), *(c.shape for c in consts))
    if out_shape != cv._ir_shape(x):
        raise _Unsupported("max/min whose constant broadcasts the variable tensor up")
    low, high = (values.max(), np.inf) if node.op_type == "Max" else (-np.inf, values.min())
    cv.emit(Clip(out_name(node), [x], low, high, source=_label(node)), node.output[0])


def _clip(cv, node, a):
    if cv.opset < 11:
        low, high = a.get("min", -np.inf), a.get("max", np.inf)
    else:
        lo_c, hi_c = cv.const(node, 1), cv.const(node, 2)
        for which, c in (("min", lo_c), ("max", hi_c)):
            if c is not None and np.size(c) != 1:
                raise _Unsupported(f"Clip's {which} has shape {np.shape(c)}, not one value")
        low = -np.inf if lo_c is None else float(np.reshape(lo_c, -1)[0])
        high = np.inf if hi_c is None else float(np.reshape(hi_c, -1)[0])
    cv.emit(
        Clip(out_name(node), [cv.var(node.input[0])], low, high, source=_label(node)),
        node.output[0],
    )


def _hard_sigmoid(cv, node, a):
    alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
    t = cv.emit(
        Affine(
            out_name(node, "affine"),
            [cv.var(node.input[0])],
            scale=np.array(alpha),
            shift=np.array(beta),
            source=_label(node),
            op="HardSigmoid",
        )
    )
    cv.emit(Clip(out_name(node), [t], 0.0, 1.0, source=_label(node)), node.output[0])


def _softmax(cv, node, a):
    s = cv.shape(node.input[0])
    x = cv.var(node.input[0])
    if cv.opset >= 13:
        cv.emit(
            Softmax(out_name(node), [x], a.get("axis", -1), source=_label(node)), node.output[0]
        )
        return
    axis = a.get("axis", 1)
    axis = axis + len(s) if axis < 0 else axis
    if all(d == 1 for d in s[axis + 1 :]):
        cv.emit(Softmax(out_name(node), [x], axis, source=_label(node)), node.output[0])
        return
    # Opsets < 13 take the softmax over all axes from `axis` on, flattened.
    flat = cv.emit(
        Reshape(
            out_name(node, "flat"), [x], (*s[:axis], int(np.prod(s[axis:]))), source=_label(node)
        )
    )
    sm = cv.emit(Softmax(out_name(node, "softmax"), [flat], -1, source=_label(node)))
    cv.emit(Reshape(out_name(node), [sm], s, source=_label(node)), node.output[0])


def _window(cv, node, a, in_spatial, kernel):
    nsp = len(kernel)
    strides = tuple(a.get("strides", [1] * nsp))
    dilations = tuple(a.get("dilations", [1] * nsp))
    auto_pad = a.get("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pb, pe = same_padding(in_spatial, kernel, strides, dilations, auto_pad == "SAME_UPPER")
    elif auto_pad == "VALID":
        pb = pe = (0,) * nsp
    elif auto_pad == "NOTSET":
        pads = list(a.get("pads", [0] * 2 * nsp))
        pb, pe = tuple(pads[:nsp]), tuple(pads[nsp:])
    else:
        raise _Unsupported(f"auto_pad={auto_pad!r}")
    return Window(tuple(kernel), strides, dilations, pb, pe)


def _conv(cv, node, a):
    if _var_inputs(cv, node) != [0]:
        raise _Unsupported("convolution weights must be constants")
    w = cv.const(node, 1).astype(np.float64)
    b = cv.const(node, 2)
    s = cv.shape(node.input[0])
    nsp = w.ndim - 2
    kernel = tuple(a.get("kernel_shape", w.shape[2:]))
    window = _window(cv, node, a, s[-nsp:], kernel)
    cv.emit(
        Conv(
            out_name(node),
            [cv.var(node.input[0])],
            w,
            b,
            window,
            a.get("group", 1),
            source=_label(node),
        ),
        node.output[0],
    )


def _batchnorm(cv, node, a):
    if a.get("training_mode", 0):
        raise _Unsupported("training_mode=1 (batch statistics) has no fixed inference value")
    if any(o for o in node.output[1:]):
        raise _Unsupported("running-statistics outputs are used by the graph")
    gamma, beta, mean, var = (cv.const(node, i).astype(np.float64) for i in range(1, 5))
    eps = a.get("epsilon", 1e-5)
    s = cv.shape(node.input[0])
    if len(s) < 2:
        raise _Unsupported(f"input of shape {s} has no channel axis")
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
    param_shape = (s[1],) + (1,) * (len(s) - 2)
    cv.emit(
        Affine(
            out_name(node),
            [cv.var(node.input[0])],
            scale.reshape(param_shape),
            shift.reshape(param_shape),
            source=_label(node),
            op="BatchNorm",
        ),
        node.output[0],
    )


def _pool(kind):
    def handler(cv, node, a):
        if len(node.output) > 1 and node.output[1]:
            raise _Unsupported("the Indices output is not supported")
        s = cv.shape(node.input[0])
        glob = node.op_type.startswith("Global")
        if glob:
            kernel = s[2:]
            if len(s) < 3:
                raise _Unsupported(f"input of shape {s} has no spatial axes")
            window = Window(
                tuple(kernel),
                (1,) * len(kernel),
                (1,) * len(kernel),
                (0,) * len(kernel),
                (0,) * len(kernel),
            )
        else:
            kernel = tuple(a["kernel_shape"])
            window = _window(cv, node, a, s[-len(kernel) :], kernel)
        x = cv.var(node.input[0])
        if kind == "max":
            cv.emit(
                MaxPool(
                    out_name(node),
                    [x],
                    window,
                    ceil_mode=a.get("ceil_mode", 0),
                    source=_label(node),
                ),
                node.output[0],
            )
        else:
            cv.emit(
                AvgPool(
                    out_name(node),
                    [x],
                    window,
                    count_include_pad=a.get("count_include_pad", 0),
                    ceil_mode=a.get("ceil_mode", 0),
                    source=_label(node),
                ),
                node.output[0],
            )

    return handler


def _pad(cv, node, a):
    s = cv.shape(node.input[0])
    if cv.opset < 11:
        mode, pads, value = a.get("mode", "constant"), list(a.get("pads", [])), a.get("value", 0.0)
        axes = list(range(len(s)))
    else:
        mode = a.get("mode", "constant")
        pads = [int(p) for p in cv.const(node, 1)]
        v = cv.const(node, 2)
        value = 0.0 if v is None or v.size == 0 else float(v.reshape(-1)[0])
        ax = cv.const(node, 3)
        axes = list(range(len(s))) if ax is None else [int(i) % len(s) for i in ax]
    if mode != "constant":
        raise _Unsupported(f"mode={mode!r} (only constant padding is supported)")
    if len(pads) != 2 * len(axes):
        raise _Unsupported(f"{len(pads)} pad values for {len(axes)} axes")
    begin, end = [0] * len(s), [0] * len(s)
    for k, axis in enumerate(axes):
        begin[axis], end[axis] = pads[k], pads[k + len(axes)]
    cv.emit(
        Pad(out_name(node), [cv.var(node.input[0])], begin, end, value, source=_label(node)),
        node.output[0],
    )


def _slice(cv, node, a):
    """Unit-step Slice of a variable tensor: a crop, i.e. padding with negative widths."""
    s = cv.shape(node.input[0])
    if cv.opset < 10:
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        starts, ends = cv.const(node, 1), cv.const(node, 2)
        axes, steps = cv.const(node, 3), cv.const(node, 4)
    axes = list(range(len(starts))) if axes is None else [int(i) % len(s) for i in axes]
    if steps is not None and any(int(k) != 1 for k in steps):
        raise _Unsupported(f"steps {[int(k) for k in steps]} (only unit steps are supported)")
    begin, end = [0] * len(s), [0] * len(s)
    for axis, start, stop in zip(axes, starts, ends, strict=True):
        n = s[axis]
        start, stop = int(start), int(stop)
        start = min(max(start + n if start < 0 else start, 0), n)
        stop = min(max(stop + n if stop < 0 else stop, 0), n)
        if stop <= start:
            raise _Unsupported(f"empty slice [{start}:{stop}] of axis {axis}")
        begin[axis], end[axis] = -start, stop - n
    cv.emit(
        Pad(out_name(node), [cv.var(node.input[0])], begin, end, 0.0, source=_label(node)),
        node.output[0],
    )


def _reshape_to(cv, node, shape, op="Reshape"):
    cv.emit(
        Reshape(out_name(node), [cv.var(node.input[0])], shape, source=_label(node), op=op),
        node.output[0],
    )


def _flatten(cv, node, a):
    s = cv.shape(node.input[0])
    axis = a.get("axis", 1)
    axis = axis + len(s) if axis < 0 else axis
    _reshape_to(cv, node, (int(np.prod(s[:axis])), int(np.prod(s[axis:]))), "Flatten")


def _reshape(cv, node, a):
    s = cv.shape(node.input[0])
    target = [int(d) for d in cv.const(node, 1)]
    if not a.get("allowzero", 0):
        target = [s[i] if d == 0 else d for i, d in enumerate(target)]
    if target.count(-1) > 1:
        raise _Unsupported(f"target shape {target} has more than one -1")
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1]))
        total = int(np.prod(s))
        if known == 0 or total % known:
            raise _Unsupported(f"cannot reshape {s} to {target}")
        target[target.index(-1)] = total // known
    _reshape_to(cv, node, tuple(target))


def _axes(cv, node, a):
    if cv.opset >= 13 and len(node.input) > 1:
        c = cv.const(node, 1)
        return None if c is None else [int(i) for i in c]
    return a.get("axes")


def _squeeze(cv, node, a):
    s = cv.shape(node.input[0])
    axes = _axes(cv, node, a)
    axes = [i for i, d in enumerate(s) if d == 1] if axes is None else [i % len(s) for i in axes]
    if any(s[i] != 1 for i in axes):
        raise _Unsupported(f"cannot squeeze axes {axes} of shape {s}")
    _reshape_to(cv, node, tuple(d for i, d in enumerate(s) if i not in axes), "Squeeze")


def _unsqueeze(cv, node, a):
    s = list(cv.shape(node.input[0]))
    axes = _axes(cv, node, a)
    rank = len(s) + len(axes)
    for i in sorted(ax % rank for ax in axes):
        s.insert(i, 1)
    _reshape_to(cv, node, tuple(s), "Unsqueeze")


def _transpose(cv, node, a):
    s = cv.shape(node.input[0])
    perm = a.get("perm", list(reversed(range(len(s)))))
    cv.emit(
        Transpose(out_name(node), [cv.var(node.input[0])], perm, source=_label(node)),
        node.output[0],
    )


def _concat(cv, node, a):
    if len(_var_inputs(cv, node)) != len([i for i in node.input if i]):
        raise _Unsupported(
            "concatenating constants with model-dependent tensors is not supported yet"
        )
    cv.emit(
        Concat(out_name(node), [cv.var(i) for i in node.input], a["axis"], source=_label(node)),
        node.output[0],
    )


def _identity(cv, node, a):
    if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]:
        raise _Unsupported("the mask output of Dropout is used")
    if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
        mode = cv.const(node, 2)
        if mode is None or bool(np.reshape(mode, -1)[0]):
            raise _Unsupported("Dropout in training mode (random) is not an inference-time map")
    if node.op_type == "Cast" and a.get("to") not in _CAST_IDENTITY:
        raise _Unsupported(
            "cast of a model-dependent tensor to a type other than float32/float64 "
            "(integers and half precision round the values)"
        )
    cv.alias(node.output[0], node.input[0])


HANDLERS: dict[str, Callable] = {
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _binary,
    "Sub": _binary,
    "Mul": _binary,
    "Div": _binary,
    "Neg": _neg,
    "Relu": _activation(Relu),
    "LeakyRelu": _leaky_relu,
    "PRelu": _prelu,
    "Sigmoid": _activation(Sigmoid),
    "Tanh": _activation(Tanh),
    "Softplus": _activation(Softplus),
    "Elu": _elu,
    "Clip": _clip,
    "Max": _min_max,
    "Min": _min_max,
    "Selu": _selu,
    "HardSigmoid": _hard_sigmoid,
    "Softmax": _softmax,
    "Conv": _conv,
    "BatchNormalization": _batchnorm,
    "MaxPool": _pool("max"),
    "GlobalMaxPool": _pool("max"),
    "AveragePool": _pool("avg"),
    "GlobalAveragePool": _pool("avg"),
    "Pad": _pad,
    "Slice": _slice,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "Concat": _concat,
    "Identity": _identity,
    "Dropout": _identity,
    "Cast": _identity,
}

#: Ops accepted only on constants (folded at load time); listed so error reports stay precise.
_FOLD_ONLY = {"Shape", "Gather", "Constant", "ConstantOfShape", "Range", "Size", "Expand"}


def load_onnx(model, *, input_shape=None, output: str | None = None) -> Graph:
    """Convert an ONNX model (path or ``onnx.ModelProto``) to a layer graph."""
    import onnx

    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        try:
            proto = onnx.load(path)
        except FileNotFoundError as exc:
            raise ModelLoadError(f"{path}: file not found") from exc
        except Exception as exc:  # protobuf raises DecodeError and friends on corrupt files
            raise ModelLoadError(
                f"{path}: not a readable ONNX file ({type(exc).__name__}: {exc}); "
                "is it truncated or in another format?"
            ) from exc
        source = path
    else:
        proto, source = model, getattr(getattr(model, "graph", None), "name", "") or "ONNX model"
    if not getattr(proto, "graph", None) or not proto.graph.node:
        raise ModelLoadError(f"{source}: the ONNX model has no nodes (empty or not a model file)")
    return _Converter(proto, source, input_shape, output).convert()
