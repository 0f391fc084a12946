"""k5 nodes -> Lua ``nn`` modules, one layout per k5 op (see :mod:`.tables` for the signature).

Each layout writes the fields Lua Torch's own constructor sets (so the module runs in Lua Torch) and that OpenCV's
importer reads. Inputs are batched (``[N, C, H, W]`` or ``[N, features]``), which Lua's modules and OpenCV both
take for batch mode. What Lua cannot express (grouped or asymmetric convolutions, other softmax axes...) is a
:class:`ConversionError` naming the node.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from k5.convert.torch7.context import ExportContext
from k5.convert.torch7.reader import T7Object, T7Storage, T7Table
from k5.convert.torch7.tables import EXPORTERS
from k5.errors import ConversionError
from k5.format.model import Node, as_array

__all__ = ["nn_module"]


def _empty() -> np.ndarray:
    return np.zeros((0,), dtype=np.float32)


def nn_module(name: str, **fields: Any) -> T7Object:
    """An ``nn.<name>`` with ``fields`` plus the ``output``/``gradInput``/``train`` every nn module has."""
    table = T7Table(output=_empty(), gradInput=_empty(), train=False)
    table.update(fields)
    return T7Object(f"nn.{name}", table, version=1)


def _f32(value: Any) -> np.ndarray:
    return np.ascontiguousarray(as_array(value), dtype=np.float32)


def _long_storage(values: list[int]) -> T7Storage:
    return T7Storage("torch.LongStorage", np.asarray(values, dtype=np.int64))


def _refuse(node: Node, what: str) -> ConversionError:
    return ConversionError(f"{what} has no Lua nn module", where=node.label)


def _rank(cx: ExportContext, node: Node) -> int:
    return len(cx.shape(node.inputs[0], node))


def _pair(values: list[int] | None, default: int, node: Node, what: str) -> tuple[int, int]:
    v = list(values) if values else [default, default]
    if len(v) != 2:
        raise _refuse(node, f"a {len(v)}-D {what}")
    return int(v[0]), int(v[1])


def _sym_pads(attrs: dict[str, Any], node: Node) -> tuple[int, int]:
    pads = attrs.get("pads") or [0, 0, 0, 0]
    if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
        raise _refuse(node, f"padding {pads} (Lua pads both sides of an axis alike)")
    if attrs["auto_pad"] not in ("NOTSET", "VALID"):
        raise _refuse(node, f"auto_pad={attrs['auto_pad']}")
    return int(pads[0]), int(pads[1])


# -- layers with weights ----------------------------------------------------------------------------------------
@EXPORTERS.register("Linear")
def linear(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    if _rank(cx, node) != 2:
        raise _refuse(node, f"Linear on a rank-{_rank(cx, node)} input")
    w = _f32(node.weights["weight"])
    fields: dict[str, Any] = {"weight": w}
    if "bias" in node.weights:
        fields["bias"] = _f32(node.weights["bias"])
    return nn_module("Linear", **fields)


@EXPORTERS.register("Conv")
def conv(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    w = _f32(node.weights["weight"])
    if w.ndim != 4:
        raise _refuse(node, f"a {w.ndim - 2}-D convolution")
    if int(attrs["group"]) != 1:
        raise _refuse(node, f"a grouped convolution (group={attrs['group']})")
    sh, sw = _pair(attrs.get("strides"), 1, node, "stride")
    dh, dw = _pair(attrs.get("dilations"), 1, node, "dilation")
    pads = [int(p) for p in (attrs.get("pads") or [0, 0, 0, 0])]
    lead: T7Object | None = None
    if len(pads) == 4 and (pads[0] != pads[2] or pads[1] != pads[3]):  # asymmetric: zero-pad first, as Lua can't
        lead = nn_module("SpatialZeroPadding", pad_t=pads[0], pad_l=pads[1], pad_b=pads[2], pad_r=pads[3])
        attrs = {**attrs, "pads": [0, 0, 0, 0]}
    ph, pw = _sym_pads(attrs, node)
    fields: dict[str, Any] = {
        "nInputPlane": w.shape[1], "nOutputPlane": w.shape[0], "kH": w.shape[2], "kW": w.shape[3],
        "dH": sh, "dW": sw, "padH": ph, "padW": pw, "weight": w,
    }  # fmt: skip
    if "bias" in node.weights:
        fields["bias"] = _f32(node.weights["bias"])
    if (dh, dw) != (1, 1):
        layer = nn_module("SpatialDilatedConvolution", dilationH=dh, dilationW=dw, **fields)
    else:
        layer = nn_module("SpatialConvolution", **fields)
    return layer if lead is None else nn_module("Sequential", modules=T7Table({1.0: lead, 2.0: layer}))


@EXPORTERS.register("Gemm")
def gemm(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    """ONNX's fully connected layer (``Y = A @ B.T + C``) as a Linear."""
    if float(attrs["alpha"]) != 1.0 or float(attrs["beta"]) != 1.0 or int(attrs["transA"]) or "B" not in node.weights:
        raise _refuse(node, "Gemm other than A @ B(.T) + C with a weight B")
    b = _f32(node.weights["B"])
    fields: dict[str, Any] = {"weight": np.ascontiguousarray(b if int(attrs["transB"]) else b.T)}
    if "C" in node.weights:
        c = _f32(node.weights["C"]).reshape(-1)
        if c.size != fields["weight"].shape[0]:
            raise _refuse(node, f"Gemm with a bias C of {c.size} values")
        fields["bias"] = c
    return nn_module("Linear", **fields)


