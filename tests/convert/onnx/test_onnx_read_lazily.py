"""from_onnx(path) reads the ONNX file's large weights straight from the file into their arrays (inline raw_data
and external data files alike) instead of parsing the whole protobuf. Oracle: from_onnx on the ModelProto that
onnx.load builds (the ordinary path) gives the same graph and the same weights, and onnxruntime agrees with the
k5 runtime. External data pointing outside the model's folder, to a missing file or past a file's end is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import k5  # noqa: E402
from k5.convert.onnx.wire import scan  # noqa: E402
from k5.errors import ConversionError  # noqa: E402

RNG = np.random.default_rng(11)


def _model() -> onnx.ModelProto:
    inits = {
        "w1": RNG.standard_normal((12, 40)).astype(np.float32),  # MatMul + Add -> Linear (transposed)
        "b1": RNG.standard_normal(40).astype(np.float32),
        "cw": RNG.standard_normal((6, 1, 3, 3)).astype(np.float32),  # Conv weight (below the threshold)
        "table": RNG.standard_normal((30, 40)).astype(np.float16),  # read by two nodes: a Constant
        "idx": np.arange(300, dtype=np.int64) % 30,
        "axes": np.array([0], np.int64),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["m"], name="/fc/MatMul"),
        helper.make_node("Add", ["m", "b1"], ["h"], name="/fc/Add"),
        helper.make_node("Gather", ["table", "idx"], ["g"], name="/gather", axis=0),
        helper.make_node("Cast", ["g"], ["g32"], name="/cast_g", to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["g32", "axes"], ["gs"], name="/gsum", keepdims=0),
        helper.make_node("Cast", ["table"], ["t32"], name="/cast", to=TensorProto.FLOAT),
        helper.make_node("Add", ["h", "t32"], ["y0"], name="/add_table"),
        helper.make_node("Conv", ["img", "cw"], ["c"], name="/conv/Conv"),
    ]
    outs = [
        helper.make_tensor_value_info("y0", TensorProto.FLOAT, [30, 40]),
        helper.make_tensor_value_info("gs", TensorProto.FLOAT, [40]),
        helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 6, 4, 4]),
    ]
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [30, 12]),
           helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 1, 6, 6])]  # fmt: skip
    graph = helper.make_graph(nodes, "g", ins, outs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


FEEDS = {
    "x": RNG.standard_normal((30, 12)).astype(np.float32),
    "img": RNG.standard_normal((1, 1, 6, 6)).astype(np.float32),
}


def _same_model(a: k5.Model, b: k5.Model) -> None:
    assert [(n.id, n.op, n.inputs, n.outputs, n.attrs) for n in a.nodes] == [
        (n.id, n.op, n.inputs, n.outputs, n.attrs) for n in b.nodes
    ]
    for na, nb in zip(a.nodes, b.nodes, strict=True):
        assert sorted(na.weights) == sorted(nb.weights)
        for k, v in nb.weights.items():
            assert np.asarray(na.weights[k]).dtype == np.asarray(v).dtype
            np.testing.assert_array_equal(na.weights[k], v)


@pytest.mark.parametrize("external", [False, True])
def test_reading_by_path_equals_the_ordinary_path(tmp_path: Path, external: bool) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_model(), str(path), save_as_external_data=external, location="m.data", size_threshold=1024)
    skeleton, spans = scan(str(path))
    assert len(spans) == (0 if external else 3)  # w1, table, idx (over 1 KiB) left in the file
    assert sum(len(t.raw_data) for t in skeleton.graph.initializer) < 1024
    lazily = k5.from_onnx(path)
    _same_model(lazily, k5.from_onnx(onnx.load(str(path))))
    assert [n.op for n in lazily.nodes].count("Linear") == 1
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, FEEDS)
    got = k5.run(lazily, FEEDS)
    for name, e in zip(["y0", "gs", "c"], expected, strict=True):
        np.testing.assert_allclose(got[name], e, rtol=2e-3, atol=2e-3)


def test_unusual_encoding_is_parsed_the_ordinary_way(tmp_path: Path) -> None:
    """A graph split over two fields (valid protobuf: they merge) is not walked but parsed whole."""
    model = _model()
    last = model.graph.initializer.pop()
    extra = onnx.ModelProto()
    extra.graph.initializer.append(last)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString() + extra.SerializeToString())
    assert scan(str(path))[1] == {}
    _same_model(k5.from_onnx(path), k5.from_onnx(onnx.load(str(path))))


def test_truncated_in_a_weight(tmp_path: Path) -> None:
    data = _model().SerializeToString()
    path = tmp_path / "m.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConversionError, match="not an ONNX model"):
        k5.from_onnx(path)


@pytest.mark.parametrize(
    ("location", "phrase"),
    [("../outside.data", "outside the model's folder"), ("/etc/passwd", "relative path"), ("nope.data", "not found"),
     ("short.data", "need")],
)  # fmt: skip
def test_bad_external_data_is_refused(tmp_path: Path, location: str, phrase: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "outside.data").write_bytes(bytes(4096))
    (folder / "short.data").write_bytes(bytes(100))
    model = _model()
    w1 = model.graph.initializer[0]
    w1.ClearField("raw_data")
    w1.data_location = TensorProto.EXTERNAL
    w1.external_data.add(key="location", value=location)
    path = folder / "m.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ConversionError, match=phrase):
        k5.from_onnx(path)


def test_a_symlinked_model_reads_its_own_weights(tmp_path: Path) -> None:
    real = tmp_path / "store" / "m.onnx"
    real.parent.mkdir()
    onnx.save(_model(), str(real))
    (tmp_path / "link.onnx").symlink_to(real)
    _same_model(k5.from_onnx(tmp_path / "link.onnx"), k5.from_onnx(onnx.load(str(real))))
