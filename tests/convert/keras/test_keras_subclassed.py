"""Subclassed ``keras.Model``s whose ``call`` is made of Keras layers and ``keras.ops``: traced on symbolic inputs
into a functional graph and converted. Oracle: the subclassed model's own outputs (Keras)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the Keras converter tests need Keras")

from keras_helpers import assert_close  # noqa: E402

import k5  # noqa: E402
from k5.convert.keras import from_keras, to_keras  # noqa: E402
from k5.errors import ConversionError  # noqa: E402


class ConvNet(keras.Model):
    """Conv + BatchNorm + a residual Dense block with keras.ops arithmetic, and a Sequential head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = keras.layers.Conv2D(6, 3, padding="same", activation="relu")
        self.bn = keras.layers.BatchNormalization()
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.d1 = keras.layers.Dense(6)
        self.head = keras.Sequential([keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(3)])

    def call(self, x, training=False):
        h = self.pool(self.bn(self.conv(x), training=training))
        h = h + 0.5 * self.d1(h)
        return self.head(h)


class TwoInputs(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.a = keras.layers.Dense(4)
        self.b = keras.layers.Dense(4)
        self.cat = keras.layers.Concatenate()

    def call(self, inputs):  # no training argument
        x, y = inputs
        return self.cat([self.a(x), self.b(y)])


class Untraceable(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.d = keras.layers.Dense(2)

    def call(self, x):
        if float(keras.ops.convert_to_numpy(keras.ops.sum(x))) > 0:  # Python control flow on values
            return self.d(x)
        return -self.d(x)


def _randomize(model):
    rng = np.random.default_rng(3)
    for w in model.weights:
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
        else:
            w.assign((rng.standard_normal(w.shape) * 0.5).astype("float32"))
    return model


def test_subclassed_cnn_converts() -> None:
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 3)).astype("float32")
    model = ConvNet()
    model(x)  # built by a call: shapes come from the build
    _randomize(model)
    want = keras.ops.convert_to_numpy(model(x, training=False))
    converted = from_keras(model)  # default validation input from the traced shapes
    got = k5.run(converted, [x])[converted.graph.outputs[0].name]
    assert_close(got, want)
    ids = {n.id for n in converted.nodes}
    assert {model.conv.name, model.bn.name, model.d1.name} <= ids  # node ids are the Keras layer names
    back = to_keras(converted)
    assert_close(keras.ops.convert_to_numpy(back(x)), want)


def test_subclassed_two_inputs_with_example_inputs() -> None:
    keras.utils.set_random_seed(0)
    xs = [np.random.default_rng(i).standard_normal((3, 5)).astype("float32") for i in (1, 2)]
    model = TwoInputs()
    model(xs)
    _randomize(model)
    want = keras.ops.convert_to_numpy(model(xs))
    converted = from_keras(model, xs)
    got = k5.run(converted, xs)[converted.graph.outputs[0].name]
    assert_close(got, want)
    np.testing.assert_allclose(converted.validation.outputs[converted.graph.outputs[0].name], want, rtol=1e-6)


def test_untraceable_subclassed_refused_naming_the_class() -> None:
    model = Untraceable()
    x = np.ones((2, 4), "float32")
    model(x)
    with pytest.raises(ConversionError, match="Untraceable: its call\\(\\) cannot be traced"):
        from_keras(model, x)
    if getattr(model, "_build_shapes_dict", None) is None:  # Keras kept no build shapes for this one
        with pytest.raises(ConversionError, match="pass example_inputs"):
            from_keras(model)
