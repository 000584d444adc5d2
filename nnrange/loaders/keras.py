"""Keras 3 model -> layer graph.

Files are inspected before Keras sees them: the saved configuration is read as JSON and every
layer class is checked against ``LAYERS``, so Lambda and custom layers are refused (all of them
at once) without executing anything from the file. Only then is the model loaded with
``safe_mode=True`` and its weights read.

The graph uses Keras's own layout (channels last unless a layer says otherwise) and the
single-sample shape ``model.input_shape[1:]``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Callable

import numpy as np

from ..errors import ModelLoadError, UnsupportedOperatorError
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

_MODEL_CLASSES = {"Sequential", "Functional", "Model"}
_IDENTITY_LAYERS = {
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Identity",
}
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


class _Unsupported(Exception):
    pass


# ---------------------------------------------------------------------- activations
def _activation_nodes(name: str, x: str, act: str, source: str) -> list[Node]:
    """Layer-graph nodes computing the Keras activation ``act`` of tensor ``x``."""
    if act in ("linear", None):
        return []
    if act == "relu":
        return [Relu(name, [x], source=source)]
    if act == "relu6":
        return [Clip(name, [x], 0.0, 6.0, source=source)]
    if act == "leaky_relu":
        return [LeakyRelu(name, [x], 0.2, source=source)]
    if act == "sigmoid":
        return [Sigmoid(name, [x], source=source)]
    if act == "tanh":
        return [Tanh(name, [x], source=source)]
    if act == "softplus":
        return [Softplus(name, [x], source=source)]
    if act == "elu":
        return [Elu(name, [x], 1.0, source=source)]
    if act == "selu":
        return [
            Elu(name + "/elu", [x], _SELU_ALPHA, source=source),
            Affine(name, [name + "/elu"], scale=np.array(_SELU_SCALE), source=source, op="Scale"),
        ]
    if act == "hard_sigmoid":
        return [
            Affine(
                name + "/affine",
                [x],
                scale=np.array(1 / 6),
                shift=np.array(0.5),
                source=source,
                op="HardSigmoid",
            ),
            Clip(name, [name + "/affine"], 0.0, 1.0, source=source),
        ]
    if act == "softmax":
        return [Softmax(name, [x], -1, source=source)]
    raise _Unsupported(f"activation {act!r} is not supported")


SUPPORTED_ACTIVATIONS = {
    "linear",
    "relu",
    "relu6",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "softplus",
    "elu",
    "selu",
    "hard_sigmoid",
    "softmax",
}


def _activation_name(value) -> str:
    if value is None or isinstance(value, str):
        return value or "linear"
    if isinstance(value, dict):  # a serialised function object
        return value.get("config", value.get("class_name", "?"))
    return getattr(value, "__name__", repr(value))


# ---------------------------------------------------------------------- conversion context
class _Context:
    def __init__(self):
        self.nodes: list[Node] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.used: set[str] = set()

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def emit(self, node: Node) -> str:
        node.bind(tuple(self.shapes[i] for i in node.inputs))
        self.nodes.append(node)
        self.shapes[node.name] = node.out_shape
        return node.name

    def chain(self, nodes: list[Node], fallback: str) -> str:
        out = fallback
        for n in nodes:
            out = self.emit(n)
        return out


def _sample_axis(axis: int, ndim: int) -> int:
    """Keras axes count the batch axis; graph axes do not."""
    return axis + ndim if axis < 0 else axis - 1


def _tuple(v, n):
    return tuple(int(i) for i in v) if isinstance(v, (list, tuple)) else (int(v),) * n


def _window_for(layer, sp, kernel, strides, dilations, padding) -> Window:
    nsp = len(kernel)
    if padding == "valid":
        pb = pe = (0,) * nsp
    elif padding == "same":
        pb, pe = same_padding(sp, kernel, strides, dilations)
    elif padding == "causal":
        pb, pe = tuple(d * (k - 1) for k, d in zip(kernel, dilations, strict=True)), (0,) * nsp
    else:
        raise _Unsupported(f"padding={padding!r}")
    return Window(kernel, strides, dilations, pb, pe)


def _channels_last(layer) -> bool:
    return getattr(layer, "data_format", "channels_last") != "channels_first"


def _spatial(shape, nsp, channels_last):
    return shape[-nsp - 1 : -1] if channels_last else shape[-nsp:]


def _w(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)


# ---------------------------------------------------------------------- layer handlers
def _with_activation(ctx, layer, name, out):
    import keras

    fn = layer.activation
    if isinstance(fn, keras.layers.Layer):  # activation=LeakyReLU(0.1): a layer object
        return LAYERS[type(fn).__name__](ctx, fn, [out], ctx.unique(f"{name}/{fn.name}"))
    act = _activation_name(layer.get_config().get("activation"))
    nodes = _activation_nodes(ctx.unique(f"{name}/{act}"), out, act, layer.name)
    return ctx.chain(nodes, out)


def _dense(ctx, layer, xs, name):
    bias = _w(layer.bias) if layer.use_bias else None
    out = ctx.emit(Dense(name, xs, _w(layer.kernel), bias, source=layer.name))
    return _with_activation(ctx, layer, name, out)


def _conv(ctx, layer, xs, name):
    kernel = _w(layer.kernel)
    nsp = kernel.ndim - 2
    cl = _channels_last(layer)
    sp = _spatial(ctx.shapes[xs[0]], nsp, cl)
    k = tuple(kernel.shape[:nsp])
    window = _window_for(
        layer, sp, k, _tuple(layer.strides, nsp), _tuple(layer.dilation_rate, nsp), layer.padding
    )
    weight = np.transpose(kernel, (nsp + 1, nsp, *range(nsp)))
    bias = _w(layer.bias) if layer.use_bias else None
    out = ctx.emit(
        Conv(name, xs, weight, bias, window, getattr(layer, "groups", 1), cl, source=layer.name)
    )
    return _with_activation(ctx, layer, name, out)


def _depthwise_conv(ctx, layer, xs, name):
    kernel = _w(layer.kernel)  # (*k, C_in, multiplier)
    nsp = kernel.ndim - 2
    cl = _channels_last(layer)
    sp = _spatial(ctx.shapes[xs[0]], nsp, cl)
    k = tuple(kernel.shape[:nsp])
    c_in, mult = kernel.shape[-2:]
    window = _window_for(
        layer, sp, k, _tuple(layer.strides, nsp), _tuple(layer.dilation_rate, nsp), layer.padding
    )
    weight = np.moveaxis(kernel, (nsp, nsp + 1), (0, 1)).reshape(c_in * mult, 1, *k)
    bias = _w(layer.bias) if layer.use_bias else None
    out = ctx.emit(Conv(name, xs, weight, bias, window, c_in, cl, source=layer.name))
    return _with_activation(ctx, layer, name, out)


def _batchnorm(ctx, layer, xs, name):
    shape = ctx.shapes[xs[0]]
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    axes = [_sample_axis(a, len(shape)) if a >= 0 else a + len(shape) for a in axes]
    pshape = tuple(shape[i] if i in axes else 1 for i in range(len(shape)))
    mean, var = _w(layer.moving_mean), _w(layer.moving_variance)
    gamma = _w(layer.gamma) if layer.scale else np.ones_like(mean)
    beta = _w(layer.beta) if layer.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + layer.epsilon)
    shift = beta - mean * scale
    return ctx.emit(
        Affine(
            name,
            xs,
            scale.reshape(pshape),
            shift.reshape(pshape),
            source=layer.name,
            op="BatchNorm",
        )
    )


def _activation_layer(ctx, layer, xs, name):
    act = _activation_name(layer.get_config()["activation"])
    return ctx.chain(_activation_nodes(name, xs[0], act, layer.name), xs[0])


def _relu_layer(ctx, layer, xs, name):
    cfg = layer.get_config()
    slope, thr, top = (
        cfg.get("negative_slope", 0.0),
        cfg.get("threshold", 0.0),
        cfg.get("max_value"),
    )
    if thr:
        raise _Unsupported(f"threshold={thr} (a discontinuous ReLU) is not supported")
    first = (
        LeakyRelu(name if top is None else name + "/leaky", xs, slope, source=layer.name)
        if slope
        else Relu(name if top is None else name + "/relu", xs, source=layer.name)
    )
    out = ctx.emit(first)
    if top is not None:
        out = ctx.emit(Clip(name, [out], -np.inf if slope else 0.0, float(top), source=layer.name))
    return out


def _leaky_relu_layer(ctx, layer, xs, name):
    return ctx.emit(LeakyRelu(name, xs, layer.get_config()["negative_slope"], source=layer.name))


def _elu_layer(ctx, layer, xs, name):
    return ctx.emit(Elu(name, xs, layer.get_config().get("alpha", 1.0), source=layer.name))


def _softmax_layer(ctx, layer, xs, name):
    axis = layer.get_config().get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if not isinstance(axis, int):
        raise _Unsupported(f"softmax over several axes {axis}")
    ndim = len(ctx.shapes[xs[0]])
    return ctx.emit(
        Softmax(name, xs, _sample_axis(axis, ndim) if axis >= 0 else axis, source=layer.name)
    )


def _pool(kind):
    def handler(ctx, layer, xs, name):
        cl = _channels_last(layer)
        shape = ctx.shapes[xs[0]]
        nsp = len(shape) - 1
        sp = _spatial(shape, nsp, cl)
        size = _tuple(layer.pool_size, nsp)
        strides = _tuple(layer.strides if layer.strides is not None else size, nsp)
        window = _window_for(layer, sp, size, strides, (1,) * nsp, layer.padding)
        if kind == "max":
            return ctx.emit(MaxPool(name, xs, window, channels_last=cl, source=layer.name))
        return ctx.emit(
            AvgPool(name, xs, window, count_include_pad=False, channels_last=cl, source=layer.name)
        )

    return handler


def _global_pool(kind):
    def handler(ctx, layer, xs, name):
        cl = _channels_last(layer)
        shape = ctx.shapes[xs[0]]
        nsp = len(shape) - 1
        sp = _spatial(shape, nsp, cl)
        ones, zeros = (1,) * nsp, (0,) * nsp
        window = Window(tuple(sp), ones, ones, zeros, zeros)
        pooled = name if layer.keepdims else name + "/pool"
        node = (
            MaxPool(pooled, xs, window, channels_last=cl, source=layer.name)
            if kind == "max"
            else AvgPool(pooled, xs, window, channels_last=cl, source=layer.name)
        )
        out = ctx.emit(node)
        if layer.keepdims:
            return out
        channels = shape[-1] if cl else shape[0]
        return ctx.emit(Reshape(name, [out], (channels,), source=layer.name, op="Squeeze"))

    return handler


def _flatten(ctx, layer, xs, name):
    shape = ctx.shapes[xs[0]]
    x = xs[0]
    if not _channels_last(layer) and len(shape) > 1:
        x = ctx.emit(
            Transpose(
                name + "/to_channels_last", [x], (*range(1, len(shape)), 0), source=layer.name
            )
        )
    return ctx.emit(Reshape(name, [x], (int(np.prod(shape)),), source=layer.name, op="Flatten"))


def _reshape(ctx, layer, xs, name):
    shape = ctx.shapes[xs[0]]
    target = [int(d) for d in layer.target_shape]
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = int(np.prod(shape)) // max(known, 1)
    return ctx.emit(Reshape(name, xs, tuple(target), source=layer.name))


def _permute(ctx, layer, xs, name):
    return ctx.emit(Transpose(name, xs, [d - 1 for d in layer.dims], source=layer.name))


def _merge(coefficients):
    def handler(ctx, layer, xs, name):
        n = len(xs)
        return ctx.emit(Sum(name, xs, coefficients(n), source=layer.name))

    return handler


def _concatenate(ctx, layer, xs, name):
    ndim = len(ctx.shapes[xs[0]])
    axis = layer.axis
    return ctx.emit(
        Concat(name, xs, _sample_axis(axis, ndim) if axis >= 0 else axis, source=layer.name)
    )


def _zero_padding(sign):
    def handler(ctx, layer, xs, name):
        shape = ctx.shapes[xs[0]]
        nsp = len(shape) - 1
        cl = _channels_last(layer)
        spec = layer.padding if hasattr(layer, "padding") else layer.cropping
        pairs = [tuple(spec)] if nsp == 1 else [tuple(p) for p in spec]
        begin = [sign * int(p[0]) for p in pairs]
        end = [sign * int(p[1]) for p in pairs]
        begin, end = (begin + [0], end + [0]) if cl else ([0] + begin, [0] + end)
        return ctx.emit(Pad(name, xs, begin, end, 0.0, source=layer.name))

    return handler


def _rescaling(ctx, layer, xs, name):
    return ctx.emit(
        Affine(name, xs, _w(layer.scale), _w(layer.offset), source=layer.name, op="Rescaling")
    )


def _normalization(ctx, layer, xs, name):
    import keras

    mean, var = _w(layer.mean), _w(layer.variance)
    shape = ctx.shapes[xs[0]]
    mean = mean.reshape(mean.shape[1:] if mean.ndim > len(shape) else mean.shape)
    var = var.reshape(mean.shape)
    std = np.maximum(np.sqrt(var), keras.backend.epsilon())
    if getattr(layer, "invert", False):
        return ctx.emit(Affine(name, xs, std, mean, source=layer.name, op="Normalization"))
    return ctx.emit(Affine(name, xs, 1.0 / std, -mean / std, source=layer.name, op="Normalization"))


LAYERS: dict[str, Callable] = {
    "Dense": _dense,
    "Conv1D": _conv,
    "Conv2D": _conv,
    "Conv3D": _conv,
    "DepthwiseConv1D": _depthwise_conv,
    "DepthwiseConv2D": _depthwise_conv,
    "BatchNormalization": _batchnorm,
    "Activation": _activation_layer,
    "ReLU": _relu_layer,
    "LeakyReLU": _leaky_relu_layer,
    "ELU": _elu_layer,
    "Softmax": _softmax_layer,
    "MaxPooling1D": _pool("max"),
    "MaxPooling2D": _pool("max"),
    "MaxPooling3D": _pool("max"),
    "AveragePooling1D": _pool("avg"),
    "AveragePooling2D": _pool("avg"),
    "AveragePooling3D": _pool("avg"),
    "GlobalAveragePooling1D": _global_pool("avg"),
    "GlobalAveragePooling2D": _global_pool("avg"),
    "GlobalAveragePooling3D": _global_pool("avg"),
    "GlobalMaxPooling1D": _global_pool("max"),
    "GlobalMaxPooling2D": _global_pool("max"),
    "GlobalMaxPooling3D": _global_pool("max"),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Permute": _permute,
    "Add": _merge(lambda n: [1.0] * n),
    "Subtract": _merge(lambda n: [1.0, -1.0]),
    "Average": _merge(lambda n: [1.0 / n] * n),
    "Concatenate": _concatenate,
    "ZeroPadding1D": _zero_padding(1),
    "ZeroPadding2D": _zero_padding(1),
    "ZeroPadding3D": _zero_padding(1),
    "Cropping1D": _zero_padding(-1),
    "Cropping2D": _zero_padding(-1),
    "Cropping3D": _zero_padding(-1),
    "Rescaling": _rescaling,
    "Normalization": _normalization,
}


# ---------------------------------------------------------------------- config checks
def _layer_problem(class_name: str, config: dict, module: str | None) -> str | None:
    """Why a layer (from its saved or live config) cannot be converted, or None."""
    if class_name == "Lambda":
        return (
            "Lambda layers hold arbitrary Python code, which nnrange never runs or analyses; "
            "replace it with built-in layers"
        )
    if module is not None and not module.startswith("keras"):
        return f"custom layer from module '{module}' (only built-in Keras layers are supported)"
    if class_name in _MODEL_CLASSES or class_name == "InputLayer" or class_name in _IDENTITY_LAYERS:
        return None
    if class_name not in LAYERS:
        return "layer type not supported"
    act = config.get("activation")
    if isinstance(act, dict) and act.get("class_name") not in (None, "function"):
        return _activation_layer_problem(
            act["class_name"], act.get("config") or {}, act.get("module")
        )
    if act is not None and _activation_name(act) not in SUPPORTED_ACTIVATIONS:
        return f"activation {_activation_name(act)!r} is not supported"
    return None


#: Layers that may stand in a layer's ``activation=`` argument
_ACTIVATION_LAYERS = {"Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"}


def _activation_layer_problem(class_name: str, config: dict, module: str | None) -> str | None:
    """Why a layer object given as another layer's activation cannot be converted, or None."""
    if class_name not in _ACTIVATION_LAYERS:
        return f"layer {class_name} as an activation is not supported"
    reason = _layer_problem(class_name, config, module)
    return f"its activation layer {class_name}: {reason}" if reason else None