@EXPORTERS.register("ConvTranspose")
def conv_transpose(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    w = _f32(node.weights["weight"])
    if w.ndim != 4:
        raise _refuse(node, f"a {w.ndim - 2}-D transposed convolution")
    if int(attrs["group"]) != 1 or attrs.get("output_shape"):
        raise _refuse(node, "a grouped transposed convolution, or one with output_shape,")
    if _pair(attrs.get("dilations"), 1, node, "dilation") != (1, 1):
        raise _refuse(node, "a dilated transposed convolution")
    sh, sw = _pair(attrs.get("strides"), 1, node, "stride")
    ah, aw = _pair(attrs.get("output_padding"), 0, node, "output_padding")
    ph, pw = _sym_pads(attrs, node)
    fields: dict[str, Any] = {
        "nInputPlane": w.shape[0], "nOutputPlane": w.shape[1], "kH": w.shape[2], "kW": w.shape[3],
        "dH": sh, "dW": sw, "padH": ph, "padW": pw, "adjH": ah, "adjW": aw, "weight": w,
    }  # fmt: skip
    if "bias" in node.weights:
        fields["bias"] = _f32(node.weights["bias"])
    return nn_module("SpatialFullConvolution", **fields)


@EXPORTERS.register("BatchNormalization")
def batch_norm(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    if int(attrs["training_mode"]):
        raise _refuse(node, "BatchNormalization in training mode")
    rank = _rank(cx, node)
    if rank not in (2, 4):
        raise _refuse(node, f"BatchNormalization on a rank-{rank} input")
    mean = _f32(node.weights["mean"])
    return nn_module(
        "BatchNormalization" if rank == 2 else "SpatialBatchNormalization",
        eps=float(attrs["epsilon"]), momentum=0.1, affine=True, nOutput=mean.shape[0],
        running_mean=mean, running_var=_f32(node.weights["var"]),
        weight=_f32(node.weights["scale"]), bias=_f32(node.weights["bias"]),
    )  # fmt: skip


@EXPORTERS.register("InstanceNormalization")
def instance_norm(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    scale = _f32(node.weights["scale"])
    c = scale.shape[0]
    return nn_module(
        "InstanceNormalization", nOutput=c, eps=float(attrs["epsilon"]), momentum=0.0, affine=True,
        weight=scale, bias=_f32(node.weights["bias"]),
        running_mean=np.zeros(c, np.float32), running_var=np.ones(c, np.float32),
    )  # fmt: skip


@EXPORTERS.register("PRelu")
def prelu(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    slope = _f32(node.weights["slope"]).reshape(-1)
    shape = cx.shape(node.inputs[0], node)
    if slope.size != 1 and (len(shape) < 2 or slope.size != shape[1]):
        raise _refuse(node, f"PRelu with {slope.size} slopes (Lua has one, or one per channel)")
    return nn_module("PReLU", nOutputPlane=0 if slope.size == 1 else slope.size, weight=slope)


# -- activations -------------------------------------------------------------------------------------------------
@EXPORTERS.register("Relu")
def relu(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    return nn_module("ReLU", threshold=0.0, val=0.0, inplace=False)


@EXPORTERS.register("Tanh")
def tanh(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    return nn_module("Tanh")


@EXPORTERS.register("Sigmoid")
def sigmoid(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    return nn_module("Sigmoid")


@EXPORTERS.register("Elu")
def elu(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    return nn_module("ELU", alpha=float(attrs["alpha"]), inplace=False)


@EXPORTERS.register("LeakyRelu")
def leaky_relu(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    return nn_module("LeakyReLU", negval=float(attrs["alpha"]), inplace=False)


@EXPORTERS.register("Clip")
def clip(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    lo, hi = cx.const(node, 1, "min"), cx.const(node, 2, "max")
    low = float(lo.reshape(-1)[0]) if lo is not None else None
    high = float(hi.reshape(-1)[0]) if hi is not None else None
    if low == 0.0 and high is None:
        return relu(cx, node, attrs)
    if low == 0.0 and high == 6.0:
        return nn_module("ReLU6", min_val=0.0, max_val=6.0, inplace=False)
    if low is None or high is None:
        raise _refuse(node, "Clip with one bound (other than ReLU's)")
    return nn_module("HardTanh", min_val=low, max_val=high, inplace=False)


@EXPORTERS.register("GlobalAveragePool", "GlobalMaxPool", "AdaptiveAveragePool", "AdaptiveMaxPool")
def global_pool(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    """Pooling over the whole image: a window of the input's size."""
    shape = cx.shape(node.inputs[0], node)
    if len(shape) != 4 or list(cx.shape(node.outputs[0], node)[2:]) != [1, 1]:
        raise _refuse(node, f"{node.op} to an output other than 1x1 of a 4-D input")
    fields = {"kH": shape[2], "kW": shape[3], "dH": 1, "dW": 1, "padH": 0, "padW": 0, "ceil_mode": False}
    if "Max" in node.op:
        return nn_module("SpatialMaxPooling", indices=np.zeros((0,), np.int64), **fields)
    return nn_module("SpatialAveragePooling", count_include_pad=True, divide=True, **fields)


@EXPORTERS.register("Identity", "Dropout")
def identity(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    return nn_module("Identity")


def _softmax(name: str) -> Any:
    def layout(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
        rank = _rank(cx, node)
        axis = int(attrs["axis"]) % rank
        if rank not in (2, 4) or axis != 1:  # Lua's (Log)SoftMax: dimension 2 of a batched 2-D or 4-D input
            raise _refuse(node, f"{node.op} over axis {attrs['axis']} of a rank-{rank} input")
        return nn_module(name)

    return layout


EXPORTERS.register("Softmax")(_softmax("SoftMax"))
EXPORTERS.register("LogSoftmax")(_softmax("LogSoftMax"))


# -- pooling ------------------------------------------------------------------------------------------------------
def _pool_fields(node: Node, attrs: dict[str, Any]) -> dict[str, Any]:
    kh, kw = _pair(attrs.get("kernel_shape"), 1, node, "pooling window")
    sh, sw = _pair(attrs.get("strides"), 1, node, "stride")
    if _pair(attrs.get("dilations"), 1, node, "dilation") != (1, 1):
        raise _refuse(node, "dilated pooling")
    ph, pw = _sym_pads(attrs, node)
    return {"kH": kh, "kW": kw, "dH": sh, "dW": sw, "padH": ph, "padW": pw, "ceil_mode": bool(attrs["ceil_mode"])}


@EXPORTERS.register("MaxPool")
def max_pool(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise _refuse(node, "MaxPool's Indices output")
    return nn_module("SpatialMaxPooling", indices=np.zeros((0,), np.int64), **_pool_fields(node, attrs))


@EXPORTERS.register("AveragePool")
def average_pool(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    fields = _pool_fields(node, attrs)
    return nn_module("SpatialAveragePooling", count_include_pad=bool(attrs["count_include_pad"]), divide=True, **fields)


# -- shapes -------------------------------------------------------------------------------------------------------
def _view(shape_in: tuple[int, ...], shape_out: tuple[int, ...], node: Node) -> T7Object:
    """A Lua ``View(-1, ...)`` that keeps the batch dimension: Lua and OpenCV agree on it for any batch size."""
    if not shape_in or not shape_out or shape_in[0] != shape_out[0]:
        raise _refuse(node, f"a reshape of {list(shape_in)} to {list(shape_out)} that changes the batch dimension")
    sizes = [-1, *shape_out[1:]]
    n = int(np.prod(shape_out[1:], dtype=np.int64))
    return nn_module("View", size=_long_storage(sizes), numElements=n)


@EXPORTERS.register("Reshape", "Flatten")
def reshape(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    shape_in = cx.shape(node.inputs[0], node)
    shape_out = cx.shape(node.outputs[0], node)
    if node.op == "Flatten" and int(attrs["axis"]) % max(len(shape_in), 1) != 1:
        raise _refuse(node, f"Flatten at axis {attrs['axis']}")
    return _view(shape_in, shape_out, node)


@EXPORTERS.register("Transpose")
def transpose(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    rank = _rank(cx, node)
    perm = list(attrs["perm"]) if attrs.get("perm") is not None else list(range(rank))[::-1]
    # swaps that turn the identity into perm (Lua applies them in order, 1-based)
    cur, swaps = list(range(rank)), []
    for i in range(rank):
        j = cur.index(perm[i])
        if j != i:
            cur[i], cur[j] = cur[j], cur[i]
            swaps.append(T7Table({1.0: float(i + 1), 2.0: float(j + 1)}))
    return nn_module("Transpose", permutations=T7Table({float(k + 1): s for k, s in enumerate(swaps)}))


@EXPORTERS.register("Pad")
def pad(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    pads = cx.const(node, 1, "pads")
    value = cx.const(node, 2, "constant_value")
    if cx.const(node, 3, "axes") is not None or pads is None:
        raise _refuse(node, "Pad with axes")
    p = [int(v) for v in pads.reshape(-1)]
    rank = len(p) // 2
    begin, end = p[:rank], p[rank:]
    if rank != 4 or any(begin[:2]) or any(end[:2]):
        raise _refuse(node, f"padding {p} (Lua pads the two spatial axes of a 4-D input)")
    if value is not None and float(value.reshape(-1)[0]) != 0.0:
        raise _refuse(node, "constant padding with a non-zero value")
    names = {"constant": "SpatialZeroPadding", "reflect": "SpatialReflectionPadding",
             "edge": "SpatialReplicationPadding"}  # fmt: skip
    if attrs["mode"] not in names:
        raise _refuse(node, f"Pad mode {attrs['mode']!r}")
    return nn_module(names[attrs["mode"]], pad_t=begin[2], pad_l=begin[3], pad_b=end[2], pad_r=end[3])


@EXPORTERS.register("Resize", "Upsample")
def upsample(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    shape_in, shape_out = cx.shape(node.inputs[0], node), cx.shape(node.outputs[0], node)
    nearest = attrs.get("mode") == "nearest"
    if node.op == "Resize":
        nearest = nearest and attrs.get("coordinate_transformation_mode") == "asymmetric"
        nearest = nearest and attrs.get("nearest_mode") == "floor"
    if not nearest or len(shape_in) != 4 or shape_in[:2] != shape_out[:2]:
        raise _refuse(node, f"{node.op} other than nearest (asymmetric, floor) upsampling of a 4-D input")
    sh, sw = shape_out[2] / shape_in[2], shape_out[3] / shape_in[3]
    if sh != sw or sh != int(sh) or sh < 1:
        raise _refuse(node, f"{node.op} by scales ({sh}, {sw}); Lua upsamples both axes by one integer factor")
    return nn_module("SpatialUpSamplingNearest", scale_factor=float(sh),
                     inputSize=_long_storage([0] * 4), outputSize=_long_storage([0] * 4))  # fmt: skip


@EXPORTERS.register("LpNormalization")
def lp_normalization(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    rank = _rank(cx, node)
    if rank != 2 or int(attrs["axis"]) % rank != 1:
        raise _refuse(node, f"LpNormalization over axis {attrs['axis']} of a rank-{rank} input")
    return nn_module("Normalize", p=float(attrs["p"]), eps=1e-10)


@EXPORTERS.register("LRN")
def lrn(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    return nn_module("SpatialCrossMapLRN", size=int(attrs["size"]), alpha=float(attrs["alpha"]),
                     beta=float(attrs["beta"]), k=float(attrs["bias"]))  # fmt: skip


@EXPORTERS.register("Mul", "Add", "Sum", "Concat")
def table_op(cx: ExportContext, node: Node, attrs: dict[str, Any]) -> T7Object:
    """The module that combines a table of inputs (the driver lays out the branches feeding it)."""
    if node.op == "Concat":
        rank = _rank(cx, node)
        return nn_module("JoinTable", dimension=int(attrs["axis"]) % rank + 1, size=_long_storage([]))
    return nn_module("CMulTable" if node.op == "Mul" else "CAddTable", inplace=False)


def mul_constant(value: np.ndarray, node: Node) -> T7Object:
    """``x * c`` with a scalar constant ``c``."""
    if value.size != 1:
        raise _refuse(node, f"Mul by a constant of shape {list(value.shape)} (Lua's MulConstant takes a scalar)")
    return nn_module("MulConstant", constant_scalar=float(value.reshape(-1)[0]), inplace=False)
