"""Makes tests/data/v1_0_mlp.k5, the committed k5 1.0 file that later releases must keep reading.

Run once (``python tests/data/make_v1_0_mlp.py``); the file is committed and never regenerated, so that a change to
the writer cannot silently change what the backward-compatibility test reads.
"""

from __future__ import annotations

import os

import numpy as np

import k5
from k5.format.model import DataSplit, Graph, Metadata, Model, Node, TensorInfo, ValidationPair


def build() -> Model:
    rng = np.random.default_rng(20240601)
    w1, b1 = rng.standard_normal((6, 4)).astype("f4"), rng.standard_normal(6).astype("f4")
    w2, b2 = rng.standard_normal((2, 6)).astype("f4"), rng.standard_normal(2).astype("f4")
    graph = Graph(
        nodes=[
            Node("fc1", "Linear", ["x"], ["h"], weights={"weight": w1, "bias": b1}),
            Node("relu", "Relu", ["h"], ["a"]),
            Node("fc2", "Linear", ["a"], ["y"], weights={"weight": w2, "bias": b2}),
        ],
        inputs=[TensorInfo("x", "float32", ["batch", 4])],
        outputs=[TensorInfo("y", "float32", ["batch", 2])],
        name="mlp",
    )
    x = rng.standard_normal((3, 4)).astype("f4")
    y = (np.maximum(x @ w1.T + b1, 0) @ w2.T + b2).astype("f4")
    return Model(
        graph,
        metadata=Metadata(
            author="k5 tests", description="a 4-6-2 MLP for backward compatibility", license="CC0-1.0",
            created="2024-06-01T00:00:00+00:00", extra={"purpose": "backward compatibility"},
        ),
        validation=ValidationPair({"x": x}, {"y": y}),
        training=DataSplit(rng.standard_normal((10, 4)).astype("f4"), rng.integers(0, 2, 10).astype("int64")),
    )


if __name__ == "__main__":
    k5.save(build(), os.path.join(os.path.dirname(os.path.abspath(__file__)), "v1_0_mlp.k5"))