#: Where the activation functions live that nnrange reads by name: Keras's own, and
#: TensorFlow's under the same names and defaults (tf.nn.relu, tf.nn.leaky_relu's 0.2). Other
#: functions are refused whatever their name: a user's ``def relu(x)`` saves as "relu", and
#: jax.nn.leaky_relu's default slope is 0.01, not Keras's 0.2.
_BUILTIN_MODULES = ("keras.", "tensorflow.")


def _live_activation_problem(fn) -> str | None:
    """Why a live layer's activation cannot be read from its name, or None. The saved name
    alone is not trusted: a user's own ``def relu(x)`` saves as "relu"."""
    import keras

    if fn is None:
        return None
    if isinstance(fn, keras.layers.Layer):
        try:
            config = fn.get_config()
        except Exception:  # noqa: BLE001 - custom layers may not serialise at all
            config = {}
        return _activation_layer_problem(type(fn).__name__, config, type(fn).__module__)
    module = getattr(fn, "__module__", None) or ""
    if not module.startswith(_BUILTIN_MODULES):
        what = getattr(fn, "__name__", None) or type(fn).__name__
        return (
            f"activation {what!r} from module {module or 'unknown'!r} is not one of Keras's own "
            "functions, and nnrange never runs or analyses other code; use a Keras activation, "
            "or an activation layer such as ReLU(max_value=..., negative_slope=...)"
        )
    return None


