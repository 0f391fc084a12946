"""What a k5 -> ONNX -> k5 round trip keeps besides the numbers: metadata and node ids."""

from __future__ import annotations

import numpy as np
import pytest

import k5
from k5 import Graph, Metadata, Model, Node, TensorInfo

pytest.importorskip("onnx", reason="the ONNX converter needs onnx")


def test_metadata_round_trips_through_onnx():
    graph = Graph(
        nodes=[Node("act", "Relu", ["x"], ["y"])],
        inputs=[TensorInfo("x", "float32", ["n", 3])],
        outputs=[TensorInfo("y", "float32", ["n", 3])],
    )
    meta = Metadata(author="Ada", description="a relu", license="MIT", extra={"dataset": "none"})
    proto = k5.to_onnx(Model(graph, metadata=meta))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props == {"author": "Ada", "license": "MIT", "dataset": "none"}
    assert proto.doc_string == "a relu"
    back = k5.from_onnx(proto)
    assert (back.metadata.author, back.metadata.license, back.metadata.description) == ("Ada", "MIT", "a relu")
    assert back.metadata.extra["dataset"] == "none"
    x = np.array([[-1.0, 0.5, 2.0]], np.float32)
    np.testing.assert_array_equal(k5.run(back, x)["y"], np.maximum(x, 0))
