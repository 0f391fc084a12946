"""write_onnx streams weights from the (memory-mapped) k5 model into the .onnx file instead of building the whole
protobuf in memory. Oracles: the in-memory path (to_onnx, itself checked against PyTorch) must give the same
nodes and the same initializer values, onnx.checker accepts the file, onnxruntime computes the same outputs on it,
and the Linear output matches NumPy's x @ W.T + b."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import numpy_helper  # noqa: E402

import k5  # noqa: E402
from k5.convert.onnx import to_onnx, write_onnx  # noqa: E402
from k5.errors import VerificationError  # noqa: E402
from k5.format.model import Graph, Model, Node, TensorInfo  # noqa: E402

RNG = np.random.default_rng(7)


def _model() -> Model:
    emb = RNG.standard_normal((50, 16)).astype(np.float32)
    w, b = RNG.standard_normal((32, 16)).astype(np.float32), RNG.standard_normal(32).astype(np.float32)
    cw, cb = RNG.standard_normal((16, 3, 3, 3)).astype(np.float32), RNG.standard_normal(16).astype(np.float32)
    half = RNG.standard_normal((16, 8, 8)).astype(np.float16)
    nodes = [
        Node("emb", "Embedding", ["ids"], ["e"], weights={"weight": emb}),
        Node("fc", "Linear", ["e"], ["y"], weights={"weight": w, "bias": b}),
        Node("conv", "Conv", ["img"], ["c"], {"pads": [1, 1, 1, 1]}, weights={"weight": cw, "bias": cb}),
        Node("offset", "Constant", [], ["offset"], weights={"value": half}),
        Node("offset32", "Cast", ["offset"], ["offset32"], {"to": "float32"}),
        Node("add", "Add", ["c", "offset32"], ["z"]),
    ]
    graph = Graph(
        nodes,
        inputs=[TensorInfo("ids", "int64", ["batch", 3]), TensorInfo("img", "float32", ["batch", 3, 8, 8])],
        outputs=[TensorInfo("y", "float32"), TensorInfo("z", "float32")],
    )
    return Model(graph)


FEEDS = {
    "ids": RNG.integers(0, 50, (2, 3)).astype(np.int64),
    "img": RNG.standard_normal((2, 3, 8, 8)).astype(np.float32),
}


def _ort(model: str | bytes) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, FEEDS), strict=True))


def _inits(proto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}


@pytest.fixture
def stored(tmp_path: Path):
    k5.save(_model(), tmp_path / "m.k5")
    with k5.load(tmp_path / "m.k5") as model:  # weights are memory-mapped views of the file
        yield model


@pytest.mark.parametrize("external", [False, True])
def test_streamed_file_equals_the_in_memory_model(tmp_path: Path, stored: Model, external: bool) -> None:
    path = tmp_path / "out.onnx"
    returned = write_onnx(stored, path, external=external)
    streamed = {t.name for t in returned.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
    assert len(streamed) == 4  # embedding table, fc weight (transposed when written), conv weight, float16 constant
    files = sorted(p.name for p in tmp_path.iterdir())
    if external:
        assert len(files) == 3 and re.fullmatch(r"out\.onnx\.[0-9a-f]{8}\.data", files[2]), files
    else:
        assert files == ["m.k5", "out.onnx"]
    written = onnx.load(str(path))
    onnx.checker.check_model(written)
    expected = to_onnx(stored)
    assert [n.SerializeToString() for n in written.graph.node] == [n.SerializeToString() for n in expected.graph.node]
    got, want = _inits(written), _inits(expected)
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    assert written.opset_import == expected.opset_import and written.ir_version == expected.ir_version
    out = _ort(str(path))
    for name, value in _ort(expected.SerializeToString()).items():
        np.testing.assert_array_equal(out[name], value)
    fc = stored.graph.node("fc").weights
    emb = np.asarray(stored.graph.node("emb").weights["weight"])
    np.testing.assert_allclose(
        out["y"], emb[FEEDS["ids"]] @ np.asarray(fc["weight"]).T + fc["bias"], rtol=1e-5, atol=1e-5
    )


def test_a_failing_check_leaves_the_old_file(tmp_path: Path, stored: Model) -> None:
    path = tmp_path / "out.onnx"
    path.write_bytes(b"old")
    seen: list[str] = []

    def check(tmp: str) -> None:
        seen.append(tmp)
        assert Path(tmp).exists()
        raise VerificationError("disagrees")

    with pytest.raises(VerificationError):
        write_onnx(stored, path, check=check, external=True)
    assert seen and path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.k5", "out.onnx"]


def test_save_onnx_writes_the_proto_one_weight_at_a_time(tmp_path: Path, stored: Model) -> None:
    proto = to_onnx(stored)
    proto.doc_string = "doc"
    proto.metadata_props.add(key="author", value="k5 tests")
    path = tmp_path / "saved.onnx"
    k5.convert.onnx.save_onnx(proto, path)
    assert onnx.load(str(path)) == proto  # field by field, whatever the order written