def _dtype_problem(layer) -> str | None:
    """Why a layer's arithmetic is not the float model nnrange bounds, or None."""
    mode = getattr(layer, "quantization_mode", None)
    if mode:
        return (
            f"quantized ({mode}); nnrange bounds float models only: bound the model as it was "
            "before quantize()"
        )
    dtype = str(getattr(layer, "compute_dtype", "float32"))
    if dtype in ("float16", "bfloat16"):
        policy = getattr(getattr(layer, "dtype_policy", None), "name", dtype)
        return (
            f"computes in {dtype} (dtype policy {policy!r}), whose rounding nnrange's bounds do "
            "not cover; rebuild the model with float32 layers and copy its weights over "
            "(set_weights(get_weights()))"
        )
    return None


def _config_problems(cfg: dict, problems: list) -> None:
    """Walk a saved model configuration and collect unsupported layers."""
    class_name = cfg.get("class_name", "?")
    inner = cfg.get("config", {}) or {}
    if class_name not in _MODEL_CLASSES:
        module = cfg.get("module")
        registered = cfg.get("registered_name")
        if registered and registered != class_name and ">" in str(registered):
            module = module or "custom"
            problems.append(
                (class_name, inner.get("name", "?"), f"custom layer registered as '{registered}'")
            )
            return
        reason = _layer_problem(
            class_name, inner, module if module and module != "keras.layers" else None
        )
        if reason:
            problems.append((class_name, inner.get("name", "?"), reason))
        return
    for layer in inner.get("layers", []):
        _config_problems(layer, problems)


