"""The Keras layer zoo: small models that together use every supported Keras layer, with random
weights and non-trivial BatchNorm statistics. ``build_all()`` returns ``{name: model}``."""

from __future__ import annotations

import numpy as np


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.normal(size=w.shape) * 0.5
        if "variance" in w.path:
            value = np.abs(value) + 0.5
        w.assign(value.astype("float32"))
    return model


#: Every model ``build_all()`` returns.
NAMES = [
    "mlp_activations",
    "cnn2d",
    "cnn1d",
    "cnn3d",
    "channels_first",
    "functional_merge",
    "residual_depthwise",
    "preprocessing",
    "elu_alpha",
    "grouped_conv",
]

#: Models Keras's ONNX export (tf2onnx) cannot write as plain ONNX, and why.
NOT_EXPORTABLE = {
    "elu_alpha": "tf2onnx writes ELU with alpha != 1 as Greater/Not/Where ops",
    "grouped_conv": "tf2onnx leaves grouped convolutions as a StatefulPartitionedCall",
    "preprocessing": "the exporter leaves Normalization's statistics as extra graph inputs",
}


def build_all():
    import keras
    from keras import layers as L

    models = {}
    models["mlp_activations"] = keras.Sequential(
        [
            keras.Input((6,)),
            L.Dense(5, activation="relu"),
            L.Dense(5, activation="tanh"),
            L.BatchNormalization(),
            L.Dense(4, activation="sigmoid"),
            L.Dense(4, activation="softplus"),
            L.Dense(4, activation="hard_sigmoid"),
            L.Dense(4, activation="elu"),
            L.Dense(4, activation="leaky_relu"),
            L.Dense(4, activation="selu"),
            L.Dense(4, activation="relu6"),
            L.Dense(4, activation="linear", use_bias=False),
            L.Activation("tanh"),
            L.ReLU(max_value=1.5, negative_slope=0.1),
            L.LeakyReLU(0.3),
            L.ELU(),
            L.Dropout(0.5),
            L.Dense(3),
            L.Softmax(),
        ],
        name="mlp_activations",
    )
    models["grouped_conv"] = keras.Sequential(
        [
            keras.Input((6, 6, 4)),
            L.Conv2D(6, 3, groups=2, padding="same"),
            L.Flatten(),
            L.Dense(2),
        ],
        name="grouped_conv",
    )
    models["elu_alpha"] = keras.Sequential(
        [keras.Input((4,)), L.Dense(3), L.ELU(0.7), L.Dense(2)], name="elu_alpha"
    )
    models["cnn2d"] = keras.Sequential(
        [
            keras.Input((10, 9, 3)),
            L.ZeroPadding2D(((1, 2), (0, 1))),
            L.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
            L.BatchNormalization(),
            L.MaxPooling2D(2, padding="same"),
            L.Conv2D(4, 2, padding="valid"),
            L.AveragePooling2D(2, strides=1, padding="same"),
            L.Cropping2D(((1, 0), (0, 1))),
            L.Flatten(),
            L.Dense(3),
        ],
        name="cnn2d",
    )
    models["cnn1d"] = keras.Sequential(
        [
            keras.Input((12, 3)),
            L.Conv1D(4, 3, padding="causal", dilation_rate=2),
            L.ReLU(max_value=6.0),
            L.MaxPooling1D(2),
            L.ZeroPadding1D((1, 0)),
            L.AveragePooling1D(2),
            L.GlobalAveragePooling1D(),
        ],
        name="cnn1d",
    )
    models["cnn3d"] = keras.Sequential(
        [
            keras.Input((5, 6, 4, 2)),
            L.Conv3D(3, 2, padding="same", activation="tanh"),
            L.BatchNormalization(axis=-1),
            L.MaxPooling3D(2),
            L.ZeroPadding3D(1),
            L.AveragePooling3D(2, padding="valid"),
            L.GlobalMaxPooling3D(),
        ],
        name="cnn3d",
    )
    models["channels_first"] = keras.Sequential(
        [
            keras.Input((3, 8, 7)),
            L.Conv2D(4, 3, data_format="channels_first"),
            L.BatchNormalization(axis=1),
            L.MaxPooling2D(2, data_format="channels_first"),
            L.Flatten(data_format="channels_first"),
            L.Dense(2),
        ],
        name="channels_first",
    )
    inp = keras.Input((8,))
    a = L.Dense(6, activation="relu")(inp)
    b = L.Dense(6)(inp)
    c = L.Add()([a, b])
    d = L.Subtract()([c, a])
    e = L.Concatenate()([d, a])
    f = L.Reshape((3, 4))(e)
    g = L.Permute((2, 1))(f)
    h = L.Flatten()(g)
    o = L.Average()([L.Dense(3)(h), L.Dense(3)(h)])
    models["functional_merge"] = keras.Model(inp, o, name="functional_merge")
    inp = keras.Input((6, 6, 2))
    x = L.Conv2D(2, 3, padding="same", activation="relu")(inp)
    x = L.Add()([x, inp])
    x = L.DepthwiseConv2D(3, depth_multiplier=2)(x)
    x = L.GlobalAveragePooling2D(keepdims=True)(x)
    x = L.Reshape((4,))(x)
    models["residual_depthwise"] = keras.Model(inp, L.Dense(2)(x), name="residual_depthwise")
    models["preprocessing"] = keras.Sequential(
        [
            keras.Input((5,)),
            L.Rescaling(2.0, offset=-1.0),
            L.Normalization(mean=[1.0, 2, 3, 4, 5], variance=[1.0, 2, 3, 4, 5]),
            L.GaussianNoise(0.1),
            L.Dense(2, activation="sigmoid"),
        ],
        name="preprocessing",
    )
    for k, m in enumerate(models.values()):
        _randomize(m, k)
    return models
