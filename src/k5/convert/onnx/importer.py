"""ONNX -> k5 import.

k5's default op set follows ONNX's operator semantics (latest opset) wherever ONNX has the op, so most ONNX nodes
map one-to-one; version adapters, pattern folding (Gemm/MatMul+Add -> Linear...) and weight ownership are layered
on top of the one-to-one mapping.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from k5.errors import ConversionError, UnsupportedOpsError
from k5.format.dtypes import DTYPES
from k5.format.model import DEFAULT_DOMAIN, Graph, Model, Node, TensorInfo

__all__ = ["from_onnx", "onnx_dtype_name", "tensor_to_array"]

#: ONNX TensorProto data type -> k5 dtype name
_ONNX_DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
    10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
    17: "float8_e4m3fn", 18: "float8_e4m3fnuz", 19: "float8_e5m2", 20: "float8_e5m2fnuz",
}  # fmt: skip

ONNX_DOMAINS = ("", "ai.onnx")


def onnx_dtype_name(elem_type: int, *, where: str = "") -> str:
    try:
        return _ONNX_DTYPES[elem_type]
    except KeyError:
        import onnx

        raise ConversionError(
            f"ONNX element type {onnx.TensorProto.DataType.Name(elem_type)} has no k5 dtype", where=where or None
        ) from None


def tensor_to_array(tensor: Any) -> np.ndarray:
    """An ONNX TensorProto as a NumPy array of the matching k5 dtype."""
    from onnx import numpy_helper

    name = onnx_dtype_name(tensor.data_type, where=f"tensor {tensor.name!r}")
    arr = numpy_helper.to_array(tensor)
    want = DTYPES[name].numpy
    if arr.dtype != want:
        arr = arr.view(want) if arr.dtype.itemsize == want.itemsize else arr.astype(want)
    return np.ascontiguousarray(arr)


def _value_info(vi: Any) -> TensorInfo:
    t = vi.type
    if not t.HasField("tensor_type"):
        return TensorInfo(vi.name)
    tt = t.tensor_type
    dtype = onnx_dtype_name(tt.elem_type, where=f"value {vi.name!r}") if tt.elem_type else None
    shape: list[int | str] | None = None
    if tt.HasField("shape"):
        shape = []
        for i, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value"):
                shape.append(int(d.dim_value))
            else:
                shape.append(d.dim_param or f"{vi.name}_dim{i}")
    return TensorInfo(vi.name, dtype, shape)


_ID_BAD = re.compile(r"[\x00]")


class _Importer:
    def __init__(self, opset: dict[str, int]) -> None:
        self.opset = opset
        self.ids: set[str] = set()
        self.unsupported: Counter[str] = Counter()

    def node_id(self, name: str, op_type: str) -> str:
        base = _ID_BAD.sub("", name.strip("/").replace("/", ".")) or op_type
        candidate, n = base, 1
        while candidate in self.ids:
            n += 1
            candidate = f"{base}_{n}"
        self.ids.add(candidate)
        return candidate

    def attr(self, a: Any) -> Any:
        import onnx

        T = onnx.AttributeProto
        if a.type == T.INT:
            return int(a.i)
        if a.type == T.FLOAT:
            return float(a.f)
        if a.type == T.STRING:
            return a.s.decode("utf-8")
        if a.type == T.INTS:
            return [int(v) for v in a.ints]
        if a.type == T.FLOATS:
            return [float(v) for v in a.floats]
        if a.type == T.STRINGS:
            return [s.decode("utf-8") for s in a.strings]
        if a.type == T.GRAPH:
            return self.graph(a.g)
        if a.type == T.GRAPHS:
            return [self.graph(g) for g in a.graphs]
        if a.type == T.TENSOR:
            return tensor_to_array(a.t)
        raise ConversionError(f"attribute {a.name!r} has unsupported ONNX type {T.AttributeType.Name(a.type)}")

    def graph(self, g: Any) -> Graph:
        from k5.ops.registry import find_schema

        nodes: list[Node] = []
        init_names = {t.name for t in g.initializer}
        for t in g.initializer:
            nodes.append(
                Node(self.node_id(t.name, "Constant"), "Constant", [], [t.name], weights={"value": tensor_to_array(t)})
            )
        for i, n in enumerate(g.node):
            domain = DEFAULT_DOMAIN if n.domain in ONNX_DOMAINS else n.domain
            attrs: dict[str, Any] = {}
            weights: dict[str, Any] = {}
            for a in n.attribute:
                value = self.attr(a)
                if isinstance(value, np.ndarray):
                    weights[a.name] = value  # tensor-valued attributes become node-owned weights
                else:
                    attrs[a.name] = value
            if find_schema(n.op_type, domain) is None:
                self.unsupported[n.op_type if domain == DEFAULT_DOMAIN else f"{n.domain}.{n.op_type}"] += 1
            nodes.append(
                Node(
                    self.node_id(n.name or f"{n.op_type}_{i}", n.op_type),
                    n.op_type,
                    list(n.input),
                    list(n.output),
                    attrs,
                    weights,
                    domain,
                )
            )
        inputs = [_value_info(v) for v in g.input if v.name not in init_names]
        return Graph(
            nodes=nodes,
            inputs=inputs,
            outputs=[_value_info(v) for v in g.output],
            value_info=[_value_info(v) for v in g.value_info],
            name=g.name,
        )


def from_onnx(model: Any) -> Model:
    """Convert an ONNX ``ModelProto`` (or a path to a ``.onnx`` file) into a k5 :class:`Model`."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    opset = {DEFAULT_DOMAIN if o.domain in ONNX_DOMAINS else o.domain: int(o.version) for o in model.opset_import}
    imp = _Importer(opset)
    graph = imp.graph(model.graph)
    if imp.unsupported:
        raise UnsupportedOpsError("ONNX", dict(imp.unsupported))
    from k5.ops.registry import OPSET_VERSION

    k5_opset = {DEFAULT_DOMAIN: OPSET_VERSION}
    k5_opset.update({d: v for d, v in opset.items() if d != DEFAULT_DOMAIN})
    return Model(graph=graph, opset=k5_opset)