def _read_saved_config(path: str) -> dict:
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".keras":
            with zipfile.ZipFile(path) as zf:
                return json.loads(zf.read("config.json"))
        import h5py

        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            if raw is None:
                raise ModelLoadError(
                    f"{path}: this HDF5 file holds weights only, no model "
                    "configuration; save the whole model (model.save)"
                )
            return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"{path}: not a readable Keras {suffix} file ({type(exc).__name__}: "
            f"{exc}); is it truncated or in another format?"
        ) from exc


# ---------------------------------------------------------------------- model walking
def _live_problems(model, problems: list) -> None:
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            _live_problems(layer, problems)
            continue
        name = type(layer).__name__
        module = type(layer).__module__
        try:
            config = layer.get_config()
        except Exception:  # noqa: BLE001 - custom layers may not serialise at all
            config = {}
        reason = (
            _layer_problem(name, config, module)
            or _live_activation_problem(getattr(layer, "activation", None))
            or _dtype_problem(layer)
        )
        if reason:
            problems.append((name, layer.name, reason))


def _convert_layer(ctx: _Context, layer, xs: list[str]) -> str:
    import keras

    if isinstance(layer, keras.Model):
        return _convert_model(ctx, layer, xs)
    cls = type(layer).__name__
    if cls in _IDENTITY_LAYERS or cls == "InputLayer":
        return xs[0]
    name = ctx.unique(layer.name)
    try:
        return LAYERS[cls](ctx, layer, xs, name)
    except _Unsupported as exc:
        raise UnsupportedOperatorError([(cls, layer.name, str(exc))], "Keras model") from None


