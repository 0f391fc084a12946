"""The Keras zoo through every path, each compared with Keras' own outputs (the oracle):

- ``runtime``: Keras -> k5 -> the NumPy reference runtime;
- ``torch``: Keras -> k5 -> file -> ``to_torch``;
- ``onnx``: Keras -> k5 -> ONNX -> onnxruntime;
within 1e-4 of the output's scale. The validation pair is Keras' output for a seeded input.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the Keras converter tests need keras")

from keras_helpers import assert_close, converted, keras_model  # noqa: E402
from keras_zoo import NOT_TORCH, ZOO  # noqa: E402

import k5  # noqa: E402

NAMES = sorted(ZOO)


@pytest.mark.parametrize("name", NAMES)
def test_validation_pair_is_keras_output(name: str) -> None:
    model = converted(name)
    ref = keras_model(name)
    xs = [model.validation.inputs[t.name] for t in model.graph.inputs]
    out = ref(xs[0] if len(xs) == 1 else xs, training=False)
    outs = out if isinstance(out, (list, tuple)) else [out]
    for info, want in zip(model.graph.outputs, outs, strict=True):
        np.testing.assert_array_equal(model.validation.outputs[info.name], keras.ops.convert_to_numpy(want))


@pytest.mark.parametrize("name", NAMES)
def test_k5_runtime(name: str) -> None:
    model = converted(name)
    out = k5.run(model, model.validation.inputs)
    for info in model.graph.outputs:
        assert_close(out[info.name], model.validation.outputs[info.name])


@pytest.mark.parametrize("name", NAMES)
def test_to_torch_through_file(name: str, tmp_path) -> None:
    torch = pytest.importorskip("torch", reason="the PyTorch path needs torch")
    model = converted(name)
    path = tmp_path / f"{name}.k5"
    k5.save(model, path)
    if name in NOT_TORCH:
        with k5.load(path) as loaded, pytest.raises(k5.K5Error, match=NOT_TORCH[name]):
            k5.to_torch(loaded)
        return
    with k5.load(path) as loaded:
        module = k5.to_torch(loaded)
    with torch.no_grad():
        out = module(*(torch.from_numpy(model.validation.inputs[t.name]) for t in model.graph.inputs))
    outs = out if isinstance(out, tuple) else (out,)
    for info, got in zip(model.graph.outputs, outs, strict=True):
        assert_close(got.numpy(), model.validation.outputs[info.name])


@pytest.mark.parametrize("name", NAMES)
def test_onnxruntime(name: str) -> None:
    ort = pytest.importorskip("onnxruntime", reason="the ONNX path needs onnxruntime")
    model = converted(name)
    sess = ort.InferenceSession(k5.to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(None, dict(model.validation.inputs))
    for info, got in zip(model.graph.outputs, outs, strict=True):
        assert_close(got, model.validation.outputs[info.name])


def test_node_ids_are_layer_names() -> None:
    model = converted("cnn_bn")
    ids = {n.id for n in model.nodes}
    for layer in keras_model("cnn_bn").layers:
        if type(layer).__name__ not in ("InputLayer",):
            assert layer.name in ids, layer.name
    conv = model.graph.node("conv2d")
    assert conv.op == "Conv" and conv.weights["weight"].shape == (8, 3, 3, 3)  # [out, in, kH, kW]


def test_layout_one_transpose_and_nhwc_interface() -> None:
    """A CNN pays one Transpose (NHWC -> NCHW at the input); Flatten's NHWC order is folded into the Dense."""
    model = converted("cnn_bn")
    transposes = [n for n in model.nodes if n.op == "Transpose"]
    assert len(transposes) == 1 and transposes[0].attrs["perm"] == [0, 3, 1, 2]
    assert model.graph.inputs[0].shape == ["batch", 16, 16, 3]
    assert model.validation.inputs["image"].shape == (2, 16, 16, 3)


def test_flatten_without_fold_keeps_nhwc_order() -> None:
    """A Flatten of a channels-first value read by a non-Dense layer goes back to NHWC order first."""
    L = keras.layers
    keras.utils.set_random_seed(1)
    inp = keras.Input((4, 5, 3))
    x = L.Conv2D(2, 3, padding="same")(inp)
    out = L.Activation("softmax")(L.Flatten()(x))
    m = keras.Model(inp, out)
    model = k5.from_keras(m)
    got = k5.run(model, model.validation.inputs)
    assert_close(got[model.output_names()[0]], model.validation.outputs[model.output_names()[0]])
