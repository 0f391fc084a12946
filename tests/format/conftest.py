"""Hand-built models for the format tests (Linear/Relu/Add/Constant, and custom-domain ops)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from k5.format.model import Graph, Metadata, Model, Node, TensorInfo, ValidationPair


def build_mlp(seed: int = 0, hidden: int = 8) -> Model:
    rng = np.random.default_rng(seed)
    w1, b1 = rng.standard_normal((hidden, 4)).astype("f4"), rng.standard_normal(hidden).astype("f4")
    w2, b2 = rng.standard_normal((3, hidden)).astype("f4"), rng.standard_normal(3).astype("f4")
    graph = Graph(
        nodes=[
            Node("fc1", "Linear", ["x"], ["h"], weights={"weight": w1, "bias": b1}),
            Node("act", "Relu", ["h"], ["a"]),
            Node("fc2", "Linear", ["a"], ["y"], weights={"weight": w2, "bias": b2}),
        ],
        inputs=[TensorInfo("x", "float32", ["batch", 4])],
        outputs=[TensorInfo("y", "float32", ["batch", 3])],
    )
    x = rng.standard_normal((5, 4)).astype("f4")
    expected = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2  # hand-derived maths, not the runtime
    return Model(
        graph,
        metadata=Metadata(author="Ada", description="a tiny MLP", license="MIT", extra={"dataset": "random"}),
        validation=ValidationPair({"x": x}, {"y": expected.astype("f4")}),
    )


@pytest.fixture
def mlp() -> Callable[..., Model]:
    return build_mlp