def _convert_model(ctx: _Context, model, xs: list[str]) -> str:
    import keras

    if isinstance(model, keras.Sequential):
        out = xs[0]
        for layer in model.layers:
            out = _convert_layer(ctx, layer, [out])
        return out
    if len(model.inputs) != len(xs) or len(model.outputs) != 1:
        raise ModelLoadError(
            f"Keras model '{model.name}': nnrange needs one input and one output, got "
            f"{len(model.inputs)} input(s) and {len(model.outputs)} output(s)"
        )
    names = {id(t): x for t, x in zip(model.inputs, xs, strict=True)}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            op = node.operation
            if isinstance(op, keras.layers.InputLayer):
                continue
            if not isinstance(op, keras.layers.Layer):
                raise UnsupportedOperatorError(
                    [
                        (
                            type(op).__name__,
                            getattr(op, "name", "?"),
                            "raw tensor operation in a functional model; use a Keras layer instead",
                        )
                    ],
                    "Keras model",
                )
            inputs = [names[id(t)] for t in node.input_tensors]
            if len(node.outputs) != 1:
                raise ModelLoadError(
                    f"Keras model: layer '{op.name}' has {len(node.outputs)} outputs; nnrange "
                    "follows one output per layer: put a nested model's layers into the outer "
                    "model directly, or give the nested model one output"
                )
            names[id(node.outputs[0])] = _convert_layer(ctx, op, inputs)
    return names[id(model.outputs[0])]


