"""Every failure of the ONNX converter is a K5Error: sources that are not ONNX models (random bytes, empty, text,
truncated, missing, an empty graph, no outputs), through the Python API and the CLI (exit 1, one line on stderr, no
traceback); a crash inside the importer or exporter names the node and op and chains the original exception."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import k5  # noqa: E402
from k5.cli.main import main  # noqa: E402
from k5.errors import ConversionError, SaveError  # noqa: E402
from k5.format.model import Graph, Model, Node, TensorInfo  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def _relu_model(outputs: bool = True) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])] if outputs else [],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


#: name -> (bytes of the source, a phrase the message must hold)
BAD: dict[str, tuple[bytes, str]] = {
    "random": (np.random.default_rng(0).bytes(4096), "not an ONNX model"),
    "empty": (b"", "empty"),
    "text": (b"ir_version: 8\ngraph { node { op_type: 'Relu' } }\n", "not an ONNX model"),
    "truncated": (_relu_model().SerializeToString()[:-9], "not an ONNX model"),
    "empty_graph": (helper.make_model(helper.make_graph([], "g", [], [])).SerializeToString(), "no nodes"),
    "no_outputs": (_relu_model(outputs=False).SerializeToString(), "no outputs"),
}


@pytest.mark.parametrize("kind", [*BAD, "missing"])
def test_bad_source_is_a_conversion_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.onnx"
    data, phrase = BAD.get(kind, (b"", "no such file"))
    if kind != "missing":
        path.write_bytes(data)
        with pytest.raises(ConversionError, match=phrase):
            k5.from_onnx(data)  # the same bytes, in memory
    with pytest.raises(ConversionError, match=phrase) as info:
        k5.from_onnx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "kind",
    [*BAD, "missing"],
)
def test_cli_refuses_bad_source_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    path = tmp_path / f"{kind}.onnx"
    if kind != "missing":
        path.write_bytes(BAD[kind][0])
    assert main(["convert", str(path), str(tmp_path / "out.k5")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("k5: error:"), err
    assert not (tmp_path / "out.k5").exists()


def test_cli_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(BAD["random"][0])
    proc = subprocess.run(
        [sys.executable, "-m", "k5.cli.main", "convert", str(path), str(tmp_path / "out.k5")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def test_onnx_target_in_a_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proto = _relu_model()
    target = tmp_path / "no" / "such" / "dir" / "m.onnx"
    with pytest.raises(SaveError, match="does not exist"):
        k5.convert.onnx.save_onnx(proto, target)
    src = tmp_path / "m.k5"
    k5.save(k5.from_onnx(proto), src)
    assert main(["convert", str(src), str(target), "--no-verify"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.k5"]


def test_importer_crash_names_node_and_op() -> None:
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.float32([1.0]), "v"), numpy_helper.from_array(np.int64([10]), "i"), [4]
    )  # index 10 in a tensor of 4 values
    node = helper.make_node("Constant", [], ["y"], name="table", sparse_value=sparse)
    graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    with pytest.raises(ConversionError, match=r"node 'table' \(Constant\): IndexError: index 10") as info:
        k5.from_onnx(helper.make_model(graph))
    assert isinstance(info.value.__cause__, IndexError)


def test_exporter_crash_names_node_and_op() -> None:
    node = Node("flat", "Reshape", ["x", "shape"], ["y"], attrs={"allowzero": "yes"})  # a string for an int
    graph = Graph(nodes=[node], inputs=[TensorInfo("x", "float32", [2, 3]), TensorInfo("shape", "int64", [1])],
                  outputs=[TensorInfo("y", "float32", None)])  # fmt: skip
    with pytest.raises(ConversionError, match=r"node 'flat' \(Reshape\): TypeError") as info:
        k5.to_onnx(Model(graph=graph))
    assert isinstance(info.value.__cause__, TypeError)
