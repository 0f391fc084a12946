"""Which k5 ops the ONNX converter reads and writes, derived from the converter's own tables (for docs/ops.md)."""

from __future__ import annotations

from k5.convert.onnx.exporter import DECOMPOSITIONS
from k5.ops import find_schema

__all__ = ["FOLDED_FROM", "support"]

#: k5 ops the importer produces from ONNX patterns rather than from an ONNX op of the same name
FOLDED_FROM: dict[str, str] = {"Linear": "MatMul+Add, Gemm (initializer weights)"}


#: ops written as themselves only in some forms; how the others are written
_EXPORT_NOTES: dict[str, str] = {
    op: "yes (layout=1: layout 0 between Transposes, as onnxruntime needs)" for op in ("LSTM", "GRU", "RNN")
}


def support(op: str, domain: str = "k5") -> dict[str, str]:
    """{"import": how ONNX becomes this op ('' if never), "export": how it is written ('' if it cannot be)}."""
    import onnx

    if domain != "k5":
        return {"import": "", "export": ""}
    native = onnx.defs.has(op)
    imported = "yes" if native else FOLDED_FROM.get(op, "")
    schema = find_schema(op, domain)
    decomposed = schema.decomposes_to if schema is not None and schema.k5_only else "decomposed"
    exported = decomposed if op in DECOMPOSITIONS else ("yes" if native else "")
    exported = _EXPORT_NOTES.get(op, exported) if exported == "yes" else exported
    return {"import": imported, "export": exported}
