"""ATen converters: one FX node of an exported program (outside any converted layer) -> k5 ops.

Each converter is ``fn(cx, node) -> value`` (a k5 tensor name, a list of them, or a python value). Arguments are
read by their ATen schema names with :func:`args`. Shape and indexing ops are in :mod:`.export_shape`, which
shares the helpers here (:func:`args`, :func:`cast`, :func:`operand`, :func:`reg`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from k5.convert.torch.dtypes import k5_dtype
from k5.convert.torch.export_context import ExportConst, Exporter, Sym
from k5.convert.torch.registry import ATEN_EXPORTERS
from k5.errors import ConversionError

__all__ = ["args", "cast", "operand", "reg"]


def reg(*names: str, produces: list[str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return ATEN_EXPORTERS.register(*(n if n.startswith("operator.") else f"aten.{n}" for n in names), produces=produces)


def args(n: Any) -> dict[str, Any]:
    """The node's arguments by ATen schema name, defaults filled in."""
    schema = n.target._schema
    out: dict[str, Any] = {}
    pos = 0
    for a in schema.arguments:
        if not a.kwarg_only and pos < len(n.args):
            out[a.name] = n.args[pos]
            pos += 1
        elif a.name in n.kwargs:
            out[a.name] = n.kwargs[a.name]
        else:
            out[a.name] = a.default_value if a.has_default_value() else None
    return out


def _out_dtype(n: Any) -> str:
    v = n.meta.get("val")
    return k5_dtype(v.dtype)


def cast(cx: Exporter, name: str, dtype: str, have: str | None = None) -> str:
    if have == dtype:
        return name
    return cx.add1("Cast", [name], attrs={"to": dtype}, id=cx.scoped("cast"))  # k5's Cast takes the dtype name


def operand(cx: Exporter, a: Any, dtype: str) -> str:
    """An operand converted to ``dtype``: python scalars become constants of that dtype, tensors are cast."""
    v = cx.value(a) if not isinstance(a, (str, ExportConst, Sym)) else a
    if isinstance(v, (bool, int, float)):
        return cx.const(np.asarray(v), cx.scoped("scalar"), dtype=dtype)
    name = cx.t(v)
    fake = cx.fake(a) if not isinstance(a, str) else cx.fake(name)
    have = k5_dtype(fake.dtype) if fake is not None and hasattr(fake, "dtype") else None
    if isinstance(v, Sym):
        have = "int64"
    return cast(cx, name, dtype, have)


# --- passthrough of getitem ----------------------------------------------------------------------------------------
@reg("operator.getitem", produces=[])
def getitem(cx: Exporter, n: Any) -> Any:
    return cx.value(n.args[0])[n.args[1]]


# --- elementwise -------------------------------------------------------------------------------------------------
_UNARY = {
    "relu.default": "Relu", "sigmoid.default": "Sigmoid", "tanh.default": "Tanh", "exp.default": "Exp",
    "log.default": "Log", "sqrt.default": "Sqrt", "neg.default": "Neg", "abs.default": "Abs", "erf.default": "Erf",
    "sin.default": "Sin", "cos.default": "Cos", "reciprocal.default": "Reciprocal", "floor.default": "Floor",
    "ceil.default": "Ceil", "round.default": "Round", "sign.default": "Sign", "logical_not.default": "Not",
    "hardswish.default": "HardSwish", "bitwise_not.default": "Not", "isnan.default": "IsNaN",
}  # fmt: skip


def _unary(op: str) -> Callable[[Exporter, Any], Any]:
    def convert(cx: Exporter, n: Any) -> Any:
        return cx.add1(op, [cx.t(n.args[0])])

    return convert


for _key, _op in _UNARY.items():
    reg(_key, produces=[_op])(_unary(_op))


@reg("rsqrt.default", produces=["Sqrt", "Reciprocal"])
def rsqrt(cx: Exporter, n: Any) -> Any:
    return cx.add1("Reciprocal", [cx.add1("Sqrt", [cx.t(n.args[0])])])


@reg("silu.default", produces=["Sigmoid", "Mul"])
def silu(cx: Exporter, n: Any) -> Any:
    x = cx.t(n.args[0])
    return cx.add1("Mul", [x, cx.add1("Sigmoid", [x])], id=cx.scoped("silu"))


