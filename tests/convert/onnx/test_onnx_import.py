"""ONNX import: version adapters, folding, weight ownership, readable ids, and what is reported as unsupported.

Oracle: onnxruntime running the original ONNX model (it implements every old opset natively)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import helper, numpy_helper  # noqa: E402

from k5.convert.onnx import from_onnx  # noqa: E402
from k5.convert.onnx.importer import UnsupportedTypesError, scope_id  # noqa: E402
from k5.errors import UnsupportedOpsError  # noqa: E402
from k5.runtime import run  # noqa: E402

RNG = np.random.default_rng(0)


def _model(nodes, inputs, outputs, opset, inits=()):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in outputs],
        initializer=list(inits),
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7 if opset < 15 else 8
    return m


def _ort(m, feeds):
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _check(m, feeds):
    expected = _ort(m, feeds)
    k5_model = from_onnx(m)
    got = run(k5_model, feeds)
    for e, name in zip(expected, k5_model.output_names(), strict=True):
        np.testing.assert_allclose(got[name], e, rtol=1e-5, atol=1e-6)
    return k5_model


X = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
OLD_FORMS = {
    "ReduceMean-13 axes": ([helper.make_node("ReduceMean", ["x"], ["y"], axes=[1, 3], keepdims=0)], 13),
    "ReduceSum-11 axes": ([helper.make_node("ReduceSum", ["x"], ["y"], axes=[-1])], 11),
    "Squeeze-11 axes": (
        [helper.make_node("ReduceMax", ["x"], ["r"], axes=[1]), helper.make_node("Squeeze", ["r"], ["y"], axes=[1])],
        11,
    ),
    "Unsqueeze-11 axes": ([helper.make_node("Unsqueeze", ["x"], ["y"], axes=[0, 5])], 11),
    "Split-11 split": ([helper.make_node("Split", ["x"], ["y", "z"], axis=3, split=[2, 3])], 11),
    "Split-13 equal": ([helper.make_node("Split", ["x"], ["y", "z"], axis=2)], 13),
    "Pad-2 pads value": ([helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 0, 2, 0, 0, 1, 1], value=1.5)], 9),
    "Slice-9 attrs": ([helper.make_node("Slice", ["x"], ["y"], starts=[1, 0], ends=[3, -1], axes=[2, 3])], 9),
    "Clip-6 min max": ([helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.7)], 6),
    "TopK-1 k": ([helper.make_node("TopK", ["x"], ["y", "i"], k=2, axis=-1)], 9),
    "Softmax-11 2-D coercion": ([helper.make_node("Softmax", ["x"], ["y"], axis=2)], 11),
    "LogSoftmax-11 default axis": ([helper.make_node("LogSoftmax", ["x"], ["y"])], 11),
    "Upsample-9 nearest": (
        [helper.make_node("Constant", [], ["s"], value_floats=[1.0, 1.0, 2.0, 3.0]),
         helper.make_node("Upsample", ["x", "s"], ["y"], mode="nearest")],
        9,
    ),
    "Upsample-7 attr": ([helper.make_node("Upsample", ["x"], ["y"], scales=[1.0, 1.0, 3.0, 2.0], mode="nearest")], 7),
    "Dropout-10 ratio": ([helper.make_node("Dropout", ["x"], ["y"], ratio=0.3)], 10),
    "Cast to code": (
        [helper.make_node("Cast", ["x"], ["c"], to=onnx.TensorProto.INT32),
         helper.make_node("Cast", ["c"], ["y"], to=onnx.TensorProto.FLOAT)],
        13,
    ),
    "Constant value_floats": (
        [helper.make_node("Constant", [], ["c"], value_floats=[1.0, 2.0, 3.0, 4.0, 5.0]),
         helper.make_node("Add", ["x", "c"], ["y"])],
        13,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(OLD_FORMS))
def test_old_opset_forms_match_onnxruntime(name: str) -> None:
    nodes, opset = OLD_FORMS[name]
    outputs = [o for o in nodes[-1].output if o != "i"]
    if name.startswith("TopK"):
        outputs = ["y", "i"]
        m = _model(nodes, [("x", list(X.shape))], outputs, opset)
        m.graph.output[1].type.tensor_type.elem_type = onnx.TensorProto.INT64
    else:
        m = _model(nodes, [("x", list(X.shape))], outputs, opset)
    _check(m, {"x": X})


def _linear_onnx():
    w1 = RNG.standard_normal((5, 6)).astype(np.float32)  # MatMul weight [in, out]
    b1 = RNG.standard_normal(6).astype(np.float32)
    w2 = RNG.standard_normal((4, 6)).astype(np.float32)  # Gemm transB weight [out, in]
    b2 = RNG.standard_normal(4).astype(np.float32)
    conv_w = RNG.standard_normal((2, 3, 3, 3)).astype(np.float32)
    inits = [
        numpy_helper.from_array(a, n)
        for a, n in ((w1, "fc1.weight_t"), (b1, "fc1.bias"), (w2, "fc2.weight"), (b2, "fc2.bias"), (conv_w, "c.w"))
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "fc1.weight_t"], ["m"], name="/encoder/fc1/MatMul"),
        helper.make_node("Add", ["m", "fc1.bias"], ["h"], name="/encoder/fc1/Add"),
        helper.make_node("Relu", ["h"], ["r"], name="/encoder/act/Relu"),
        helper.make_node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["y"], name="/head/Gemm", transB=1),
        helper.make_node("Conv", ["img", "c.w"], ["z"], name="/features/features.0/Conv", pads=[1, 1, 1, 1]),
    ]
    return _model(nodes, [("x", [3, 5]), ("img", [1, 3, 6, 6])], ["y", "z"], 17, inits), (w1, b1, w2, b2)


def test_linear_folding_ownership_and_ids() -> None:
    m, (w1, b1, w2, b2) = _linear_onnx()
    feeds = {
        "x": RNG.standard_normal((3, 5)).astype(np.float32),
        "img": RNG.standard_normal((1, 3, 6, 6)).astype(np.float32),
    }
    k5_model = _check(m, feeds)
    by_id = {n.id: n for n in k5_model.nodes}
    assert set(by_id) == {"encoder.fc1", "encoder.act", "head", "features.0"}
    assert by_id["encoder.fc1"].op == "Linear" and by_id["head"].op == "Linear"
    np.testing.assert_array_equal(by_id["encoder.fc1"].weights["weight"], w1.T)  # [out, in]
    np.testing.assert_array_equal(by_id["encoder.fc1"].weights["bias"], b1)
    np.testing.assert_array_equal(by_id["head"].weights["weight"], w2)
    np.testing.assert_array_equal(by_id["head"].weights["bias"], b2)
    assert by_id["features.0"].op == "Conv" and set(by_id["features.0"].weights) == {"weight"}
    assert by_id["features.0"].inputs == ["img"]


def test_shared_initializer_stays_a_constant() -> None:
    w = numpy_helper.from_array(RNG.standard_normal((2, 3, 3, 3)).astype(np.float32), "shared")
    nodes = [helper.make_node("Conv", ["a", "shared"], ["y"]), helper.make_node("Conv", ["b", "shared"], ["z"])]
    m = _model(nodes, [("a", [1, 3, 5, 5]), ("b", [1, 3, 5, 5])], ["y", "z"], 17, [w])
    k5_model = _check(m, {k: RNG.standard_normal((1, 3, 5, 5)).astype(np.float32) for k in "ab"})
    assert [n.op for n in k5_model.nodes] == ["Constant", "Conv", "Conv"]
    assert all(not n.weights for n in k5_model.nodes[1:])


@pytest.mark.parametrize(
    ("name", "op", "expected"),
    [
        ("/layer1/layer1.0/conv1/Conv", "Conv", ("layer1.0.conv1", "Conv")),
        ("/encoder/layers.0/self_attn/MatMul_1", "MatMul", ("encoder.layers.0.self_attn", "MatMul_1")),
        ("/Add_3", "Add", ("", "Add_3")),
        ("onnx::Conv_12", "Constant", ("onnx__Conv_12", "")),
    ],
)
def test_scope_ids(name: str, op: str, expected: tuple[str, str]) -> None:
    assert scope_id(name, op) == expected


def test_unsupported_ops_are_listed_with_counts() -> None:
    nodes = [
        helper.make_node("StringNormalizer", ["x"], ["a"]),
        helper.make_node("StringNormalizer", ["a"], ["b"]),
        helper.make_node("Foo", ["b"], ["y"], domain="com.example"),
    ]
    m = _model(nodes, [("x", [2])], ["y"], 17)
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(UnsupportedOpsError) as err:
        from_onnx(m)
    assert err.value.counts == {"StringNormalizer": 2, "com.example.Foo": 1}
    assert "StringNormalizer (x2)" in str(err.value) and "com.example.Foo (x1)" in str(err.value)


def test_element_types_outside_k5_are_reported() -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["s"], ["t"])],
        "g",
        [helper.make_tensor_value_info("s", onnx.TensorProto.STRING, [2])],
        [helper.make_tensor_value_info("t", onnx.TensorProto.STRING, [2])],
    )
    with pytest.raises(UnsupportedTypesError, match="STRING"):
        from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_sequence_inputs_keep_their_kind() -> None:
    graph = helper.make_graph(
        [helper.make_node("SequenceLength", ["seq"], ["n"])],
        "g",
        [helper.make_tensor_sequence_value_info("seq", onnx.TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("n", onnx.TensorProto.INT64, [])],
    )
    model = from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    info = model.graph.inputs[0]
    assert (info.kind, info.dtype) == ("sequence", "float32")
