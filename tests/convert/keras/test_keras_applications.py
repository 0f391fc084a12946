"""keras.applications models (random init, small inputs) through k5, compared with Keras' own outputs.

MobileNetV2 runs in the default tier; the other families (EfficientNet, DenseNet, MobileNetV3, ResNet) are slow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

keras = pytest.importorskip("keras", reason="the Keras converter tests need keras")

from keras_helpers import assert_close  # noqa: E402
from keras_zoo import randomize  # noqa: E402

import k5  # noqa: E402

_SHAPE = (32, 32, 3)


def _apps() -> dict[str, Callable[[], Any]]:
    A = keras.applications
    return {
        "MobileNetV2": lambda: A.MobileNetV2(input_shape=_SHAPE, alpha=0.35, weights=None, classes=10),
        "MobileNetV3Small": lambda: A.MobileNetV3Small(input_shape=_SHAPE, alpha=0.75, weights=None, classes=10),
        "EfficientNetB0": lambda: A.EfficientNetB0(input_shape=_SHAPE, weights=None, classes=10),
        "DenseNet121": lambda: A.DenseNet121(input_shape=_SHAPE, weights=None, classes=10),
        "ResNet50": lambda: A.ResNet50(input_shape=_SHAPE, weights=None, classes=10),
    }


def _check(name: str) -> None:
    keras.utils.set_random_seed(0)
    model = k5.from_keras(randomize(_apps()[name]()))
    want = model.validation.outputs[model.output_names()[0]]
    assert sum(n.op == "Transpose" for n in model.nodes) == 1  # NHWC -> NCHW once, at the input
    assert_close(k5.run(model, model.validation.inputs)[model.output_names()[0]], want)
    ort = pytest.importorskip("onnxruntime", reason="the ONNX path needs onnxruntime")
    sess = ort.InferenceSession(k5.to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
    assert_close(sess.run(None, dict(model.validation.inputs))[0], want)
    torch = pytest.importorskip("torch", reason="the PyTorch path needs torch")
    with torch.no_grad():
        got = k5.to_torch(model)(torch.from_numpy(model.validation.inputs[model.input_names()[0]]))
    assert_close(got.numpy(), want)


def test_mobilenet_v2() -> None:
    _check("MobileNetV2")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["MobileNetV3Small", "EfficientNetB0", "DenseNet121", "ResNet50"])
def test_application(name: str) -> None:
    _check(name)
