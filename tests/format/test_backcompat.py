"""The committed k5 1.0 file (tests/data/v1_0_mlp.k5, made by make_v1_0_mlp.py) stays readable and correct."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

import k5

FILE = Path(__file__).parent.parent / "data" / "v1_0_mlp.k5"


def test_v1_0_file_loads_runs_and_matches_numpy_maths():
    with h5py.File(FILE, "r") as f:  # the oracle reads the bytes with h5py and computes with NumPy
        w1, b1 = f["model/weights/fc1/weight"][()], f["model/weights/fc1/bias"][()]
        w2, b2 = f["model/weights/fc2/weight"][()], f["model/weights/fc2/bias"][()]
        x, stored_y = f["validate/input/x"][()], f["validate/output/y"][()]
    expected = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
    np.testing.assert_allclose(stored_y, expected, rtol=1e-5, atol=1e-6)
    with k5.load(FILE, verify=True) as model:
        assert model.metadata.author == "k5 tests"
        assert model.metadata.created == "2024-06-01T00:00:00+00:00"
        assert model.metadata.extra == {"purpose": "backward compatibility"}
        assert [n.op for n in model.nodes] == ["Linear", "Relu", "Linear"]
        assert model.graph.inputs[0].shape == ["batch", 4]
        assert model.training.data.shape == (10, 4) and model.training.labels.shape == (10,)
        np.testing.assert_allclose(k5.run(model, x)["y"], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(model.validation.outputs["y"]), stored_y)
