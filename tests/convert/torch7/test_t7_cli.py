"""``k5 convert`` with ``.t7`` on either side: verification runs the .t7 in OpenCV (its own runtime)."""

from __future__ import annotations

import numpy as np
import pytest

import k5
from k5.cli.main import main

torch = pytest.importorskip("torch")


def _net_k5(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5)
    ).eval()
    x = torch.randn(2, 1, 8, 8)
    model = k5.from_torch(net, (x,))
    k5.save(model, tmp_path / "net.k5")
    with torch.no_grad():
        return x.numpy(), net(x).numpy()


def test_k5_to_t7_and_back_verified_by_opencv(oracle_python, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("K5_OPENCV_VENV", oracle_python.rsplit("/bin/", 1)[0])
    x, expected = _net_k5(tmp_path)
    assert main(["convert", str(tmp_path / "net.k5"), str(tmp_path / "net.t7")]) == 0
    out = capsys.readouterr().out
    assert "OpenCV" in out and "ok" in out, out
    np.savez(tmp_path / "in.npz", input=x)
    args = ["convert", str(tmp_path / "net.t7"), str(tmp_path / "back.k5"), "--inputs", str(tmp_path / "in.npz")]
    assert main(args) == 0
    with k5.load(tmp_path / "back.k5") as back:  # the pair stored from OpenCV's run, under the graph's output name
        (name,) = [t.name for t in back.graph.outputs]
        got = k5.run(back, {"input": x})[name]
        stored = np.asarray(back.validation.outputs[name])
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() / scale < 1e-4  # torch, the original, is the oracle
    assert np.abs(stored - expected).max() / scale < 1e-4
