"""Declarative tables shared by the ONNX importer and exporter: one table per concern.

Nothing here imports ``onnx``; the tables hold plain data (ONNX type codes, op names, opset numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ATTRS_TO_INPUTS",
    "ATTR_VALUE_RENAMES",
    "COERCED_2D",
    "DEFAULT_ATTRS",
    "DROPPED_ATTRS",
    "DTYPE_ATTRS",
    "EXPORT_FLOOR_OPSET",
    "K5_TO_ONNX_DTYPE",
    "ONNX_DTYPES",
    "OUTPUT_COUNT_ATTRS",
    "RENAMED_OPS",
    "TYPE_ATTRS",
    "UNADAPTED_VERSIONS",
    "AttrToInput",
]

#: ONNX TensorProto element type code -> k5 dtype name (types outside this table are outside k5)
ONNX_DTYPES: dict[int, str] = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
    10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
    17: "float8_e4m3fn", 18: "float8_e4m3fnuz", 19: "float8_e5m2", 20: "float8_e5m2fnuz", 21: "uint4", 22: "int4",
    23: "float4_e2m1fn", 24: "float8_e8m0fnu", 25: "uint2", 26: "int2",
}  # fmt: skip

K5_TO_ONNX_DTYPE: dict[str, int] = {name: code for code, name in ONNX_DTYPES.items()}

#: op -> attributes holding an ONNX element type code; k5 holds the dtype *name* (a string attribute)
DTYPE_ATTRS: dict[str, tuple[str, ...]] = {
    "Cast": ("to",),
    "BitCast": ("to",),
    "EyeLike": ("dtype",),
    "RandomNormal": ("dtype",),
    "RandomUniform": ("dtype",),
    "RandomNormalLike": ("dtype",),
    "RandomUniformLike": ("dtype",),
    "Multinomial": ("dtype",),
    "Bernoulli": ("dtype",),
    "QuantizeLinear": ("output_dtype", "precision"),
    "DequantizeLinear": ("output_dtype",),
    "HannWindow": ("output_datatype",),
    "HammingWindow": ("output_datatype",),
    "BlackmanWindow": ("output_datatype",),
    "MelWeightMatrix": ("output_datatype",),
    "SequenceEmpty": ("dtype",),
}


#: op -> attributes holding an ONNX TypeProto; k5 holds its text, e.g. "seq(tensor(float32))" (see types.py)
TYPE_ATTRS: dict[str, tuple[str, ...]] = {"Optional": ("type",)}


@dataclass(frozen=True)
class AttrToInput:
    """An attribute of older opsets that later became input ``index``.

    ``kind``: how the constant is built: ``"int64s"`` (1-D int64), ``"int64"`` (0-d int64), ``"int64s1"``
    (1-D int64 of one element, from a scalar attribute), ``"float32"`` (0-d float32), ``"float32s"`` (1-D
    float32), ``"like0"`` (0-d, cast like input 0 with a CastLike node). ``default``: the value to feed when the
    attribute is absent (None: leave the input out).
    """

    attr: str
    index: int
    kind: str
    default: object = None


_AXES = (AttrToInput("axes", 1, "int64s"),)

#: op -> (first ONNX opset where the values are inputs, the attributes moved); applies to nodes of older opsets
ATTRS_TO_INPUTS: dict[str, tuple[int, tuple[AttrToInput, ...]]] = {
    "Split": (13, (AttrToInput("split", 1, "int64s"),)),
    "Squeeze": (13, _AXES),
    "Unsqueeze": (13, _AXES),
    "ReduceSum": (13, _AXES),
    **{
        op: (18, _AXES)
        for op in (
            "ReduceMean",
            "ReduceMax",
            "ReduceMin",
            "ReduceProd",
            "ReduceL1",
            "ReduceL2",
            "ReduceLogSum",
            "ReduceLogSumExp",
            "ReduceSumSquare",
        )
    },
    "Pad": (11, (AttrToInput("pads", 1, "int64s"), AttrToInput("value", 2, "like0"))),
    "Slice": (
        10,
        (AttrToInput("starts", 1, "int64s"), AttrToInput("ends", 2, "int64s"), AttrToInput("axes", 3, "int64s")),
    ),
    "Clip": (11, (AttrToInput("min", 1, "like0"), AttrToInput("max", 2, "like0"))),
    "TopK": (10, (AttrToInput("k", 1, "int64s1"),)),
    "Dropout": (12, (AttrToInput("ratio", 1, "float32"),)),
    "Reshape": (5, (AttrToInput("shape", 1, "int64s"),)),
    "Upsample": (9, (AttrToInput("scales", 1, "float32s"),)),
    "DFT": (20, (AttrToInput("axis", 2, "int64", default=1),)),
}

#: op -> (first opset where the attribute is required when input 1 is absent, attribute = number of outputs)
OUTPUT_COUNT_ATTRS: dict[str, tuple[int, str]] = {"Split": (18, "num_outputs")}

#: ONNX op (up to but excluding an opset) -> (k5 op, {old input index: new input index})
RENAMED_OPS: dict[str, tuple[int, str, dict[int, int]]] = {
    "Scatter": (99, "ScatterElements", {}),
    "Upsample": (99, "Resize", {1: 2}),
    "Resize": (11, "Resize", {1: 2}),  # Resize-10: (X, scales) -> Resize(X, roi="", scales)
}

#: attributes a renamed/adapted node gains (only where absent): (op, before opset) -> attrs
DEFAULT_ATTRS: dict[tuple[str, int], dict[str, object]] = {
    ("Upsample", 99): {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
    ("Resize", 11): {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
}

#: (op, before opset) -> {attr: {old value: new value}}
ATTR_VALUE_RENAMES: dict[tuple[str, int], dict[str, dict[object, object]]] = {
    ("GridSample", 20): {"mode": {"bilinear": "linear", "bicubic": "cubic"}},
    ("Upsample", 99): {"mode": {"bilinear": "linear", "trilinear": "linear"}},
}

#: (op, before opset) -> legacy attributes that carry no meaning in the current form
DROPPED_ATTRS: dict[tuple[str, int], frozenset[str]] = {
    ("BatchNormalization", 9): frozenset({"spatial", "is_test", "consumed_inputs"}),
    ("Dropout", 7): frozenset({"is_test"}),
    ("Gemm", 7): frozenset({"broadcast"}),
    **{(op, 7): frozenset({"broadcast"}) for op in ("Add", "Sub", "Mul", "Div", "And", "Or", "Xor", "Equal", "Less")},
}

#: op versions whose semantics no adapter maps to the current form: (op, before opset) -> why
#: (Scan-8 is rewritten by k5.convert.onnx.scan8 into a Loop over the batch, so it is not listed)
UNADAPTED_VERSIONS: dict[tuple[str, int], str] = {
    ("Tile", 6): "Tile-1 (tiles and axis inputs)",
}

#: ops that ONNX defined on 2-D coercions before an opset: op -> first opset with the per-axis form
COERCED_2D: dict[str, int] = {"Softmax": 13, "LogSoftmax": 13, "Hardmax": 13}

#: the lowest ONNX opset the exporter writes (Reduce* axes became inputs at 18)
EXPORT_FLOOR_OPSET = 18