#: TensorFlow's C++ start-up lines (oneDNN, missing CUDA drivers): logged before absl is
#: initialised, so TF_CPP_MIN_LOG_LEVEL does not silence them
_TF_CHATTER = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "
)


def drop_tf_chatter(text: str) -> str:
    """``text`` without TensorFlow's C++ start-up log lines (info and warning level only)."""
    return "".join(line for line in text.splitlines(keepends=True) if not _TF_CHATTER.match(line))


def _import_keras():
    """Import Keras (and TensorFlow) with its C++ start-up chatter kept off stderr; anything
    else written there while importing, errors included, is passed on."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 to redirect
        import keras

        return keras
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            rest = drop_tf_chatter(captured.read().decode(errors="replace"))
            if rest:
                sys.stderr.write(rest)
    return keras


def load_keras(model, *, input_shape=None) -> Graph:
    """Convert a Keras 3 model (path to .keras/.h5, or an in-memory model) to a layer graph."""
    # TensorFlow's C++ start-up chatter (oneDNN, missing CUDA) says nothing about the model;
    # a level the user set stays theirs
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    source = "Keras model"
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        source = path
        problems: list = []
        _config_problems(_read_saved_config(path), problems)
        if problems:
            raise UnsupportedOperatorError(problems, path)
        keras = _import_keras()
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:
            raise ModelLoadError(
                f"{path}: Keras could not load the model ({type(exc).__name__}: {exc})"
            ) from exc
    keras = _import_keras()
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"expected a Keras Model, got {type(model).__name__}")
    # what runs is the graph of layers only while call() is Keras's own
    call_owner = next(c for c in type(model).__mro__ if "call" in vars(c))
    try:
        model.inputs  # noqa: B018 - unbuilt and subclassed models have none
        built = True
    except AttributeError:
        built = False
    if not built and isinstance(model, keras.Sequential):
        raise ModelLoadError(
            f"{source}: the Sequential model '{model.name}' has no input yet (it was never "
            "built); start it with keras.Input(shape), or call it once on data"
        )
    if not built or not call_owner.__module__.startswith("keras"):
        raise ModelLoadError(
            f"{source}: {type(model).__name__} is a subclassed Keras model: its call() is Python "
            "code, which nnrange never runs or analyses; rebuild it as a functional or "
            "Sequential model (keras.Input(...), then the same layers)"
        )
    problems = []
    _live_problems(model, problems)
    if problems:
        raise UnsupportedOperatorError(problems, source)
    if len(model.inputs) != 1:
        raise ModelLoadError(
            f"{source}: nnrange needs a model with one input, this one has {len(model.inputs)}"
        )
    if len(model.outputs) != 1:
        raise ModelLoadError(
            f"{source}: nnrange needs a model with one output, this one has "
            f"{len(model.outputs)}; bound the one you need as its own model, "
            "keras.Model(model.inputs, model.outputs[i])"
        )
    in_dtype = str(model.inputs[0].dtype)
    if in_dtype not in ("float32", "float64"):
        raise ModelLoadError(
            f"{source}: the model's input is {in_dtype}, so Keras rounds or truncates what it is "
            "given; nnrange bounds real-valued inputs. Give the model a float32 Input "
            "(keras.Input(shape, dtype='float32')) and cast inside it only if the cast is meant"
        )
    declared = tuple(model.inputs[0].shape[1:])
    shape = declared if input_shape is None else tuple(input_shape)
    if len(shape) != len(declared) or any(
        d is not None and s != d for s, d in zip(shape, declared, strict=True)
    ):
        raise ModelLoadError(
            f"{source}: input_shape {shape} does not fit the model's input {declared} (one "
            "sample, no batch axis): give every dimension, the known ones unchanged"
        )
    if any(d is None for d in shape):
        raise ModelLoadError(
            f"{source}: input shape {shape} has unknown dimensions; fix them in Python with "
            "nnrange.load(model, input_shape=...), every dimension given"
        )
    ctx = _Context()
    input_name = ctx.unique(model.inputs[0].name or "input")
    ctx.shapes[input_name] = tuple(int(d) for d in shape)
    try:
        out = _convert_model(ctx, model, [input_name])
    except (ValueError, IndexError) as exc:
        raise ModelLoadError(f"{source}: could not convert: {exc}") from exc
    if out == input_name:
        raise ModelLoadError(f"{source}: the model output is its input (no layers to bound)")
    return Graph(
        input_name, ctx.shapes[input_name], ctx.nodes, out, name=getattr(model, "name", "keras")
    )
