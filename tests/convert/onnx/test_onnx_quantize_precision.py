"""QuantizeLinear-25+ ``precision`` (an ONNX element type code): imported as a k5 dtype name (dropped when 0, which
means "the scale's type") and exported back as the code. Oracles: onnx.reference on the original model, and
onnxruntime where it implements the precision (float32, float16)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from k5.convert.onnx import from_onnx, to_onnx  # noqa: E402
from k5.runtime import run  # noqa: E402

X = (np.random.default_rng(11).uniform(-1.5, 1.5, (8, 250))).astype(np.float32)
#: ONNX code -> the k5 name the importer must give it (None: the attribute is dropped)
PRECISIONS = {0: None, TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16", TensorProto.BFLOAT16: "bfloat16"}
ORT_PRECISIONS = {0, TensorProto.FLOAT, TensorProto.FLOAT16}  # onnxruntime's CPU kernel refuses the others


def _model(precision: int):
    node = helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["y"], name="q", precision=precision)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(X.shape))],
        [helper.make_tensor_value_info("y", TensorProto.INT8, list(X.shape))],
        initializer=[helper.make_tensor("scale", TensorProto.FLOAT, [], [0.0123]),
                     helper.make_tensor("zp", TensorProto.INT8, [], [3])],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])


def _reference(m) -> np.ndarray:
    return ReferenceEvaluator(m).run(None, {"x": X})[0]


def test_precision_changes_the_result() -> None:
    """The inputs carry signal: the reference gives different results in float32 and in the half types."""
    f32 = _reference(_model(TensorProto.FLOAT))
    assert np.array_equal(f32, _reference(_model(0)))
    for half in (TensorProto.FLOAT16, TensorProto.BFLOAT16):
        assert not np.array_equal(f32, _reference(_model(half)))


@pytest.mark.parametrize("code", list(PRECISIONS), ids=lambda c: TensorProto.DataType.Name(c))
def test_precision_imports_runs_and_exports(code: int) -> None:
    original = _model(code)
    expected = _reference(original)
    model = from_onnx(original)
    node = model.graph.nodes[-1]
    assert node.op == "QuantizeLinear"
    assert node.attrs.get("precision") == PRECISIONS[code]
    np.testing.assert_array_equal(run(model, {"x": X})["y"], expected)
    exported = to_onnx(model)
    onnx.checker.check_model(exported)
    (q,) = [n for n in exported.graph.node if n.op_type == "QuantizeLinear"]
    written = {a.name: a.i for a in q.attribute}.get("precision", 0)
    assert written == code
    np.testing.assert_array_equal(_reference(exported), expected)
    if code in ORT_PRECISIONS:
        sess = ort.InferenceSession(exported.SerializeToString(), providers=["CPUExecutionProvider"])
        np.testing.assert_array_equal(sess.run(None, {"x": X})[0], expected)
