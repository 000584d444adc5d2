"""Build the example models shipped in models/ as both .keras and .onnx files.

    python models/build_models.py            # rewrites every model next to this script

Deterministic: fixed seeds, fixed data, single-threaded training. The ONNX files come from
Keras's own exporter (``model.export(format="onnx")``, through tf2onnx), the same route users
take, so the shipped files also exercise the loader on real exporter output.

Models (inputs in [0, 1] for the three small examples):
- example_sum:       Dense(1, no bias), weights [1, 1]        -> exact range [0, 2]
- example_diff:      Dense(1, no bias), weights [-0.5, 1]     -> exact range [-0.5, 1]
- example_two_layer: Dense(2, ones) then Dense(1, [1, 1])     -> exact range [0, 4]
- mlp:  2 -> 16 -> 16 -> 1 ReLU regressor of sin(3 x0) * cos(2 x1) on [-1, 1]^2
- cnn:  8x8x1 images -> Conv(4, 3x3) ReLU -> MaxPool 2 -> Dense(2): is the bright bar
        horizontal or vertical?
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent


def _examples(keras):
    from keras import layers

    def fixed(name, weights_list, units_list):
        model = keras.Sequential(name=name)
        model.add(keras.Input((2,)))
        for units in units_list:
            model.add(layers.Dense(units, use_bias=False))
        for layer, w in zip(model.layers, weights_list, strict=True):
            layer.set_weights([np.asarray(w, dtype="float32")])
        return model

    return {
        "example_sum": fixed("example_sum", [[[1.0], [1.0]]], [1]),
        "example_diff": fixed("example_diff", [[[-0.5], [1.0]]], [1]),
        "example_two_layer": fixed("example_two_layer", [np.ones((2, 2)), [[1.0], [1.0]]], [2, 1]),
    }


def _mlp(keras):
    from keras import layers

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(2048, 2)).astype("float32")
    y = (np.sin(3 * x[:, 0]) * np.cos(2 * x[:, 1]))[:, None].astype("float32")
    model = keras.Sequential(
        [
            keras.Input((2,)),
            layers.Dense(16, activation="relu"),
            layers.Dense(16, activation="relu"),
            layers.Dense(1),
        ],
        name="mlp",
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(x, y, epochs=60, batch_size=128, verbose=0, shuffle=False)
    return model


def _cnn(keras):
    from keras import layers

    rng = np.random.default_rng(1)
    n = 512
    images = rng.uniform(0, 0.2, size=(n, 8, 8, 1))
    labels = rng.integers(0, 2, size=n)
    pos = rng.integers(1, 7, size=n)
    for i in range(n):
        if labels[i]:
            images[i, :, pos[i], 0] += 0.8
        else:
            images[i, pos[i], :, 0] += 0.8
    images = np.clip(images, 0, 1).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(2),
        ],
        name="cnn",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(images, labels, epochs=20, batch_size=64, verbose=0, shuffle=False)
    return model


def build(out_dir: Path = HERE) -> list[Path]:
    """Build every example model into ``out_dir``; returns the written paths."""
    import keras
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    models = _examples(keras)
    models["mlp"] = _mlp(keras)
    models["cnn"] = _cnn(keras)
    written = []
    for name, model in models.items():
        model(np.zeros((1, *model.inputs[0].shape[1:]), dtype="float32"))
        keras_path = out_dir / f"{name}.keras"
        onnx_path = out_dir / f"{name}.onnx"
        model.save(keras_path)
        model.export(str(onnx_path), format="onnx", verbose=False)
        written += [keras_path, onnx_path]
    return written


if __name__ == "__main__":
    for path in build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
