"""The interpreter moves values between nodes and names the node when anything goes wrong."""

from __future__ import annotations

import numpy as np
import pytest

import k5
from k5.errors import GraphError, InputMismatchError, RunError
from k5.format.model import Graph, Model, Node, TensorInfo
from k5.ops import op, registry


def mlp(rng: np.random.Generator) -> tuple[Model, dict[str, np.ndarray]]:
    w1, b1 = rng.standard_normal((8, 4)).astype("f4"), rng.standard_normal(8).astype("f4")
    w2, b2 = rng.standard_normal((3, 8)).astype("f4"), rng.standard_normal(3).astype("f4")
    graph = Graph(
        nodes=[
            Node("fc1", "Linear", ["x"], ["h"], weights={"weight": w1, "bias": b1}),
            Node("act", "Relu", ["h"], ["a"]),
            Node("fc2", "Linear", ["a"], ["y"], weights={"weight": w2, "bias": b2}),
        ],
        inputs=[TensorInfo("x", "float32", ["batch", 4])],
        outputs=[TensorInfo("y", "float32", ["batch", 3])],
    )
    return Model(graph), {"w1": w1, "b1": b1, "w2": w2, "b2": b2}


def test_mlp_matches_hand_maths():
    rng = np.random.default_rng(0)
    model, p = mlp(rng)
    x = rng.standard_normal((5, 4)).astype("f4")
    expected = np.maximum(x @ p["w1"].T + p["b1"], 0) @ p["w2"].T + p["b2"]
    out = k5.run(model, {"x": x})
    assert list(out) == ["y"]
    np.testing.assert_allclose(out["y"], expected, rtol=1e-5, atol=1e-6)
    # positional and bare-array forms give the same
    np.testing.assert_array_equal(k5.run(model, [x])["y"], out["y"])
    np.testing.assert_array_equal(k5.run(model, x)["y"], out["y"])


def test_intermediate_values_and_trace():
    rng = np.random.default_rng(1)
    model, p = mlp(rng)
    x = rng.standard_normal((2, 4)).astype("f4")
    seen: list[str] = []
    env = k5.run(model, x, intermediate=True, trace=lambda node, ins, outs, dt: seen.append(node.id))
    assert seen == ["fc1", "act", "fc2"]
    np.testing.assert_allclose(env["h"], x @ p["w1"].T + p["b1"], rtol=1e-5)
    assert set(env) == {"x", "h", "a", "y"}


def test_input_errors_name_the_input():
    model, _ = mlp(np.random.default_rng(2))
    with pytest.raises(InputMismatchError, match=r"input 'x' expects shape \['batch', 4\]"):
        k5.run(model, np.zeros((2, 5), "f4"))
    with pytest.raises(InputMismatchError, match=r"expects dtype float32\. Received: float64"):
        k5.run(model, np.zeros((2, 4)))
    with pytest.raises(InputMismatchError, match="Missing: \\['x'\\]"):
        k5.run(model, {"z": np.zeros((2, 4), "f4")})


def test_symbolic_dims_must_agree_across_inputs():
    graph = Graph(
        nodes=[Node("add", "Add", ["a", "b"], ["c"])],
        inputs=[TensorInfo("a", "float32", ["n", 2]), TensorInfo("b", "float32", ["n", 2])],
        outputs=[TensorInfo("c", "float32", ["n", 2])],
    )
    with pytest.raises(InputMismatchError, match="dimension 'n' is 3 in input 'a' but 1 in input 'b'"):
        k5.run(Model(graph), {"a": np.zeros((3, 2), "f4"), "b": np.zeros((1, 2), "f4")})


@pytest.fixture
def crashing_op():
    """An op in a throwaway domain whose kernel raises a plain ValueError."""
    domain = "test.crash"

    @op("Crash", inputs=["X", "@weight"], outputs=["Y"], domain=domain)
    def crash(x, w):
        raise ValueError("boom")

    yield domain
    del registry._REGISTRY[(domain, "Crash")]


def test_kernel_failure_names_node_and_shapes(crashing_op):
    graph = Graph(
        nodes=[Node("c", "Crash", ["x"], ["y"], weights={"weight": np.zeros((3, 7), "f4")}, domain=crashing_op)],
        inputs=[TensorInfo("x", "float32", None)],
        outputs=[TensorInfo("y", "float32", None)],
    )
    expected = r"node 'c' \(test.crash.Crash\): kernel failed on inputs \(float32\[2, 4\], float32\[3, 7\]\)"
    with pytest.raises(RunError, match=expected + ": ValueError: boom"):
        k5.run(Model(graph, opset={"k5": 1, crashing_op: 1}), np.zeros((2, 4), "f4"))


def test_dangling_edge_is_a_graph_error():
    graph = Graph(
        nodes=[Node("act", "Relu", ["nowhere"], ["y"])],
        inputs=[TensorInfo("x", "float32", None)],
        outputs=[TensorInfo("y", "float32", None)],
    )
    with pytest.raises(GraphError, match=r"node 'act' \(Relu\): input 'nowhere'"):
        k5.run(Model(graph), np.zeros(1, "f4"))


def test_weight_declared_without_data_names_node_and_weight():
    from k5.errors import MissingWeightError
    from k5.format.model import WeightSpec

    graph = Graph(
        nodes=[Node("fc", "Linear", ["x"], ["y"], weights={"weight": WeightSpec("float32", (2, 2))})],
        inputs=[TensorInfo("x", "float32", [1, 2])],
        outputs=[TensorInfo("y", "float32", None)],
    )
    with pytest.raises(MissingWeightError, match=r"node 'fc' \(Linear\): weight 'weight': has no data attached"):
        k5.run(Model(graph), np.zeros((1, 2), "f4"))


def test_array_likes_keep_their_dtype_and_lists_take_the_declared_one():
    class ComplexArrayLike:
        dtype = np.dtype("complex64")

        def __array__(self, dtype=None, copy=None):
            return np.array([1 + 1j, 2], "c8")

    graph = Graph(
        nodes=[Node("act", "Relu", ["x"], ["y"])],
        inputs=[TensorInfo("x", "float32", [2])],
        outputs=[TensorInfo("y", "float32", [2])],
    )
    with pytest.raises(InputMismatchError, match=r"expects dtype float32\. Received: complex64"):
        k5.run(Model(graph), {"x": ComplexArrayLike()})
    out = k5.run(Model(graph), {"x": [1, -2]})["y"]
    assert out.dtype == np.float32 and out.tolist() == [1.0, 0.0]
