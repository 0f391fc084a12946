"""``k5 convert`` between .onnx and .k5; oracle: onnxruntime on the original ONNX file."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import helper, numpy_helper  # noqa: E402

import k5  # noqa: E402
from k5.cli.main import main  # noqa: E402

RNG = np.random.default_rng(0)


def _small_onnx(path) -> None:
    inits = [
        numpy_helper.from_array(RNG.standard_normal((4, 3, 3, 3)).astype(np.float32), "conv.weight"),
        numpy_helper.from_array(RNG.standard_normal(4).astype(np.float32), "conv.bias"),
        numpy_helper.from_array(RNG.standard_normal((5, 4)).astype(np.float32), "fc.weight"),
        numpy_helper.from_array(RNG.standard_normal(5).astype(np.float32), "fc.bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="/act/Relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="/pool/GlobalAveragePool"),
        helper.make_node("Flatten", ["p"], ["f"], name="/Flatten"),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="/fc/Gemm", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 5])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _ort(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_onnx_to_k5_to_onnx(tmp_path, capsys) -> None:
    src, mid, back = tmp_path / "a.onnx", tmp_path / "a.k5", tmp_path / "b.onnx"
    _small_onnx(src)
    assert main(["convert", str(src), str(mid)]) == 0
    assert "max abs diff" in capsys.readouterr().out
    x = RNG.standard_normal((3, 3, 8, 8)).astype(np.float32)
    with k5.load(mid) as model:
        assert {n.id for n in model.nodes} == {"conv", "act", "pool", "Flatten", "fc"}
        assert model.validation is not None and set(model.validation.outputs) == {"y"}
        np.testing.assert_allclose(k5.run(model, {"x": x})["y"], _ort(src, x), rtol=1e-5, atol=1e-5)
    assert main(["convert", str(mid), str(back)]) == 0
    assert "validation pair" in capsys.readouterr().out
    np.testing.assert_allclose(_ort(back, x), _ort(src, x), rtol=1e-5, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.k5", "a.onnx", "b.onnx"]  # no temporary files left


def test_convert_refuses_unknown_formats_and_the_same_file(tmp_path, capsys) -> None:
    src = tmp_path / "a.onnx"
    _small_onnx(src)
    assert main(["convert", str(src), str(tmp_path / "a.pb")]) == 1
    assert "extension" in capsys.readouterr().err
    before = src.read_bytes()
    assert main(["convert", str(src), str(src), "--no-verify"]) == 1
    assert "same file" in capsys.readouterr().err and src.read_bytes() == before
