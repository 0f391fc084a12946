"""The Keras zoo: small models built in code with fixed seeds (test-only builders)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def randomize(model: Any, seed: int = 0) -> Any:
    """Give every weight seeded random values so no path outputs zeros (biases, BatchNorm statistics included);
    variances stay positive."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        new = []
        for w in layer.weights:
            arr = np.asarray(w.numpy() if hasattr(w, "numpy") else w)
            name = w.path if hasattr(w, "path") else w.name
            if "variance" in name or "gamma" in name:
                new.append(rng.uniform(0.5, 1.5, arr.shape).astype(arr.dtype))
            else:
                scale = 1.0 / np.sqrt(max(1, int(np.prod(arr.shape[:-1])) if arr.ndim > 1 else 4))
                new.append((rng.standard_normal(arr.shape) * scale).astype(arr.dtype))
        if new:
            layer.set_weights(new)
    return model


def mlp(keras: Any) -> Any:
    L = keras.layers
    return keras.Sequential([keras.Input((12,)), L.Dense(16, activation="relu"), L.Dropout(0.3),
                             L.Dense(16, activation="gelu"), L.LayerNormalization(),
                             L.Dense(5, activation="softmax")], name="mlp")


def cnn_bn(keras: Any) -> Any:
    L = keras.layers
    x = inp = keras.Input((16, 16, 3), name="image")
    x = L.Rescaling(1 / 2.0, offset=-0.5)(x)
    x = L.Conv2D(8, 3, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.MaxPooling2D()(x)
    x = L.ZeroPadding2D(((1, 0), (0, 1)))(x)
    y = L.Conv2D(8, 3, strides=2, padding="same", activation="swish")(x)
    z = L.Conv2D(8, 1, strides=2)(x)
    x = L.Add()([y, z])
    x = L.UpSampling2D()(x)
    x = L.AveragePooling2D(2)(x)
    x = L.Conv2DTranspose(6, 3, strides=2, padding="same", activation="tanh")(x)
    x = L.Flatten()(x)
    x = L.Dense(10)(x)
    return keras.Model(inp, x, name="cnn_bn")


def separable(keras: Any) -> Any:
    L = keras.layers
    x = inp = keras.Input((16, 16, 4))
    x = L.SeparableConv2D(8, 3, padding="same", depth_multiplier=2, activation="relu")(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=1)(x)
    x = L.Conv2D(12, 3, dilation_rate=2, groups=4)(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(3)(x)
    return keras.Model(inp, x, name="separable")


def conv1d(keras: Any) -> Any:
    L = keras.layers
    x = inp = keras.Input((20, 6))
    x = L.Conv1D(8, 3, padding="causal", activation="elu")(x)
    x = L.SeparableConv1D(8, 3, padding="same")(x)
    x = L.MaxPooling1D(2)(x)
    x = L.Cropping1D((1, 2))(x)
    x = L.UpSampling1D(2)(x)
    x = L.GlobalMaxPooling1D()(x)
    return keras.Model(inp, x, name="conv1d")


def rnn(keras: Any) -> Any:
    L = keras.layers
    x = inp = keras.Input((7, 5))
    x = L.LSTM(8, return_sequences=True)(x)
    x = L.GRU(6, return_sequences=True)(x)
    x = L.Bidirectional(L.LSTM(4, return_sequences=True))(x)
    x = L.Bidirectional(L.GRU(3), merge_mode="sum")(x)
    a = L.SimpleRNN(5)(inp)
    x = L.Concatenate()([x, a])
    return keras.Model(inp, x, name="rnn")


def transformer(keras: Any) -> Any:
    L = keras.layers
    x = inp = keras.Input((6, 16))
    a = L.MultiHeadAttention(num_heads=4, key_dim=4)(x, x)
    x = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, a]))
    f = L.Dense(32, activation="relu")(x)
    f = L.Dense(16)(f)
    x = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, f]))
    x = L.GlobalAveragePooling1D()(x)
    return keras.Model(inp, x, name="transformer")


