"""`k5 convert` over the format registry and `k5 formats`.

Oracles: onnxruntime on the original ONNX file, and NumPy maths for the hand-built MLP (cli_models).
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from cli_models import mlp_arrays, mlp_reference, write_mlp_k5, write_mlp_onnx

import k5
from k5.cli.main import main
from k5.convert import formats
from k5.convert.formats import FileFormat, format_for, register_format
from k5.convert.k5file import read_k5, run_k5

P = mlp_arrays()
X = np.random.default_rng(7).standard_normal((3, 4)).astype("f4")


def _ort(path, x):
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_onnx_to_k5_and_back(tmp_path, capsys):
    pytest.importorskip("onnx")
    src, mid, back = tmp_path / "a.onnx", tmp_path / "a.k5", tmp_path / "b.onnx"
    write_mlp_onnx(src, P)
    assert main(["convert", str(src), str(mid)]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime (onnx) vs k5 reference runtime (k5)" in out and "ok    y: max abs diff" in out
    with k5.load(mid) as model:  # the validation pair holds onnxruntime's outputs on the verification inputs
        pair = model.validation
        assert pair is not None
        np.testing.assert_allclose(np.asarray(pair.outputs["y"]), _ort(src, np.asarray(pair.inputs["x"])), rtol=1e-6)
        np.testing.assert_allclose(k5.run(model, {"x": X})["y"], mlp_reference(P, X), rtol=1e-5, atol=1e-5)
    assert main(["convert", str(mid), str(back), "--opset", "18"]) == 0
    out = capsys.readouterr().out
    assert "verifying on the validation pair: k5 reference runtime (k5) vs onnxruntime (onnx)" in out
    np.testing.assert_allclose(_ort(back, X), _ort(src, X), rtol=1e-5, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.k5", "a.onnx", "b.onnx"]  # no temporary files left


def test_k5_resave_with_inputs_and_compression(tmp_path, capsys):
    src, dst, inputs = tmp_path / "a.k5", tmp_path / "b.k5", tmp_path / "x.npz"
    p = mlp_arrays(hidden=80)  # fc1.weight is 1,280 bytes: k5 compresses datasets of at least 1 KiB
    write_mlp_k5(src, p)
    np.savez(inputs, x=X)
    assert main(["convert", str(src), str(dst), "--inputs", str(inputs), "--compression", "gzip"]) == 0
    out = capsys.readouterr().out
    assert f"verifying on the inputs in {inputs}" in out and "max rel diff" in out
    with h5py.File(dst) as f:
        assert f["model/weights/fc1/weight"].compression == "gzip"
    with k5.load(dst) as model:
        np.testing.assert_allclose(k5.run(model, {"x": X})["y"], mlp_reference(p, X), rtol=1e-5, atol=1e-5)
    assert main(["convert", str(src), str(tmp_path / "c.k5"), "--opset", "18"]) == 1
    assert "--opset does not apply to the k5 format" in capsys.readouterr().err


@pytest.fixture
def corrupting_format():
    """A test-only format ('.bad.k5'): writes a k5 file, then adds 1 to a weight behind the writer's back."""

    def write(model, path):
        k5.save(model, path)
        with h5py.File(path, "r+") as f:
            ds = f["model/weights/fc2/bias"]
            ds[0] = ds[0] + 1.0

    fmt = FileFormat("corrupt-k5", (".bad.k5",), "corrupted k5 (test only)", read=read_k5, write=write, run=run_k5,
                     runtime="k5 reference runtime")  # fmt: skip
    formats.all_formats()  # the real formats first
    register_format(fmt)
    yield fmt
    del formats._FORMATS[fmt.name]


def test_a_corrupted_target_fails_verification(corrupting_format, tmp_path, capsys):
    src, dst = tmp_path / "a.k5", tmp_path / "b.bad.k5"
    write_mlp_k5(src, P)
    assert format_for(str(dst)) is corrupting_format  # the longest extension wins over ".k5"
    assert main(["convert", str(src), str(dst)]) == 1
    captured = capsys.readouterr()
    assert "FAIL  y: max abs diff 1" in captured.out
    assert captured.err.startswith(f"k5: error: {dst}: the result disagrees with the source") and "y (" in captured.err
    assert main(["convert", str(src), str(tmp_path / "c.k5"), "--to", "corrupt-k5", "--no-verify"]) == 0
    capsys.readouterr()


def test_formats_lists_the_registry(capsys):
    assert main(["formats"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert ".k5" in lines["k5"] and ".onnx" in lines["onnx"]
    assert main(["formats", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["k5"]["installed"] and rows["k5"]["read"] and rows["k5"]["write"] and rows["k5"]["extra"] is None
    assert rows["onnx"]["extra"] == "onnx" and rows["onnx"]["runtime"] == "onnxruntime"
