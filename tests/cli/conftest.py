"""A saved hand-built MLP for the CLI tests."""

from __future__ import annotations

import numpy as np
import pytest

import k5
from k5.format.model import Graph, Metadata, Model, Node, TensorInfo, ValidationPair


@pytest.fixture
def mlp_saved(tmp_path):
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((8, 4)).astype("f4"), rng.standard_normal(8).astype("f4")
    w2, b2 = rng.standard_normal((3, 8)).astype("f4"), rng.standard_normal(3).astype("f4")
    graph = Graph(
        [Node("fc1", "Linear", ["x"], ["h"], weights={"weight": w1, "bias": b1}), Node("act", "Relu", ["h"], ["a"]),
         Node("fc2", "Linear", ["a"], ["y"], weights={"weight": w2, "bias": b2})],
        [TensorInfo("x", "float32", ["batch", 4])],
        [TensorInfo("y", "float32", ["batch", 3])],
    )  # fmt: skip
    x = rng.standard_normal((5, 4)).astype("f4")
    y = (np.maximum(x @ w1.T + b1, 0) @ w2.T + b2).astype("f4")  # hand-derived maths
    meta = Metadata(author="Ada", extra={"k": "v"})
    path = tmp_path / "mlp.k5"
    k5.save(Model(graph, metadata=meta, validation=ValidationPair({"x": x}, {"y": y})), path)
    return path, {"w1": w1, "b1": b1, "w2": w2, "b2": b2, "x": x, "y": y}


@pytest.fixture
def mlp_file(mlp_saved):
    return mlp_saved[0]


@pytest.fixture
def mlp_params(mlp_saved):
    return mlp_saved[1]