def text_classifier(keras: Any) -> Any:
    L = keras.layers
    x = inp = keras.Input((10,), dtype="int32", name="tokens")
    x = L.Embedding(50, 8)(x)
    x = L.Conv1D(8, 3, activation="relu")(x)
    x = L.GlobalAveragePooling1D()(x)
    x = L.Dense(4, activation="sigmoid")(x)
    return keras.Model(inp, x, name="text_classifier")


def shapes(keras: Any) -> Any:
    L = keras.layers
    x = inp = keras.Input((4, 6, 2))
    p = L.Permute((3, 1, 2))(x)
    p = L.Reshape((2, 24))(p)
    c = L.Conv2D(3, 1)(x)
    c = L.Reshape((24, 3))(c)
    c = L.Permute((2, 1))(c)
    y = L.Concatenate(axis=1)([p, c])
    y = L.Activation("hard_sigmoid")(y)
    m = L.Multiply()([y, y])
    s = L.Subtract()([m, y])
    av = L.Average()([s, y, m])
    mx = L.Maximum()([av, s])
    r = L.RepeatVector(2)(L.Flatten()(mx))
    return keras.Model(inp, r, name="shapes")


def gru_v1(keras: Any) -> Any:
    """Keras 2's GRU (reset before the recurrent product): ONNX's linear_before_reset=0, which to_torch refuses."""
    L = keras.layers
    x = inp = keras.Input((6, 4))
    x = L.GRU(5, reset_after=False, return_sequences=True)(x)
    x = L.SimpleRNN(3, activation="relu", go_backwards=True, return_sequences=True)(x)
    return keras.Model(inp, x, name="gru_v1")


def misc(keras: Any) -> Any:
    """Layers the other models do not cover."""
    L = keras.layers
    x = inp = keras.Input((8, 8, 4))
    x = L.Normalization(mean=[0.1, 0.2, 0.3, 0.4], variance=[1.0, 2.0, 0.5, 1.5])(x)
    x = L.Cropping2D(((1, 0), (0, 1)))(x)
    x = L.Resizing(10, 10)(x)
    x = L.GroupNormalization(groups=2)(x)
    x = L.PReLU()(x)
    x = L.Conv2D(6, 3, strides=2, padding="same")(x)
    x = L.LeakyReLU(negative_slope=0.1)(x)
    x = L.ELU(alpha=0.5)(x)
    g = L.GlobalMaxPooling2D(keepdims=True)(x)
    x = L.Multiply()([x, g])
    v = L.Reshape((1, 5, 5, 6))(x)
    v = L.Conv3D(3, (1, 3, 3), padding="same", activation="mish")(v)
    x = L.Reshape((25, 3))(v)
    x = L.Conv1DTranspose(4, 3, strides=2, padding="same")(x)
    x = L.DepthwiseConv1D(3, padding="same", depth_multiplier=2)(x)
    x = L.Softmax(axis=1)(x)
    return keras.Model(inp, x, name="misc")


def nested(keras: Any) -> Any:
    """Transfer-learning shape: a functional backbone and a Sequential head used as layers of a model."""
    L = keras.layers
    b_in = keras.Input((12, 12, 3))
    b = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(b_in)
    b = L.BatchNormalization()(b)
    backbone = keras.Model(b_in, L.DepthwiseConv2D(3, padding="same")(b), name="backbone")
    head = keras.Sequential([L.Dense(6, activation="relu"), L.Dropout(0.2), L.Dense(3)], name="head")
    inp = keras.Input((12, 12, 3), name="pixels")
    x = backbone(L.Rescaling(1 / 4.0)(inp))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, head(x), name="nested")


#: models to_torch cannot run, with the reason (checked to raise the named error)
NOT_TORCH = {"gru_v1": "linear_before_reset=0"}

ZOO: dict[str, Callable[[Any], Any]] = {
    "mlp": mlp, "cnn_bn": cnn_bn, "separable": separable, "conv1d": conv1d, "rnn": rnn,
    "transformer": transformer, "text_classifier": text_classifier, "shapes": shapes,
    "gru_v1": gru_v1,
    "misc": misc,
    "nested": nested,
}
