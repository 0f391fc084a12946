"""ONNX ``TypeProto`` attribute values (Optional's ``type``) <-> k5 type strings.

k5 writes a type as text with k5 dtype names: ``tensor(float32)``, ``tensor(float32, [5, N])`` when a shape is
known (``?`` for an unnamed dimension), ``seq(tensor(int64))``, ``optional(seq(tensor(float32)))``. The importer
reads a ``TypeProto`` into that form and the exporter writes it back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from k5.convert.onnx.tables import K5_TO_ONNX_DTYPE, ONNX_DTYPES

__all__ = ["parse_type", "type_string"]

_WRAPPERS = {"sequence_type": "seq", "optional_type": "optional"}


def type_string(tp: Any, on_unknown: Callable[[str], None]) -> str | None:
    """The k5 text of an ONNX ``TypeProto``; ``on_unknown`` is told of each element type or kind outside k5
    (and None is returned)."""
    which = tp.WhichOneof("value")
    if which in _WRAPPERS:
        inner = type_string(getattr(tp, which).elem_type, on_unknown)
        return None if inner is None else f"{_WRAPPERS[which]}({inner})"
    if which != "tensor_type":
        on_unknown(f"type {which or 'undefined'}")
        return None
    tt = tp.tensor_type
    name = ONNX_DTYPES.get(tt.elem_type)
    if name is None:
        import onnx

        try:
            label = onnx.TensorProto.DataType.Name(tt.elem_type)
        except ValueError:
            label = f"type code {tt.elem_type}"
        on_unknown(label)
        return None
    if not tt.HasField("shape"):
        return f"tensor({name})"
    dims = [str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
    return f"tensor({name}, [{', '.join(dims)}])"


_TENSOR = re.compile(r"tensor\(\s*([A-Za-z0-9_]+)\s*(?:,\s*\[([^\]]*)\]\s*)?\)")


def parse_type(text: str) -> Any:
    """A k5 type string -> an ONNX ``TypeProto``; ValueError naming the text when it is not one."""
    from onnx import helper

    text = text.strip()
    for prefix, make in (("seq(", helper.make_sequence_type_proto), ("optional(", helper.make_optional_type_proto)):
        if text.startswith(prefix) and text.endswith(")"):
            return make(parse_type(text[len(prefix) : -1]))
    m = _TENSOR.fullmatch(text)
    if m is None:
        raise ValueError(f"expects a type like 'tensor(float32)' or 'seq(tensor(int64))'. Received: {text!r}")
    dtype, dims = m.group(1), m.group(2)
    if dtype not in K5_TO_ONNX_DTYPE:
        raise ValueError(f"names dtype {dtype!r}, which has no ONNX element type. Received: {text!r}")
    shape: list[int | str | None] | None = None
    if dims is not None:
        shape = []
        for d in (x.strip() for x in dims.split(",") if x.strip()):
            shape.append(int(d) if d.isdigit() else None if d == "?" else d)
    return helper.make_tensor_type_proto(K5_TO_ONNX_DTYPE[dtype], shape)
