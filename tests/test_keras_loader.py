"""Keras loader: every supported layer matches Keras itself, from memory, .keras and .h5 files and
through Keras's own ONNX export; unsafe or unsupported models are refused without running code."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import ROOT, close
from keras_zoo import NAMES, NOT_EXPORTABLE

import nnrange

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def zoo(keras_zoo):
    return keras_zoo


def _inputs(model, seed=0, n=4):
    return (
        np.random.default_rng(seed).normal(size=(n, *model.inputs[0].shape[1:])).astype("float32")
    )


def _check_same(graph, model, x):
    expected = np.asarray(model(x))
    got = graph.forward(x.astype(np.float64)).reshape(expected.shape)
    assert close(got, expected), float(np.max(np.abs(got - expected)))


EXPORTABLE = [n for n in NAMES if n not in NOT_EXPORTABLE]


@pytest.mark.parametrize("name", NAMES)
def test_in_memory_model_matches_keras(zoo, name):
    model = zoo[name]
    _check_same(nnrange.load(model), model, _inputs(model))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_saved_file_matches_keras(zoo, name, suffix, tmp_path):
    model = zoo[name]
    path = tmp_path / f"{name}{suffix}"
    model.save(path)
    _check_same(nnrange.load(path), model, _inputs(model, 1))


@pytest.mark.parametrize("name", EXPORTABLE)
def test_keras_onnx_export_matches_keras(zoo, name, tmp_path):
    pytest.importorskip("tf2onnx")
    model = zoo[name]
    x = _inputs(model, 2)
    model(x[:1])
    path = tmp_path / f"{name}.onnx"
    model.export(str(path), format="onnx", verbose=False)
    graph = nnrange.load(path)
    _check_same(graph, model, x[:1])  # the exported graph has a batch axis of one


def test_bounds_contain_keras_outputs(zoo):
    model = zoo["cnn2d"]
    x = _inputs(model, 3, 64)
    lo, hi = x.min(axis=0), x.max(axis=0)
    r = nnrange.bounds(model, lo, hi, inner={"samples": 10})
    y = np.asarray(model(x)).astype(np.float64)
    slack = 1e-5 * (1 + np.abs(y))
    assert np.all(y >= r.lower - slack) and np.all(y <= r.upper + slack)


def _lambda_model():
    from keras import layers as L

    return keras.Sequential(
        [
            keras.Input((3,)),
            L.Dense(2),
            L.Lambda(lambda t: t * 2),
            L.Dense(1),
            L.Lambda(lambda t: t + 1),
        ]
    )


def test_lambda_refused_in_memory():
    with pytest.raises(
        nnrange.UnsupportedOperatorError, match="(?s)2 unsupported.*Lambda.*Python code"
    ):
        nnrange.load(_lambda_model())


def test_lambda_file_refused_without_running_code(tmp_path):
    """The saved config is checked before Keras deserialises anything from the file."""
    path = tmp_path / "lam.keras"
    _lambda_model().save(path)
    code = (
        "import sys, nnrange\n"
        f"try:\n    nnrange.load({str(path)!r})\n"
        "except nnrange.UnsupportedOperatorError as e:\n    print('refused', len(e.problems))\n"
        "print('keras imported' if 'keras' in sys.modules else 'keras not imported')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "refused 2" in out.stdout and "keras not imported" in out.stdout


def test_custom_layer_refused(tmp_path):
    @keras.saving.register_keras_serializable(package="userpkg")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), Twice()])
    with pytest.raises(nnrange.UnsupportedOperatorError, match="Twice.*custom layer"):
        nnrange.load(model)
    path = tmp_path / "custom.keras"
    model.save(path)
    with pytest.raises(nnrange.UnsupportedOperatorError, match="Twice.*custom layer"):
        nnrange.load(path)


def test_unsupported_layer_and_activation_listed(tmp_path):
    from keras import layers as L

    model = keras.Sequential(
        [
            keras.Input((4, 3)),
            L.LSTM(2, return_sequences=True),
            L.Dense(3, activation="gelu"),
            L.Flatten(),
            L.Dense(1),
        ]
    )
    with pytest.raises(nnrange.UnsupportedOperatorError) as info:
        nnrange.load(model)
    text = str(info.value)
    assert "LSTM" in text and "'gelu'" in text


def test_corrupt_keras_file(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(nnrange.ModelLoadError, match="broken.keras: not a readable Keras"):
        nnrange.load(path)


def test_keras_file_without_config(tmp_path):
    path = tmp_path / "noconf.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({}))
    with pytest.raises(nnrange.ModelLoadError, match="noconf.keras"):
        nnrange.load(path)


def test_importing_nnrange_does_not_import_tensorflow():
    code = "import sys, nnrange; nnrange.load; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_loading_a_keras_file_keeps_tensorflow_start_up_chatter_off_stderr():
    """TensorFlow logs oneDNN and missing-CUDA lines from C++ before absl starts, which
    TF_CPP_MIN_LOG_LEVEL does not reach; a user loading a model should see none of them."""
    code = (
        "import sys, nnrange\n"
        "nnrange.load('models/mlp.keras')\n"
        "print('loaded', 'keras' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "loaded True"
    assert "absl::InitializeLog" not in out.stderr and "I0000" not in out.stderr, out.stderr


def test_tf_chatter_filter_passes_everything_else():
    from nnrange.loaders.keras import drop_tf_chatter

    # lines as TensorFlow 2.21 printed them on this machine
    chatter = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1795888244.140507     790 port.cc:153] oneDNN custom operations are on.\n"
        "I0000 00:00:1795888244.140873     790 cudart_stub.cc:31] Could not find cuda drivers\n"
    )
    kept = (
        "E0000 00:00:1795888244.1 790 cuda_dnn.cc:8310] Unable to register cuDNN factory\n"
        "Traceback (most recent call last):\n"
        "ImportError: libcudart.so.12: cannot open shared object file\n"
        "UserWarning: I0000 in a message is not a log line\n"
    )
    assert drop_tf_chatter(chatter + kept) == kept


def test_activation_functions_are_read_by_what_they_are_not_by_their_name(tmp_path):
    """A user's own ``def relu(x)`` (a leaky one here) saves as "relu"; a partial of a
    built-in cannot be serialised: both are refused, naming the layer; TensorFlow's own
    functions and activation layer objects load and match Keras."""
    import functools

    L = keras.layers

    def relu(x):
        return keras.ops.maximum(x, 0.5 * x)

    for act, why in (
        (relu, "'relu' from module"),
        (functools.partial(keras.activations.relu, max_value=0.5), "'partial' from module"),
    ):
        model = keras.Sequential([keras.Input((2,)), L.Dense(3, activation=act), L.Dense(1)])
        with pytest.raises(nnrange.UnsupportedOperatorError, match=f"Dense.*{why}"):
            nnrange.load(model)
    tf = pytest.importorskip("tensorflow")
    model = keras.Sequential(
        [
            keras.Input((3,)),
            L.Dense(4, activation=tf.nn.relu),
            L.Dense(4, activation=L.LeakyReLU(negative_slope=0.1)),
            L.Dense(2),
        ]
    )
    path = tmp_path / "act_layer.keras"
    model.save(path)
    x = _inputs(model, seed=3, n=16)
    for source in (model, path):
        graph = nnrange.load(source)
        assert [n.op for n in graph].count("LeakyRelu") == 1
        _check_same(graph, model, x)


def test_quantized_half_precision_and_integer_input_models_are_refused(tmp_path):
    """Their arithmetic is not the float model nnrange bounds: an int8 Dense read as float
    is off by its scale (point-box bounds of -6095 where Keras gives -0.09)."""
    L = keras.layers
    model = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="relu"), L.Dense(2)])
    model.quantize("int8")
    path = tmp_path / "int8.keras"
    model.save(path)
    for source in (model, path):
        with pytest.raises(nnrange.UnsupportedOperatorError, match=r"Dense.*quantized \(int8\)"):
            nnrange.load(source)
    half = keras.Sequential([keras.Input((4,)), L.Dense(2, dtype="mixed_float16")])
    with pytest.raises(nnrange.UnsupportedOperatorError, match="computes in float16"):
        nnrange.load(half)
    ints = keras.Sequential([keras.Input((4,), dtype="int32"), L.Dense(2)])
    with pytest.raises(nnrange.ModelLoadError, match="input is int32"):
        nnrange.load(ints)


def test_subclassed_unbuilt_and_functional_subclass_models():
    """A functional model built in a subclass's __init__ loads (it is a Keras model, not an
    unknown object); one whose call() is overridden, a subclassed model and an unbuilt
    Sequential are refused with what to do."""
    L = keras.layers

    class Built(keras.Model):
        def __init__(self):
            x = keras.Input((4,))
            super().__init__(x, L.Dense(2)(L.Dense(3, activation="relu")(x)))

    model = Built()
    _check_same(nnrange.load(model), model, _inputs(model, n=8))

    class Doubled(Built):
        def call(self, x):
            return 2 * super().call(x)

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = L.Dense(2)

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub(np.zeros((1, 4), np.float32))
    for m in (Doubled(), sub):
        with pytest.raises(nnrange.ModelLoadError, match="subclassed Keras model.*functional"):
            nnrange.load(m)
    with pytest.raises(nnrange.ModelLoadError, match="no input yet.*keras.Input"):
        nnrange.load(keras.Sequential([L.Dense(3)]), input_shape=(4,))


def test_input_shape_fills_unknown_dimensions_and_must_fit_the_rest():
    L = keras.layers
    model = keras.Sequential(
        [keras.Input((None, 3)), L.Conv1D(4, 3, padding="same"), L.GlobalMaxPooling1D()]
    )
    assert nnrange.load(model, input_shape=(8, 3)).input_shape == (8, 3)
    for wrong in ((8,), (8, 4), (1, 8, 3)):
        with pytest.raises(nnrange.ModelLoadError, match=r"does not fit the model's input"):
            nnrange.load(model, input_shape=wrong)