@reg("mish.default", produces=["Softplus", "Tanh", "Mul"])
def mish(cx: Exporter, n: Any) -> Any:
    x = cx.t(n.args[0])
    return cx.add1("Mul", [x, cx.add1("Tanh", [cx.add1("Softplus", [x])])], id=cx.scoped("mish"))


@reg("gelu.default", produces=["Gelu"])
def gelu(cx: Exporter, n: Any) -> Any:
    a = args(n)
    return cx.add1("Gelu", [cx.t(a["self"])], attrs={"approximate": a["approximate"]})


@reg("leaky_relu.default", produces=["LeakyRelu"])
def leaky_relu(cx: Exporter, n: Any) -> Any:
    a = args(n)
    return cx.add1("LeakyRelu", [cx.t(a["self"])], attrs={"alpha": float(a["negative_slope"])})


@reg("elu.default", produces=["Elu"])
def elu(cx: Exporter, n: Any) -> Any:
    a = args(n)
    if a["scale"] != 1 or a["input_scale"] != 1:
        raise ConversionError(f"elu with scale={a['scale']}, input_scale={a['input_scale']} (k5 Elu has alpha only)")
    return cx.add1("Elu", [cx.t(a["self"])], attrs={"alpha": float(a["alpha"])})


@reg("hardsigmoid.default", produces=["HardSigmoid"])
def hardsigmoid(cx: Exporter, n: Any) -> Any:
    return cx.add1("HardSigmoid", [cx.t(n.args[0])], attrs={"alpha": 1.0 / 6.0, "beta": 0.5})


@reg("softplus.default", produces=["Softplus", "Mul", "Div"])
def softplus(cx: Exporter, n: Any) -> Any:
    a = args(n)
    x = cx.t(a["self"])
    beta = float(a["beta"])
    if beta == 1.0:
        return cx.add1("Softplus", [x])
    dt = _out_dtype(n)
    b = cx.const(np.asarray(beta), cx.scoped("beta"), dtype=dt)
    return cx.add1("Div", [cx.add1("Softplus", [cx.add1("Mul", [x, b])]), b])


@reg("hardtanh.default", "clamp.default", "clamp.Tensor", produces=["Clip"])
def clip(cx: Exporter, n: Any) -> Any:
    a = args(n)
    dt = _out_dtype(n)
    lo = a.get("min_val", a.get("min"))
    hi = a.get("max_val", a.get("max"))
    ins = [
        cx.t(a["self"]),
        operand(cx, lo, dt) if lo is not None else "",
        operand(cx, hi, dt) if hi is not None else "",
    ]
    return cx.add1("Clip", ins)


_BINARY = {
    "add.Tensor": "Add", "add.Scalar": "Add", "sub.Tensor": "Sub", "sub.Scalar": "Sub", "mul.Tensor": "Mul",
    "mul.Scalar": "Mul", "div.Tensor": "Div", "div.Scalar": "Div", "pow.Tensor_Scalar": "Pow",
    "pow.Tensor_Tensor": "Pow", "maximum.default": "Max", "minimum.default": "Min", "remainder.Tensor": "Mod",
    "remainder.Scalar": "Mod", "logical_and.default": "And", "logical_or.default": "Or",
    "bitwise_and.Tensor": "And", "bitwise_or.Tensor": "Or", "logical_xor.default": "Xor",
    "max.other": "Max", "min.other": "Min", "fmax.default": "Max", "fmin.default": "Min",
}  # fmt: skip


def _binary(op: str) -> Callable[[Exporter, Any], Any]:
    def convert(cx: Exporter, n: Any) -> Any:
        a = args(n)
        dt = _out_dtype(n)
        x = operand(cx, a["self"], dt)
        y = operand(cx, a["exponent"] if op == "Pow" else a["other"], dt)
        alpha = a.get("alpha", 1)
        if alpha is not None and alpha != 1:
            y = cx.add1("Mul", [y, cx.const(np.asarray(alpha), cx.scoped("alpha"), dtype=dt)])
        return cx.add1(op, [x, y])

    return convert


