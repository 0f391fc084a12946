"""Small hand-made models for the security tests, deterministic from a seed.

The expected outputs are computed here with plain NumPy (``x @ W.T + b``, ``max(0, .)``, ``a + b``): an oracle
independent of k5's kernels.
"""

from __future__ import annotations

import numpy as np

from k5.format.model import Graph, Metadata, Model, Node, TensorInfo, ValidationPair


def mlp(version: int = 0, *, width: int = 64, depth: int = 2) -> Model:
    """Linear -> Relu -> ... -> Add(residual): a few weights, a validation pair from NumPy maths."""
    rng = np.random.default_rng(1000 + version)
    x = rng.standard_normal((2, width)).astype(np.float32)
    nodes: list[Node] = []
    h = x.astype(np.float64)
    prev = "x"
    for i in range(depth):
        w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        b = rng.standard_normal(width).astype(np.float32)
        nodes.append(Node(f"fc{i}", "Linear", [prev], [f"h{i}"], weights={"weight": w, "bias": b}))
        nodes.append(Node(f"relu{i}", "Relu", [f"h{i}"], [f"r{i}"]))
        h = np.maximum(h @ w.T.astype(np.float64) + b, 0.0)
        prev = f"r{i}"
    c = rng.standard_normal(width).astype(np.float32)
    nodes.append(Node("shift", "Constant", [], ["c"], weights={"value": c}))
    nodes.append(Node("add", "Add", [prev, "c"], ["y"]))
    y = (h + c).astype(np.float32)
    graph = Graph(
        nodes,
        inputs=[TensorInfo("x", "float32", ["batch", width])],
        outputs=[TensorInfo("y", "float32", ["batch", width])],
        name=f"mlp_v{version}",
    )
    return Model(
        graph,
        metadata=Metadata(author="k5 security tests", description=f"version {version}"),
        validation=ValidationPair({"x": x}, {"y": y}, rtol=1e-4, atol=1e-4),
    )


def big(version: int, *, mbytes: int = 4) -> Model:
    """One Linear layer whose weight is ``mbytes`` MB of seeded floats (for kill and concurrency tests)."""
    width = int((mbytes * (1 << 20) / 4) ** 0.5)
    rng = np.random.default_rng(version)
    w = rng.standard_normal((width, width), dtype=np.float32)
    x = np.full((1, width), 1.0 / width, np.float32)
    nodes = [Node("fc", "Linear", ["x"], ["y"], weights={"weight": w})]
    y = (x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.float32)
    graph = Graph(nodes, [TensorInfo("x", "float32", [1, width])], [TensorInfo("y", "float32", [1, width])])
    return Model(
        graph,
        metadata=Metadata(description=f"version {version}"),
        validation=ValidationPair({"x": x}, {"y": y}, rtol=1e-3, atol=1e-3),
    )


def version_of(model: Model) -> int:
    return int(model.metadata.description.split()[-1])


def expected_weight(version: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(version).standard_normal(shape, dtype=np.float32)
