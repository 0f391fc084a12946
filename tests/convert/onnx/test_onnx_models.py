"""Real-size models (ResNet-18, a transformer encoder) built with PyTorch and exported with torch.onnx.export:
ONNX -> k5 runtime and ONNX -> k5 -> ONNX -> onnxruntime, both against onnxruntime on the original (and PyTorch)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from _models.torch_real import REAL_MODELS, export_onnx  # noqa: E402
from k5.convert.onnx import from_onnx, to_onnx  # noqa: E402
from k5.runtime import run  # noqa: E402

TOL = 1e-4


def _ort(proto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-6))


@pytest.mark.parametrize("name", list(REAL_MODELS))
def test_real_model_triangle(name: str) -> None:
    build, shape, dynamic = REAL_MODELS[name]
    module = build(seed=0)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    proto = export_onnx(module, x, dynamic)
    with torch.no_grad():
        expected_torch = module(torch.from_numpy(x)).numpy()
    expected = _ort(proto, x)
    assert _rel(expected, expected_torch) < TOL  # the oracle agrees with itself
    assert np.abs(expected).max() > 1e-2  # outputs carry signal

    model = from_onnx(proto)
    ids = [n.id for n in model.nodes]
    ops = {n.op for n in model.nodes}
    if name == "resnet18":
        assert {"conv1", "layer1.0.conv1", "layer4.1.conv2", "fc"} <= set(ids)
        assert (
            model.graph.node("layer1.0.conv1").op == "Conv" and "weight" in model.graph.node("layer1.0.conv1").weights
        )
        assert model.graph.node("fc").op == "Linear"
        assert model.graph.node("fc").weights["weight"].shape == (1000, 512)
    else:
        assert "Linear" in ops and "MatMul" in ops  # projections folded; attention products stay MatMul

    got = run(model, {"x": x})["y"]
    assert np.abs(got - expected).max() <= TOL * max(1.0, np.abs(expected).max())

    # another batch size through the dynamic batch axis (the TorchScript exporter bakes the traced sequence length
    # into the attention reshapes, so onnxruntime itself refuses another length)
    x2 = np.random.default_rng(1).standard_normal((1, *shape[1:])).astype(np.float32)
    assert np.abs(run(model, {"x": x2})["y"] - _ort(proto, x2)).max() <= TOL * max(1.0, np.abs(expected).max())

    again = to_onnx(model)
    assert np.abs(_ort(again, x) - expected).max() <= TOL * max(1.0, np.abs(expected).max())
