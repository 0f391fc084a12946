"""`k5 inspect`, `k5 validate`, `k5 run`: output, exit status, and one clear error line."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np

from k5.cli.main import main


def test_inspect_text(mlp_file, capsys):
    assert main(["inspect", str(mlp_file)]) == 0
    out = capsys.readouterr().out
    assert "author: Ada" in out and "metadata k: v" in out
    assert "x  float32[batch, 4]" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith(("fc1", "act", "fc2"))}
    assert "Linear" in lines["fc1"] and "40" in lines["fc1"] and "160 B" in lines["fc1"]  # 8*4+8 params
    assert "total: 3 nodes, 4 weights, 67 parameters, 268 B" in out  # 40 + 27
    assert "validation pair: inputs x float32[5, 4]" in out


def test_inspect_json_and_run_shapes(mlp_file, capsys):
    assert main(["inspect", str(mlp_file), "--json", "--run-shapes"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["totals"] == {"nodes": 3, "weights": 4, "parameters": 67, "bytes": 268}
    nodes = {n["id"]: n for n in doc["nodes"]}
    assert nodes["fc1"]["outputs"] == [{"name": "h", "dtype": "float32", "shape": [5, 8]}]
    assert nodes["fc2"]["weights"]["weight"] == {"dtype": "float32", "shape": [3, 8]}
    assert doc["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}]


def test_validate_passes(mlp_file, capsys):
    assert main(["validate", str(mlp_file)]) == 0
    out = capsys.readouterr().out
    assert "ok    checksums: 4 weights verified" in out
    assert "ok    validation output 'y': max abs diff" in out and out.rstrip().endswith("valid")


def test_validate_fails_on_bad_checksum_and_wrong_outputs(mlp_file, capsys):
    with h5py.File(mlp_file, "r+") as f:
        ds = f["model/weights/fc2/bias"]
        ds[0] = ds[0] + 1.0  # the bytes no longer match the sha256, and the outputs move by 1
    assert main(["validate", str(mlp_file)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  checksums:" in out and "node 'fc2' (Linear): weight 'bias'" in out
    assert "FAIL  validation output 'y': max abs diff 1" in out and "INVALID" in out


def test_validate_reports_structural_errors(mlp_file, capsys):
    with h5py.File(mlp_file, "r+") as f:
        del f["model/weights/fc1/bias"]
    assert main(["validate", str(mlp_file)]) == 1
    assert "FAIL  file, schema and graph:" in capsys.readouterr().out


def test_run_on_validation_input_with_trace_and_intermediate(mlp_file, mlp_params, tmp_path, capsys):
    out_npz = tmp_path / "out.npz"
    assert main(["run", str(mlp_file), "--trace", "--intermediate", "-o", str(out_npz)]) == 0
    out = capsys.readouterr().out
    assert "on the stored validation input" in out
    assert "  h: float32[5, 8]" in out and "  y: float32[5, 3]" in out
    assert "fc1" in out and "total" in out
    p = mlp_params
    with np.load(out_npz) as saved:
        np.testing.assert_allclose(saved["h"], p["x"] @ p["w1"].T + p["b1"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(saved["y"], p["y"], rtol=1e-5, atol=1e-6)


def test_run_on_npy_and_npz_inputs(mlp_file, mlp_params, tmp_path, capsys):
    p = mlp_params
    x = np.ones((2, 4), "f4")
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "in.npz", x=x)
    expected = np.maximum(x @ p["w1"].T + p["b1"], 0) @ p["w2"].T + p["b2"]
    for spec in (f"x={tmp_path / 'x.npy'}", str(tmp_path / "x.npy"), str(tmp_path / "in.npz")):
        assert main(["run", str(mlp_file), spec, "-o", str(tmp_path / "o.npz")]) == 0
        with np.load(tmp_path / "o.npz") as saved:
            assert list(saved.files) == ["y"]
            np.testing.assert_allclose(saved["y"], expected, rtol=1e-5, atol=1e-6)
    capsys.readouterr()


def test_errors_are_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "bad.k5"
    bad.write_text("hello")
    for args in (["inspect", str(bad)], ["run", str(bad)]):
        proc = subprocess.run([sys.executable, "-m", "k5.cli.main", *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines() == [f"k5: error: {bad}: not an HDF5 file (no HDF5 signature); a .k5 "
                                                    "file is an HDF5 file"]  # fmt: skip


def test_wrong_input_shape_is_an_error_line(mlp_file, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.ones((2, 5), "f4"))
    assert main(["run", str(mlp_file), str(tmp_path / "x.npy")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("k5: error:") and "input 'x' expects shape ['batch', 4]" in err