for _key, _op in _BINARY.items():
    reg(_key, produces=[_op])(_binary(_op))


@reg("rsub.Scalar", "rsub.Tensor", produces=["Sub"])
def rsub(cx: Exporter, n: Any) -> Any:
    a = args(n)
    dt = _out_dtype(n)
    x = operand(cx, a["self"], dt)
    if a.get("alpha", 1) != 1:
        x = cx.add1("Mul", [x, cx.const(np.asarray(a["alpha"]), cx.scoped("alpha"), dtype=dt)])
    return cx.add1("Sub", [operand(cx, a["other"], dt), x])


@reg("div.Tensor_mode", produces=["Div", "Floor"])
def div_mode(cx: Exporter, n: Any) -> Any:
    a = args(n)
    dt = _out_dtype(n)
    q = cx.add1("Div", [operand(cx, a["self"], dt), operand(cx, a["other"], dt)])
    mode = a["rounding_mode"]
    if mode is None:
        return q
    if not dt.startswith(("float", "bfloat")):
        raise ConversionError(f"integer division with rounding_mode={mode!r}")
    if mode == "floor":
        return cx.add1("Floor", [q])
    return cx.add1("Mul", [cx.add1("Sign", [q]), cx.add1("Floor", [cx.add1("Abs", [q])])])


_COMPARE = {
    "eq": ("Equal", False), "ne": ("Equal", True), "lt": ("Less", False), "gt": ("Greater", False),
    "le": ("LessOrEqual", False), "ge": ("GreaterOrEqual", False),
}  # fmt: skip


def _compare(op: str, negate: bool) -> Callable[[Exporter, Any], Any]:
    def convert(cx: Exporter, n: Any) -> Any:
        a = args(n)
        fx, fy = cx.fake(a["self"]), cx.fake(a["other"]) if not isinstance(a["other"], (int, float)) else None
        import torch

        dts = [f.dtype for f in (fx, fy) if f is not None and hasattr(f, "dtype")]
        common = dts[0] if len(dts) == 1 else torch.promote_types(*dts)
        if isinstance(a["other"], float) and not common.is_floating_point:
            common = torch.float32
        dt = k5_dtype(common)
        out = cx.add1(op, [operand(cx, a["self"], dt), operand(cx, a["other"], dt)])
        return cx.add1("Not", [out]) if negate else out

    return convert


for _name, (_op, _neg) in _COMPARE.items():
    reg(f"{_name}.Tensor", f"{_name}.Scalar", produces=[_op, "Not"] if _neg else [_op])(_compare(_op, _neg))


@reg("where.self", "where.ScalarOther", "where.ScalarSelf", "where.Scalar", produces=["Where"])
def where(cx: Exporter, n: Any) -> Any:
    a = args(n)
    dt = _out_dtype(n)
    return cx.add1("Where", [cx.t(a["condition"]), operand(cx, a["self"], dt), operand(cx, a["other"], dt)])


@reg("masked_fill.Scalar", "masked_fill.Tensor", produces=["Where"])
def masked_fill(cx: Exporter, n: Any) -> Any:
    a = args(n)
    dt = _out_dtype(n)
    return cx.add1("Where", [cx.t(a["mask"]), operand(cx, a["value"], dt), operand(cx, a["self"], dt)])


# --- linear algebra ----------------------------------------------------------------------------------------------
@reg("matmul.default", "mm.default", "bmm.default", produces=["MatMul"])
def matmul(cx: Exporter, n: Any) -> Any:
    return cx.add1("MatMul", [cx.t(n.args[0]), cx.t(n.args[1])])


@reg("linear.default", produces=["Linear"])
def linear(cx: Exporter, n: Any) -> Any:
    a = args(n)
    ins = [cx.t(a["input"]), cx.t(a["weight"]), cx.t(a["bias"]) if a["bias"] is not None else ""]
    return cx.add1("Linear", ins)


@reg("addmm.default", produces=["Gemm"])
def addmm(cx: Exporter, n: Any) -> Any:
    a = args(n)
    attrs = {"alpha": float(a["alpha"]), "beta": float(a["beta"])}
    return cx.add1("Gemm", [cx.t(a["mat1"]), cx.t(a["mat2"]), cx.t(a["self"])], attrs=attrs)


