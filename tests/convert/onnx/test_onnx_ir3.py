"""ONNX files whose initializers are also graph inputs (IR version 3, the older model zoos; and, in IR >= 4, inputs
with an overridable default). k5 folds each such input into the weight it is backed by, so the model runs on its
real inputs only, and layer ops are recognised as in IR >= 4 files. Oracle: onnxruntime on the original file, fed
only the real inputs (it takes the initializers as the inputs' values)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import k5  # noqa: E402

RNG = np.random.default_rng(3)


def _model(nodes, x_shape, y_shape, weights: dict[str, np.ndarray], *, ir: int = 3, opset: int = 9):
    """A model whose every initializer is listed in graph.input too (as IR 3 requires)."""
    inits = [numpy_helper.from_array(v, k) for k, v in weights.items()]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)]
    inputs += [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in weights.items()]
    graph = helper.make_graph(
        nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], initializer=inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir
    return model


def _w(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)


def _check(model, x: np.ndarray) -> k5.Model:
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )[0]
    assert np.abs(expected).max() > 1e-2  # the output carries signal
    converted = k5.from_onnx(model)
    assert converted.input_names() == ["x"]
    got = k5.run(converted, {"x": x})["y"]
    assert np.abs(got - expected).max() <= 1e-5 * max(1.0, float(np.abs(expected).max()))
    return converted


def test_gemm_ir3_becomes_linear() -> None:
    w, b = _w(4, 3), _w(3)
    model = _model([helper.make_node("Gemm", ["x", "W", "b"], ["y"], name="fc")], [2, 4], [2, 3], {"W": w, "b": b})
    converted = _check(model, RNG.standard_normal((2, 4)).astype(np.float32))
    (node,) = converted.nodes
    assert node.op == "Linear" and node.inputs == ["x"]
    np.testing.assert_array_equal(node.weights["weight"], w.T)
    np.testing.assert_array_equal(node.weights["bias"], b)


def test_conv_batchnorm_ir3_own_their_weights() -> None:
    c = 4
    weights = {
        "conv_w": _w(c, 3, 3, 3),
        "conv_b": _w(c),
        "bn_scale": (RNG.random(c) + 0.5).astype(np.float32),
        "bn_bias": _w(c),
        "bn_mean": _w(c),
        "bn_var": (RNG.random(c) + 0.5).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["n"], name="bn"),
        helper.make_node("Relu", ["n"], ["y"], name="relu"),
    ]
    model = _model(nodes, [1, 3, 6, 6], [1, c, 6, 6], weights)
    converted = _check(model, RNG.standard_normal((1, 3, 6, 6)).astype(np.float32))
    assert [(n.id, n.op) for n in converted.nodes] == [("conv", "Conv"), ("bn", "BatchNormalization"),
                                                        ("relu", "Relu")]  # fmt: skip
    conv, bn = converted.graph.node("conv"), converted.graph.node("bn")
    assert conv.inputs == ["x"] and set(conv.weights) == {"weight", "bias"}
    np.testing.assert_array_equal(conv.weights["weight"], weights["conv_w"])
    assert bn.inputs == ["c"] and set(bn.weights) == {"scale", "bias", "mean", "var"}


def test_mlp_ir3_linear_layers_and_a_shared_constant() -> None:
    """MatMul + Add and Gemm(transB) become Linear; an initializer read twice becomes one Constant node."""
    weights = {"w1": _w(5, 8), "b1": _w(8), "w2": _w(6, 8), "b2": _w(6), "scale": np.float32([1.5])}
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1_mm"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="fc1_add"),
        helper.make_node("Mul", ["h1", "scale"], ["h2"], name="scale1"),
        helper.make_node("Relu", ["h2"], ["h3"], name="act"),
        helper.make_node("Gemm", ["h3", "w2", "b2"], ["h4"], name="fc2", transB=1),
        helper.make_node("Mul", ["h4", "scale"], ["h5"], name="scale2"),
        helper.make_node("Softmax", ["h5"], ["y"], name="softmax"),
    ]
    model = _model(nodes, [3, 5], [3, 6], weights)
    converted = _check(model, RNG.standard_normal((3, 5)).astype(np.float32) * 3)
    ops = [n.op for n in converted.nodes]
    assert ops.count("Linear") == 2 and "MatMul" not in ops and "Gemm" not in ops
    assert ops.count("Constant") == 1


def test_ir4_input_with_default_is_folded_as_a_weight() -> None:
    """IR >= 4: an input named like an initializer is an overridable default; k5 takes the default as the weight
    (k5 has no default-valued inputs), so the input disappears and the model matches onnxruntime fed x alone."""
    w, b = _w(4, 3), _w(3)
    model = _model(
        [helper.make_node("Gemm", ["x", "W", "b"], ["y"], name="fc")], [2, 4], [2, 3], {"W": w, "b": b}, ir=8,
        opset=13,
    )  # fmt: skip
    converted = _check(model, RNG.standard_normal((2, 4)).astype(np.float32))
    assert [n.op for n in converted.nodes] == ["Linear"]
