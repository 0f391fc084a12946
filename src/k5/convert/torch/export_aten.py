"""ATen converters: one FX node of an exported program (outside any converted layer) -> k5 ops.

Each converter is ``fn(cx, node) -> value`` (a k5 tensor name, a list of them, or a python value). Arguments are
read by their ATen schema names with :func:`args`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from k5.convert.torch.dtypes import k5_dtype
from k5.convert.torch.exporter import Const, Exporter, Sym
from k5.convert.torch.registry import ATEN_EXPORTERS
from k5.errors import ConversionError

__all__ = ["args"]

INT64_MAX = 2**63 - 1


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


def _axis(d: int, rank: int) -> int:
    return d % rank if rank else 0


def cast(cx: Exporter, name: str, dtype: str, have: str | None = None) -> str:
    if have == dtype:
        return name
    return cx.add1("Cast", [name], attrs={"to": dtype}, id=cx.scoped("cast"))  # k5's Cast takes the dtype name


def operand(cx: Exporter, a: Any, dtype: str) -> str:
    """An operand converted to ``dtype``: python scalars become constants of that dtype, tensors are cast."""
    v = cx.value(a) if not isinstance(a, (str, Const, Sym)) else a
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
        mask = Const(_causal(lq, lk), cx.scoped("causal"))
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


# --- shape and data movement -------------------------------------------------------------------------------------
@reg("view.default", "reshape.default", "_unsafe_view.default", "flatten.using_ints", "unflatten.int",
     produces=["Reshape"])  # fmt: skip
def reshape(cx: Exporter, n: Any) -> Any:
    src = n.args[0]
    out = n.meta["val"]
    if list(out.shape) == list(cx.fake(src).shape):
        return cx.t(src)
    dims = cx.reshape_dims(src, list(out.shape))
    shape = dims if isinstance(dims, str) else cx.ints(dims)
    return cx.add1("Reshape", [cx.t(src), shape])


@reg("permute.default", produces=["Transpose"])
def permute(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    perm = [_axis(d, rank) for d in a["dims"]]
    if perm == list(range(rank)):
        return cx.t(a["self"])
    return cx.add1("Transpose", [cx.t(a["self"])], attrs={"perm": perm})


@reg("transpose.int", produces=["Transpose"])
def transpose(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    perm = list(range(rank))
    d0, d1 = _axis(a["dim0"], rank), _axis(a["dim1"], rank)
    if d0 == d1:
        return cx.t(a["self"])
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return cx.add1("Transpose", [cx.t(a["self"])], attrs={"perm": perm})


@reg("t.default", "numpy_T.default", produces=["Transpose"])
def t(cx: Exporter, n: Any) -> Any:
    rank = cx.rank(n.args[0])
    if rank < 2:
        return cx.t(n.args[0])
    return cx.add1("Transpose", [cx.t(n.args[0])], attrs={"perm": list(reversed(range(rank)))})


@reg("unsqueeze.default", produces=["Unsqueeze"])
def unsqueeze(cx: Exporter, n: Any) -> Any:
    a = args(n)
    d = _axis(a["dim"], cx.rank(a["self"]) + 1)
    return cx.add1("Unsqueeze", [cx.t(a["self"]), cx.ints([d])])


@reg("squeeze.dim", "squeeze.dims", "squeeze.default", produces=["Squeeze"])
def squeeze(cx: Exporter, n: Any) -> Any:
    a = args(n)
    fake = cx.fake(a["self"])
    rank = fake.dim()
    dims = a.get("dim", None)
    if dims is None:
        dims = range(rank)
    dims = [dims] if isinstance(dims, int) else list(dims)
    axes = [_axis(d, rank) for d in dims if fake.shape[_axis(d, rank)] == 1]
    if not axes:
        return cx.t(a["self"])
    return cx.add1("Squeeze", [cx.t(a["self"]), cx.ints(axes)])


@reg("select.int", produces=["Gather"])
def select(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    idx = cx.value(a["index"]) if not isinstance(a["index"], int) else a["index"]
    if isinstance(idx, int):
        index = cx.const(np.asarray(idx, np.int64), cx.scoped("index"))
    else:
        index = cx.add1("Squeeze", [cx.t(idx), cx.ints([0])])
    return cx.add1("Gather", [cx.t(a["self"]), index], attrs={"axis": _axis(a["dim"], rank)})


@reg("index_select.default", produces=["Gather"])
def index_select(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    return cx.add1("Gather", [cx.t(a["self"]), cx.t(a["index"])], attrs={"axis": _axis(a["dim"], rank)})


def _bound(cx: Exporter, v: Any, default: int) -> Any:
    v = cx.value(v) if not isinstance(v, (int, type(None))) else v
    if v is None:
        return default
    if isinstance(v, Sym):
        return v
    return int(v)


@reg("slice.Tensor", produces=["Slice"])
def slice_(cx: Exporter, n: Any) -> Any:
    a = args(n)
    fake = cx.fake(a["self"])
    rank = fake.dim()
    d = _axis(a["dim"], rank)
    start = _bound(cx, a["start"], 0)
    end = _bound(cx, a["end"], INT64_MAX)
    step = int(a["step"] or 1)
    size = fake.shape[d]
    if (
        start == 0
        and step == 1
        and (end == INT64_MAX or (isinstance(end, int) and isinstance(size, int) and end >= size))
    ):
        return cx.t(a["self"])
    starts = cx.shape_tensor([start])
    ends = cx.shape_tensor([min(end, INT64_MAX) if isinstance(end, int) else end])
    return cx.add1("Slice", [cx.t(a["self"]), starts, ends, cx.ints([d]), cx.ints([step])])


@reg("narrow.default", produces=["Slice"])
def narrow(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    d = _axis(a["dim"], rank)
    start = _bound(cx, a["start"], 0)
    length = _bound(cx, a["length"], 0)
    if not isinstance(start, int) or not isinstance(length, int):
        raise ConversionError("narrow with a run-time start or length")
    ins = [cx.t(a["self"]), cx.ints([start]), cx.ints([start + length]), cx.ints([d])]
    return cx.add1("Slice", ins)


@reg("cat.default", "concat.default", produces=["Concat"])
def cat(cx: Exporter, n: Any) -> Any:
    a = args(n)
    tensors = [x for x in a["tensors"] if cx.fake(x) is None or cx.fake(x).numel() != 0]
    rank = cx.rank(tensors[0])
    if len(tensors) == 1:
        return cx.t(tensors[0])
    dt = _out_dtype(n)
    return cx.add1("Concat", [operand(cx, x, dt) for x in tensors], attrs={"axis": _axis(a["dim"], rank)})


@reg("stack.default", produces=["Unsqueeze", "Concat"])
def stack(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["tensors"][0]) + 1
    d = _axis(a["dim"], rank)
    parts = [cx.add1("Unsqueeze", [cx.t(x), cx.ints([d])]) for x in a["tensors"]]
    return cx.add1("Concat", parts, attrs={"axis": d})


@reg("split.Tensor", "split_with_sizes.default", "chunk.default", "unbind.int", "split.sizes",
     "tensor_split.sections", produces=["Split", "Squeeze"])  # fmt: skip
def split(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    d = _axis(a["dim"], rank)
    outs = n.meta["val"]
    sizes = [int(o.shape[d]) if "unbind" not in str(n.target) else 1 for o in outs]
    names = cx.add(
        "Split",
        [cx.t(a["self"]), cx.ints(sizes)],
        attrs={"axis": d},
        outputs=len(sizes) if len(sizes) > 1 else 1,
    )
    if "unbind" in str(n.target):
        names = [cx.add1("Squeeze", [x, cx.ints([d])]) for x in names]
    for name, o in zip(names, outs, strict=True):
        cx.meta[name] = o
    return names


@reg("expand.default", "expand_as.default", produces=["Expand"])
def expand(cx: Exporter, n: Any) -> Any:
    src = n.args[0]
    shape = list(n.meta["val"].shape)
    if shape == list(cx.fake(src).shape):
        return cx.t(src)
    return cx.add1("Expand", [cx.t(src), cx.shape_tensor(shape)])


@reg("_to_copy.default", "to.dtype", "to.dtype_layout", "type_as.default", "to.device", produces=["Cast"])
def to_dtype(cx: Exporter, n: Any) -> Any:
    src = n.args[0]
    want = _out_dtype(n)
    have = k5_dtype(cx.fake(src).dtype)
    return cast(cx, cx.t(src), want, have)


@reg("tril.default", "triu.default", produces=["Trilu"])
def trilu(cx: Exporter, n: Any) -> Any:
    a = args(n)
    upper = int("triu" in str(n.target))
    k = cx.const(np.asarray(int(a["diagonal"]), np.int64), cx.scoped("k"))
    return cx.add1("Trilu", [cx.t(a["self"]), k], attrs={"upper": upper})


@reg("constant_pad_nd.default", "pad.default", produces=["Pad"])
def pad(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    torch_pads = [int(p) for p in a["pad"]]
    begin, end = [0] * rank, [0] * rank
    for i in range(len(torch_pads) // 2):
        axis = rank - 1 - i
        begin[axis], end[axis] = torch_pads[2 * i], torch_pads[2 * i + 1]
    mode = a.get("mode", "constant") or "constant"
    modes = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
    ins = [cx.t(a["self"]), cx.ints([*begin, *end])]
    value = a.get("value")
    if mode == "constant" and value:
        ins.append(cx.const(np.asarray(value), cx.scoped("value"), dtype=_out_dtype(n)))
    return cx.add1("Pad", ins, attrs={"mode": modes[mode]})


def _fill(cx: Exporter, n: Any, value: float) -> Any:
    out = n.meta["val"]
    dt = k5_dtype(out.dtype)
    from k5.format.dtypes import dtype_of

    v = np.asarray([value]).astype(dtype_of(dt).numpy)
    shape = cx.shape_tensor(list(out.shape))
    return cx.add1("ConstantOfShape", [shape], weights={"value": v})


@reg("zeros.default", "zeros_like.default", "new_zeros.default", "empty.memory_format", "empty_like.default",
     "new_empty.default", produces=["ConstantOfShape"])  # fmt: skip
def zeros(cx: Exporter, n: Any) -> Any:
    return _fill(cx, n, 0)


@reg("ones.default", "ones_like.default", "new_ones.default", produces=["ConstantOfShape"])
def ones(cx: Exporter, n: Any) -> Any:
    return _fill(cx, n, 1)


@reg("full.default", "full_like.default", "new_full.default", produces=["ConstantOfShape"])
def full(cx: Exporter, n: Any) -> Any:
    return _fill(cx, n, float(args(n)["fill_value"]))


@reg("arange.default", "arange.start", "arange.start_step", produces=["Range"])
def arange(cx: Exporter, n: Any) -> Any:
    a = args(n)
    dt = _out_dtype(n)
    start = a.get("start", 0) if "start" in a else 0
    end = a["end"]
    step = a.get("step", 1) or 1

    def scalar(v: Any) -> str:
        v = cx.value(v) if not isinstance(v, (int, float)) else v
        if isinstance(v, Sym):
            s = cx.add1("Squeeze", [cx.t(v), cx.ints([0])])
            return cast(cx, s, dt, "int64")
        return cx.const(np.asarray(v), cx.scoped("range"), dtype=dt)

    return cx.add1("Range", [scalar(start), scalar(end), scalar(step)])


@reg("pixel_shuffle.default", produces=["DepthToSpace"])
def pixel_shuffle(cx: Exporter, n: Any) -> Any:
    a = args(n)
    return cx.add1("DepthToSpace", [cx.t(a["self"])], attrs={"blocksize": int(a["upscale_factor"]), "mode": "CRD"})


def _resize(cx: Exporter, n: Any, mode: str) -> Any:
    a = args(n)
    out = n.meta["val"]
    x = cx.t(a["input"])
    sizes = cx.shape_tensor(list(out.shape))
    attrs: dict[str, Any] = {"mode": mode}
    if mode == "nearest":
        attrs.update(coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    else:
        align = bool(a.get("align_corners"))
        attrs["coordinate_transformation_mode"] = "align_corners" if align else "pytorch_half_pixel"
    scales = a.get("scale_factors")
    if a.get("output_size") is None and scales is not None and mode == "nearest":
        rank = out.dim()
        sc = np.asarray([1.0, 1.0, *[float(s) for s in scales]][:rank], np.float32)
        return cx.add1("Resize", [x, "", cx.const(sc, cx.scoped("scales"))], attrs=attrs)
    return cx.add1("Resize", [x, "", "", sizes], attrs=attrs)


@reg("upsample_nearest1d.vec", "upsample_nearest2d.vec", "upsample_nearest3d.vec", produces=["Resize"])
def upsample_nearest(cx: Exporter, n: Any) -> Any:
    return _resize(cx, n, "nearest")


@reg("upsample_bilinear2d.vec", "upsample_linear1d.vec", "upsample_trilinear3d.vec", produces=["Resize"])
def upsample_linear(cx: Exporter, n: Any) -> Any:
    return _resize(cx, n, "linear")


@reg("sym_size.int", "sym_numel.default", produces=[])
def sym_size(cx: Exporter, n: Any) -> Any:
    v = n.meta["val"]
    return int(v) if isinstance(v, int) else Sym(v)