@reg("einsum.default", produces=["Einsum"])
def einsum(cx: Exporter, n: Any) -> Any:
    a = args(n)
    return cx.add1("Einsum", [cx.t(x) for x in a["tensors"]], attrs={"equation": a["equation"].replace(" ", "")})


# --- layers used as functions --------------------------------------------------------------------------------------
def _tuple(v: Any, nd: int) -> list[int]:
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return [int(x) for x in (v * nd if len(v) == 1 else v)]


def _conv(cx: Exporter, n: Any, transposed: bool) -> Any:
    a = args(n)
    weight = cx.fake(a["weight"])
    nd = weight.dim() - 2
    stride, dilation = _tuple(a["stride"], nd), _tuple(a["dilation"], nd)
    kernel = [int(k) for k in weight.shape[2:]]
    padding = a["padding"]
    if isinstance(padding, str):
        if padding == "valid":
            begin = end = [0] * nd
        else:
            totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
            begin, end = [t // 2 for t in totals], [t - t // 2 for t in totals]
    else:
        begin = end = _tuple(padding, nd)
    attrs: dict[str, Any] = {
        "kernel_shape": kernel,
        "strides": stride,
        "pads": [*begin, *end],
        "dilations": dilation,
        "group": int(a["groups"]),
    }
    ins = [cx.t(a["input"]), cx.t(a["weight"]), cx.t(a["bias"]) if a["bias"] is not None else ""]
    if transposed:
        attrs["output_padding"] = _tuple(a["output_padding"], nd)
        return cx.add1("ConvTranspose", ins, attrs=attrs)
    return cx.add1("Conv", ins, attrs=attrs)


@reg("conv1d.default", "conv2d.default", "conv3d.default", "conv1d.padding", "conv2d.padding", "conv3d.padding",
     produces=["Conv"])  # fmt: skip
def conv(cx: Exporter, n: Any) -> Any:
    return _conv(cx, n, False)


@reg("conv_transpose1d.default", "conv_transpose2d.input", "conv_transpose3d.input", produces=["ConvTranspose"])
def conv_transpose(cx: Exporter, n: Any) -> Any:
    return _conv(cx, n, True)


@reg("convolution.default", produces=["Conv", "ConvTranspose"])
def convolution(cx: Exporter, n: Any) -> Any:
    return _conv(cx, n, bool(args(n)["transposed"]))


def _channel_affine(cx: Exporter, a: dict[str, Any]) -> list[str]:
    """The per-channel scale and bias of a norm op; absent ones become ones and zeros."""
    c = cx.fake(a["input"]).shape[1]
    return [
        cx.t(a["weight"]) if a["weight"] is not None else cx.const(np.ones(c, np.float32), cx.scoped("scale")),
        cx.t(a["bias"]) if a["bias"] is not None else cx.const(np.zeros(c, np.float32), cx.scoped("bias")),
    ]


def _batch_norm(cx: Exporter, a: dict[str, Any]) -> str:
    ins = [cx.t(a["input"]), *_channel_affine(cx, a), cx.t(a["running_mean"]), cx.t(a["running_var"])]
    return cx.add1("BatchNormalization", ins, attrs={"epsilon": float(a["eps"])})


@reg("_native_batch_norm_legit_no_training.default", produces=["BatchNormalization"])
def batch_norm_no_training(cx: Exporter, n: Any) -> Any:
    return [_batch_norm(cx, args(n)), None, None]


@reg("batch_norm.default", produces=["BatchNormalization"])
def batch_norm(cx: Exporter, n: Any) -> Any:
    a = args(n)
    if a["training"] or a["running_mean"] is None:
        raise ConversionError("batch_norm with batch statistics (training=True) cannot be exported")
    return _batch_norm(cx, a)


@reg("layer_norm.default", produces=["LayerNormalization"])
def layer_norm(cx: Exporter, n: Any) -> Any:
    a = args(n)
    shape = [int(s) for s in a["normalized_shape"]]
    fake = cx.fake(a["input"])
    scale = cx.t(a["weight"]) if a["weight"] is not None else cx.const(np.ones(shape, np.float32), cx.scoped("scale"))
    if a["weight"] is None and fake is not None:
        scale = cast(cx, scale, k5_dtype(fake.dtype), "float32")
    ins = [cx.t(a["input"]), scale, cx.t(a["bias"]) if a["bias"] is not None else ""]
    return cx.add1("LayerNormalization", ins, attrs={"axis": -len(shape), "epsilon": float(a["eps"])})


@reg("group_norm.default", produces=["GroupNormalization"])
def group_norm(cx: Exporter, n: Any) -> Any:
    a = args(n)
    ins = [cx.t(a["input"]), *_channel_affine(cx, a)]
    return cx.add1("GroupNormalization", ins, attrs={"num_groups": int(a["group"]), "epsilon": float(a["eps"])})


@reg("embedding.default", produces=["Embedding"])
def embedding(cx: Exporter, n: Any) -> Any:
    a = args(n)
    return cx.add1("Embedding", [cx.t(a["indices"]), cx.t(a["weight"])])


@reg("softmax.int", "_softmax.default", produces=["Softmax"])
def softmax(cx: Exporter, n: Any) -> Any:
    a = args(n)
    return cx.add1("Softmax", [cx.t(a["self"])], attrs={"axis": int(a["dim"])})


@reg("log_softmax.int", "_log_softmax.default", produces=["LogSoftmax"])
def log_softmax(cx: Exporter, n: Any) -> Any:
    a = args(n)
    return cx.add1("LogSoftmax", [cx.t(a["self"])], attrs={"axis": int(a["dim"])})


@reg("scaled_dot_product_attention.default", produces=["MatMul", "Transpose", "Mul", "Add", "Softmax", "Where"])
def sdpa(cx: Exporter, n: Any) -> Any:
    a = args(n)
    q, k, v = cx.t(a["query"]), cx.t(a["key"]), cx.t(a["value"])
    fq, fk = cx.fake(a["query"]), cx.fake(a["key"])
    if a.get("enable_gqa"):
        raise ConversionError("scaled_dot_product_attention with enable_gqa=True")
    rank = fq.dim()
    e = fq.shape[-1]
    if not isinstance(e, int):
        raise ConversionError("scaled_dot_product_attention with a dynamic head size")
    scale = a["scale"] if a["scale"] is not None else 1.0 / math.sqrt(e)
    dt = k5_dtype(fq.dtype)
    perm = list(range(rank))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    kt = cx.add1("Transpose", [k], attrs={"perm": perm})
    scores = cx.add1("MatMul", [q, kt])
    scores = cx.add1("Mul", [scores, cx.const(np.asarray(scale), cx.scoped("scale"), dtype=dt)])
    mask = a["attn_mask"]
    if a["is_causal"]:
        lq, lk = fq.shape[-2], fk.shape[-2]
        if not (isinstance(lq, int) and isinstance(lk, int)):
            raise ConversionError("scaled_dot_product_attention(is_causal=True) with dynamic sequence lengths")
        mask = ExportConst(_causal(lq, lk), cx.scoped("causal"))
    if mask is not None:
        fm = cx.fake(mask)
        m = cx.t(mask)
        if fm is not None and str(fm.dtype) == "torch.bool":
            ninf = cx.const(np.asarray(-np.inf), cx.scoped("ninf"), dtype=dt)
            scores = cx.add1("Where", [m, scores, ninf])
        else:
            scores = cx.add1("Add", [scores, m])
    probs = cx.add1("Softmax", [scores], attrs={"axis": -1})
    return cx.add1("MatMul", [probs, v], id=cx.scoped("sdpa"))


def _causal(lq: int, lk: int) -> Any:
    import torch

    return torch.ones(lq, lk, dtype=torch.bool).tril(diagonal=lk - lq) if lk >= lq else torch.ones(lq, lk).bool().tril()


# --- pooling -----------------------------------------------------------------------------------------------------
def _pool(cx: Exporter, n: Any, op: str, nd: int) -> Any:
    a = args(n)
    kernel = _tuple(a["kernel_size"], nd)
    stride = _tuple(a["stride"], nd) if a["stride"] else kernel
    pads = _tuple(a["padding"], nd)
    attrs: dict[str, Any] = {
        "kernel_shape": kernel,
        "strides": stride,
        "pads": pads * 2,
        "ceil_mode": int(bool(a["ceil_mode"])),
    }
    if op == "MaxPool":
        attrs["dilations"] = _tuple(a["dilation"], nd)
    else:
        if a.get("divisor_override") is not None:
            raise ConversionError("avg_pool with divisor_override")
        attrs["count_include_pad"] = int(bool(a["count_include_pad"]))
    return cx.add1(op, [cx.t(a["self"])], attrs=attrs)


for _nd in (1, 2, 3):
    reg(f"max_pool{_nd}d.default", produces=["MaxPool"])(lambda cx, n, _nd=_nd: _pool(cx, n, "MaxPool", _nd))
    reg(f"avg_pool{_nd}d.default", produces=["AveragePool"])(lambda cx, n, _nd=_nd: _pool(cx, n, "AveragePool", _nd))


def _adaptive(cx: Exporter, n: Any, kind: str) -> Any:
    a = args(n)
    size = [int(s) for s in a["output_size"]]
    x = cx.t(a["self"])
    fake = cx.fake(a["self"])
    spatial = list(fake.shape[-len(size) :])
    if all(s == 1 for s in size):
        return cx.add1(f"Global{kind}Pool", [x])
    if spatial == size:
        return x
    op = "AdaptiveAveragePool" if kind == "Average" else "AdaptiveMaxPool"
    return cx.add1(op, [x], attrs={"output_size": size})


@reg("adaptive_avg_pool1d.default", "adaptive_avg_pool2d.default", "_adaptive_avg_pool2d.default",
     "adaptive_avg_pool3d.default", produces=["GlobalAveragePool", "AdaptiveAveragePool"])  # fmt: skip
def adaptive_avg_pool(cx: Exporter, n: Any) -> Any:
    return _adaptive(cx, n, "Average")


@reg("adaptive_max_pool1d.default", "adaptive_max_pool2d.default", produces=["GlobalMaxPool", "AdaptiveMaxPool"])
def adaptive_max_pool(cx: Exporter, n: Any) -> Any:
    return [_adaptive(cx, n, "Max"), None]


# --- reductions --------------------------------------------------------------------------------------------------
def _reduce(op: str) -> Callable[[Exporter, Any], Any]:
    def convert(cx: Exporter, n: Any) -> Any:
        a = args(n)
        x = cx.t(a["self"])
        dims = a.get("dim")
        keep = int(bool(a.get("keepdim", False)))
        if a.get("dtype") is not None:
            x = cast(cx, x, k5_dtype(a["dtype"]))
        if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
            return cx.add1(op, [x], attrs={"keepdims": keep})
        dims = [dims] if isinstance(dims, int) else list(dims)
        return cx.add1(op, [x, cx.ints(dims)], attrs={"keepdims": keep})

    return convert


for _key, _op in {
    "mean.dim": "ReduceMean", "mean.default": "ReduceMean", "sum.dim_IntList": "ReduceSum",
    "sum.default": "ReduceSum", "amax.default": "ReduceMax", "amin.default": "ReduceMin", "prod.dim_int": "ReduceProd",
}.items():  # fmt: skip
    reg(_key, produces=[_op])(_reduce(_op))


@reg("argmax.default", "argmin.default", produces=["ArgMax", "ArgMin"])
def argmax(cx: Exporter, n: Any) -> Any:
    a = args(n)
    op = "ArgMax" if "argmax" in str(n.target) else "ArgMin"
    x = cx.t(a["self"])
    if a["dim"] is None:
        x = cx.add1("Reshape", [x, cx.ints([-1])])
        return cx.add1(op, [x], attrs={"axis": 0, "keepdims": 0})
    return cx.add1(op, [x], attrs={"axis": int(a["dim"]), "keepdims": int(bool(a["keepdim"]))})


@reg("cumsum.default", produces=["CumSum"])
def cumsum(cx: Exporter, n: Any) -> Any:
    a = args(n)
    x = operand(cx, a["self"], _out_dtype(n))  # torch sums bool and small ints as int64
    return cx.add1("CumSum", [x, cx.const(np.asarray(int(a["dim"]), np.int64), cx.scoped("axis"))])
