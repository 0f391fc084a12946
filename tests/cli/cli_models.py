"""Small models for the CLI tests, built in code with fixed seeds; the oracle is hand-derived NumPy maths."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def mlp_arrays(seed: int = 0, hidden: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.standard_normal((hidden, 4)).astype("f4"),
        "b1": rng.standard_normal(hidden).astype("f4"),
        "w2": rng.standard_normal((3, hidden)).astype("f4"),
        "b2": rng.standard_normal(3).astype("f4"),
    }


def mlp_reference(p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ p["w1"].T + p["b1"], 0) @ p["w2"].T + p["b2"]


def write_mlp_onnx(path: Path, p: dict[str, np.ndarray]) -> None:
    """The same MLP as an ONNX file (Gemm, Relu, Gemm), opset 17."""
    import onnx
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(v, k) for k, v in p.items()]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["a"], name="act"),
        helper.make_node("Gemm", ["a", "w2", "b2"], ["y"], name="fc2", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 3])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def write_mlp_k5(path: Path, p: dict[str, np.ndarray], *, seed: int = 1) -> np.ndarray:
    """The MLP as a .k5 file with a validation pair (hand-derived outputs); returns the validation input."""
    import k5
    from k5.format.model import Graph, Model, Node, TensorInfo, ValidationPair

    graph = Graph(
        [Node("fc1", "Linear", ["x"], ["h"], weights={"weight": p["w1"], "bias": p["b1"]}),
         Node("act", "Relu", ["h"], ["a"]),
         Node("fc2", "Linear", ["a"], ["y"], weights={"weight": p["w2"], "bias": p["b2"]})],
        [TensorInfo("x", "float32", ["batch", 4])],
        [TensorInfo("y", "float32", ["batch", 3])],
    )  # fmt: skip
    x = np.random.default_rng(seed).standard_normal((5, 4)).astype("f4")
    pair = ValidationPair({"x": x}, {"y": mlp_reference(p, x).astype("f4")})
    k5.save(Model(graph, validation=pair), path)
    return x
