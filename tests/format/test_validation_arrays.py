"""A loaded validation pair is made of plain NumPy arrays (when small), so any framework takes it as it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import k5
import k5.format.reader as reader
from k5.format.lazy import LazyTensor
from k5.format.model import Graph, Model, Node, TensorInfo, ValidationPair


def _model() -> Model:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    graph = Graph([Node("r", "Relu", ["x"], ["y"])], [TensorInfo("x", "float32", [3, 4])],
                  [TensorInfo("y", "float32", [3, 4])])  # fmt: skip
    return Model(graph, validation=ValidationPair({"x": x}, {"y": np.maximum(x, 0)}))


def test_small_validation_tensors_are_arrays_torch_accepts(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is an optional extra")
    path = tmp_path / "m.k5"
    model = _model()
    k5.save(model, path)
    with k5.load(path) as loaded:
        assert loaded.validation is not None
        x = loaded.validation.inputs["x"]
        assert type(x) is np.ndarray and x.flags.writeable
        t = torch.from_numpy(x)  # the reported failure: torch rejected the lazy type
        np.testing.assert_array_equal(t.numpy(), model.validation.inputs["x"])
        np.testing.assert_array_equal(loaded.validation.outputs["y"], model.validation.outputs["y"])
    assert type(loaded.validation.inputs["x"]) is np.ndarray  # still usable after the file is closed


def test_large_validation_pairs_stay_lazy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.k5"
    k5.save(_model(), path)
    monkeypatch.setattr(reader, "MAX_EAGER_VALIDATION_BYTES", 95)  # the pair holds 2 x 48 bytes
    with k5.load(path) as loaded:
        assert loaded.validation is not None
        assert isinstance(loaded.validation.inputs["x"], LazyTensor)
    monkeypatch.setattr(reader, "MAX_EAGER_VALIDATION_BYTES", 96)
    with k5.load(path) as loaded:
        assert loaded.validation is not None
        assert type(loaded.validation.inputs["x"]) is np.ndarray
