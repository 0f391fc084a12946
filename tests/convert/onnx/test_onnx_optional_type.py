"""Optional's ``type`` attribute (an ONNX TypeProto) is imported as k5 text and written back as the same TypeProto.

Oracles: the original TypeProto (export must reproduce it), onnxruntime running the original model, and the text
form derived by hand from the TypeProto."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from k5.convert.onnx import from_onnx, to_onnx  # noqa: E402
from k5.convert.onnx.importer import UnsupportedTypesError  # noqa: E402
from k5.errors import ConversionError  # noqa: E402
from k5.format.model import Graph, Model, Node, TensorInfo  # noqa: E402
from k5.runtime import run  # noqa: E402

_T = helper.make_tensor_type_proto
TYPES = {
    "tensor(float32)": _T(TensorProto.FLOAT, None),
    "tensor(int64, [2, N, ?])": _T(TensorProto.INT64, [2, "N", None]),
    "tensor(bool, [])": _T(TensorProto.BOOL, []),
    "seq(tensor(float32, [5]))": helper.make_sequence_type_proto(_T(TensorProto.FLOAT, [5])),
    "seq(tensor(float16))": helper.make_sequence_type_proto(_T(TensorProto.FLOAT16, None)),
}


def _empty_optional_model(tp):
    """An empty Optional of type ``tp``, observed through OptionalHasElement (false)."""
    nodes = [
        helper.make_node("Optional", [], ["opt"], name="empty", type=tp),
        helper.make_node("OptionalHasElement", ["opt"], ["has"], name="has"),
    ]
    graph = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info("has", TensorProto.BOOL, [])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("text", list(TYPES))
def test_type_attribute_round_trips(text: str) -> None:
    original = _empty_optional_model(TYPES[text])
    model = from_onnx(original)
    assert model.graph.node("empty").attrs["type"] == text
    assert run(model, {})["has"].item() is False
    exported = to_onnx(model)
    onnx.checker.check_model(exported, full_check=True)
    (node,) = [n for n in exported.graph.node if n.op_type == "Optional"]
    (attr,) = node.attribute
    assert attr.type == onnx.AttributeProto.TYPE_PROTO
    assert attr.tp == TYPES[text]
    expected = ort.InferenceSession(original.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {})
    got = ort.InferenceSession(exported.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {})
    np.testing.assert_array_equal(got[0], expected[0])


def test_type_outside_k5_is_reported() -> None:
    model = _empty_optional_model(_T(TensorProto.STRING, None))
    with pytest.raises(UnsupportedTypesError, match="STRING"):
        from_onnx(model)


@pytest.mark.parametrize(
    ("text", "why"),
    [("tensor(float99)", "no ONNX element type"), ("list(tensor(float32))", "expects a type like"), ("", "expects")],
)
def test_malformed_type_text_is_refused_on_export(text: str, why: str) -> None:
    graph = Graph([Node("empty", "Optional", [], ["opt"], {"type": text}),
                   Node("has", "OptionalHasElement", ["opt"], ["y"])],
                  [], [TensorInfo("y", "bool", [])])  # fmt: skip
    with pytest.raises(ConversionError, match=rf"node 'empty' \(Optional\): attribute 'type' .*{why}"):
        to_onnx(Model(graph))
