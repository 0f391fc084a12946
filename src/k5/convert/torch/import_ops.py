"""k5 op -> PyTorch: one builder per k5 op, registered in :data:`IMPORTERS`.

A builder is ``fn(b, node, ins) -> output value(s)``: ``ins`` holds, per node input, an FX node, a
:class:`~k5.convert.torch.importer.Const` or None. Builders call torch functions through ``b.call`` (which folds
constant inputs) or add PyTorch layers with ``b.module``. The small ``_k5_*`` functions below are what the
generated module calls where ONNX semantics need more than one torch call; they use torch only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from k5.convert.torch.importer import Attrs, Builder, Const
from k5.convert.torch.registry import register_builder
from k5.errors import ConversionError
from k5.format.model import Node

__all__: list[str] = []

# k5 dtype names (Cast's "to") that torch has under the same name
_TORCH_DTYPES = frozenset({
    "float32", "uint8", "int8", "uint16", "int16", "int32", "int64", "bool", "float16", "float64", "uint32", "uint64",
    "complex64", "complex128", "bfloat16",
})  # fmt: skip


reg = register_builder


def _unsupported(node: Node, what: str) -> ConversionError:
    return ConversionError(f"{what} is not supported by to_torch", where=node.label)


# --- run-time helpers (called by the generated module) ------------------------------------------------------------
def _k5_reshape(x: Any, shape: Any, allowzero: int = 0) -> Any:
    shape = shape.tolist() if hasattr(shape, "tolist") else list(shape)
    if not allowzero:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _k5_flatten(x: Any, axis: int) -> Any:
    axis = axis % x.dim() if x.dim() else 0
    lead = 1
    for d in x.shape[:axis]:
        lead = lead * d
    return x.reshape(lead, -1)


def _k5_unsqueeze(x: Any, axes: list[int]) -> Any:
    rank = x.dim() + len(axes)
    for a in sorted(a % rank for a in axes):
        x = x.unsqueeze(a)
    return x


def _k5_squeeze(x: Any, axes: list[int] | None) -> Any:
    if axes is None:
        return x.squeeze()
    return x.squeeze(tuple(a % x.dim() for a in axes))


def _k5_shape(x: Any, start: int = 0, end: int | None = None) -> Any:
    import torch

    return torch.tensor(list(x.shape)[start:end], dtype=torch.int64)


def _k5_gather(x: Any, idx: Any, axis: int) -> Any:
    import torch

    axis = axis % x.dim()
    if not isinstance(idx, torch.Tensor):
        idx = torch.tensor(idx, dtype=torch.int64)
    size = x.shape[axis]
    idx = torch.where(idx < 0, idx + size, idx)
    if idx.dim() == 0:
        return x.select(axis, idx)
    flat = x.index_select(axis, idx.reshape(-1))
    return flat.reshape(list(x.shape[:axis]) + list(idx.shape) + list(x.shape[axis + 1 :]))


def _k5_slice(x: Any, starts: list[int], ends: list[int], axes: list[int] | None, steps: list[int] | None) -> Any:
    rank = x.dim()
    axes = list(range(len(starts))) if axes is None else [a % rank for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * rank
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        size = x.shape[a]
        if st > 0:
            s = max(0, min(size, s + size if s < 0 else s))
            e = max(0, min(size, e + size if e < 0 else e))
            index[a] = slice(s, e, st)
        else:
            raise ValueError("Slice with a negative step")
    return x[tuple(index)]


def _k5_expand(x: Any, shape: list[int]) -> Any:
    import torch

    return x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(int(s) for s in shape)))


def _k5_constant_of_shape(shape: list[int], value: Any) -> Any:
    import torch

    return torch.full([int(s) for s in shape], value.reshape(-1)[0].item(), dtype=value.dtype)


def _k5_div(a: Any, b: Any) -> Any:
    import torch

    if not a.is_floating_point() and not b.is_floating_point():
        return torch.div(a, b, rounding_mode="trunc")
    return a / b


def _k5_mod(a: Any, b: Any, fmod: int = 0) -> Any:
    import torch

    return torch.fmod(a, b) if fmod else torch.remainder(a, b)


def _k5_gemm(a: Any, b: Any, c: Any, alpha: float, beta: float, trans_a: int, trans_b: int) -> Any:
    a = a.t() if trans_a else a
    b = b.t() if trans_b else b
    y = (a @ b) * alpha if alpha != 1.0 else a @ b
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


def _k5_layer_norm(x: Any, scale: Any, bias: Any, axis: int, eps: float) -> Any:
    axis = axis % x.dim()
    dims = list(range(axis, x.dim()))
    xf = x.float() if x.dtype in (x.new_empty(0, dtype=__import__("torch").float16).dtype,) else x
    mean = xf.mean(dim=dims, keepdim=True)
    var = ((xf - mean) ** 2).mean(dim=dims, keepdim=True)
    y = ((xf - mean) / (var + eps).sqrt()).to(x.dtype) * scale
    return y + bias if bias is not None else y


def _k5_global_pool(x: Any, kind: str) -> Any:
    dims = tuple(range(2, x.dim()))
    return x.mean(dim=dims, keepdim=True) if kind == "avg" else x.amax(dim=dims, keepdim=True)


def _k5_conv(x: Any, w: Any, b: Any, strides: list[int], pads: list[int], dilations: list[int], group: int) -> Any:
    import torch.nn.functional as nnf

    nd = w.dim() - 2
    if pads[:nd] != pads[nd:]:
        x = nnf.pad(x, _torch_pads(pads, nd))
        pads = [0] * (2 * nd)
    fn = (nnf.conv1d, nnf.conv2d, nnf.conv3d)[nd - 1]
    return fn(x, w, b, strides, pads[:nd], dilations, group)


def _k5_conv_transpose(
    x: Any, w: Any, b: Any, strides: list[int], pads: list[int], out_pad: list[int], dilations: list[int], group: int
) -> Any:
    import torch.nn.functional as nnf

    nd = w.dim() - 2
    fn = (nnf.conv_transpose1d, nnf.conv_transpose2d, nnf.conv_transpose3d)[nd - 1]
    return fn(x, w, b, strides, pads[:nd], out_pad, group, dilations)


def _torch_pads(pads: list[int], nd: int) -> list[int]:
    """ONNX [b1..bn, e1..en] over the last nd axes -> torch's nnf.pad order (last axis first)."""
    out: list[int] = []
    for i in reversed(range(nd)):
        out += [int(pads[i]), int(pads[nd + i])]
    return out


def _k5_pad(x: Any, pads: list[int], value: Any, mode: str, axes: list[int] | None) -> Any:
    import torch.nn.functional as nnf

    rank = x.dim()
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    n = len(axes)
    full_b, full_e = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        full_b[a], full_e[a] = int(pads[i]), int(pads[n + i])
    first = next((a for a in range(rank) if full_b[a] or full_e[a]), rank)
    nd = rank - first
    tp = _torch_pads([*full_b[first:], *full_e[first:]], nd) if nd else []
    torch_mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}[mode]
    if torch_mode == "constant":
        v = float(value.reshape(-1)[0]) if value is not None and hasattr(value, "reshape") else (value or 0.0)
        return nnf.pad(x, tp, value=v)
    return nnf.pad(x, tp, mode=torch_mode)


def _k5_pool(
    x: Any, kind: str, kernel: list[int], strides: list[int], pads: list[int], dilations: list[int], ceil: int,
    count_include_pad: int,
) -> Any:  # fmt: skip
    import torch.nn.functional as nnf

    nd = len(kernel)
    if pads[:nd] != pads[nd:]:
        value = float("-inf") if kind == "max" else 0.0
        x = nnf.pad(x, _torch_pads(pads, nd), value=value)
        pads = [0] * (2 * nd)
    if kind == "max":
        fn = (nnf.max_pool1d, nnf.max_pool2d, nnf.max_pool3d)[nd - 1]
        return fn(x, kernel, strides, pads[:nd], dilations, ceil_mode=bool(ceil))
    fn = (nnf.avg_pool1d, nnf.avg_pool2d, nnf.avg_pool3d)[nd - 1]
    return fn(x, kernel, strides, pads[:nd], ceil_mode=bool(ceil), count_include_pad=bool(count_include_pad))


def _k5_adaptive_pool(x: Any, kind: str, size: list[int]) -> Any:
    import torch.nn.functional as nnf

    nd = len(size)
    if kind == "avg":
        return (nnf.adaptive_avg_pool1d, nnf.adaptive_avg_pool2d, nnf.adaptive_avg_pool3d)[nd - 1](x, size)
    return (nnf.adaptive_max_pool1d, nnf.adaptive_max_pool2d, nnf.adaptive_max_pool3d)[nd - 1](x, size)


def _k5_mha_mask(mask: Any, q: Any, k: Any, heads: int) -> Any:
    """A k5 attention mask (broadcastable to [N, heads, Lq, Lk]) in the form nn.MultiheadAttention takes."""
    n, lq, lk = q.shape[0], q.shape[1], k.shape[1]
    if mask.dim() <= 2:
        return mask.expand(lq, lk) if mask.shape != (lq, lk) else mask
    return mask.expand(n, heads, lq, lk).reshape(n * heads, lq, lk)


def _k5_causal_mask(q: Any, k: Any) -> Any:
    import torch

    lq, lk = q.shape[1], k.shape[1]
    return torch.ones(lq, lk, dtype=torch.bool, device=q.device).triu(lk - lq + 1)


def _k5_mha(mha: Any, q: Any, k: Any, v: Any, mask: Any, kpm: Any, heads: int, causal: int) -> Any:
    if causal:
        mask = _k5_causal_mask(q, k)
    elif mask is not None:
        mask = _k5_mha_mask(mask, q, k, heads)
    return mha(q, k, v, key_padding_mask=kpm, attn_mask=mask, need_weights=False, is_causal=bool(causal))[0]


def _k5_cast(x: Any, dtype: Any) -> Any:
    return x.to(dtype)


def _k5_range(start: Any, limit: Any, delta: Any) -> Any:
    import torch

    dtype = start.dtype if hasattr(start, "dtype") else None
    s, e, d = (v.item() if hasattr(v, "item") else v for v in (start, limit, delta))
    return torch.arange(s, e, d, dtype=dtype)


def _k5_split(x: Any, sizes: list[int] | None, axis: int, num: int) -> Any:
    if sizes is None:
        size = x.shape[axis]
        chunk = -(-size // num)
        return x.split(chunk, dim=axis)
    return x.split([int(s) for s in sizes], dim=axis)


def _k5_resize(x: Any, sizes: list[int] | None, scales: list[float] | None, mode: str, align: bool | None) -> Any:
    import torch.nn.functional as nnf

    kwargs: dict[str, Any] = {}
    if sizes is not None:
        kwargs["size"] = [int(s) for s in sizes[2:]]
    else:
        kwargs["scale_factor"] = [float(s) for s in (scales or [])[2:]]
    nd = x.dim() - 2
    if mode == "nearest":
        return nnf.interpolate(x, mode="nearest", **kwargs)
    torch_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]
    return nnf.interpolate(x, mode=torch_mode, align_corners=align, **kwargs)


def _k5_reduce(x: Any, kind: str, axes: list[int] | None, keep: int) -> Any:
    import torch

    dims = tuple(range(x.dim())) if not axes else tuple(axes)
    if kind == "mean":
        return x.mean(dim=dims, keepdim=bool(keep))
    if kind == "sum":
        return x.sum(dim=dims, keepdim=bool(keep))
    if kind == "max":
        return x.amax(dim=dims, keepdim=bool(keep))
    if kind == "min":
        return x.amin(dim=dims, keepdim=bool(keep))
    out = x
    for d in sorted((d % x.dim() for d in dims), reverse=True):
        out = torch.prod(out, dim=d, keepdim=bool(keep))
    return out


def _k5_where_mask_fill(cond: Any, a: Any, b: Any) -> Any:
    import torch

    return torch.where(cond, a, b)


def _k5_embedding(idx: Any, w: Any) -> Any:
    import torch.nn.functional as nnf

    return nnf.embedding(idx, w)


def _k5_clip(x: Any, lo: Any, hi: Any) -> Any:
    import torch

    return torch.clamp(x, lo, hi)


def _k5_hard_sigmoid(x: Any, alpha: float, beta: float) -> Any:
    return (x * alpha + beta).clamp(0.0, 1.0)


def _k5_rnn_out(y: Any, layout: int, n_dir: int) -> Any:
    """torch's [T, B, D*H] (or [B, T, D*H]) -> ONNX Y [T, D, B, H] (or [B, T, D, H])."""
    h = y.shape[-1] // n_dir
    if layout == 0:
        return y.reshape(y.shape[0], y.shape[1], n_dir, h).transpose(1, 2)
    return y.reshape(y.shape[0], y.shape[1], n_dir, h)


def _k5_rnn(mod: Any, x: Any, h0: Any, c0: Any, layout: int, n_dir: int, kind: str) -> Any:
    if layout == 1:
        h0 = h0.transpose(0, 1).contiguous() if h0 is not None else None
        c0 = c0.transpose(0, 1).contiguous() if c0 is not None else None
    if kind == "LSTM":
        state = (h0, c0) if h0 is not None or c0 is not None else None
        if state is not None and (h0 is None or c0 is None):
            ref = h0 if h0 is not None else c0
            state = (
                h0 if h0 is not None else ref.new_zeros(ref.shape),
                c0 if c0 is not None else ref.new_zeros(ref.shape),
            )
        y, (h, c) = mod(x, state)
    else:
        y, h = mod(x, h0)
        c = None
    y = _k5_rnn_out(y, layout, n_dir)
    if layout == 1:
        h = h.transpose(0, 1)
        c = c.transpose(0, 1) if c is not None else None
    return y, h, c


# --- simple maps ----------------------------------------------------------------------------------------------------
def _simple(fn_name: str, nargs: int = 1) -> Callable[..., Any]:
    def build(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
        import torch

        fn = _resolve(torch, fn_name)
        args = ins[:nargs]
        if fn_name in _SCALAR_OK and b.is_fx(args):
            args = [_scalar(a) for a in args]
        return b.call(fn, *args)

    return build


_SCALAR_OK = {"add", "sub", "mul", "pow"}  # torch functions that take a Python number for an operand


def _scalar(v: Any) -> Any:
    """A 0-d non-trainable constant as a Python number (so it is not registered as a buffer), else ``v``."""
    if isinstance(v, Const) and not v.trainable and v.value.dim() == 0 and v.value.dtype.is_floating_point:
        return float(v.value)
    return v


def _resolve(torch: Any, name: str) -> Any:
    obj = torch
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


for _op, _fn, _n in [
    ("Add", "add", 2), ("Sub", "sub", 2), ("Mul", "mul", 2), ("Pow", "pow", 2), ("Neg", "neg", 1), ("Abs", "abs", 1),
    ("Exp", "exp", 1), ("Log", "log", 1), ("Sqrt", "sqrt", 1), ("Reciprocal", "reciprocal", 1),
    ("Floor", "floor", 1), ("Ceil", "ceil", 1), ("Round", "round", 1), ("Sign", "sign", 1), ("Erf", "erf", 1),
    ("Sin", "sin", 1), ("Cos", "cos", 1), ("Tan", "tan", 1), ("Tanh", "tanh", 1), ("Sigmoid", "sigmoid", 1),
    ("Relu", "relu", 1), ("Not", "logical_not", 1), ("And", "logical_and", 2), ("Or", "logical_or", 2),
    ("Xor", "logical_xor", 2), ("Equal", "eq", 2), ("Less", "lt", 2), ("Greater", "gt", 2),
    ("LessOrEqual", "le", 2), ("GreaterOrEqual", "ge", 2), ("Where", "where", 3), ("IsNaN", "isnan", 1),
    ("MatMul", "matmul", 2), ("Softsign", "nn.functional.softsign", 1), ("Softplus", "nn.functional.softplus", 1),
    ("HardSwish", "nn.functional.hardswish", 1), ("Selu", "selu", 1), ("Atan", "atan", 1), ("Asin", "asin", 1),
    ("Acos", "acos", 1), ("Sinh", "sinh", 1), ("Cosh", "cosh", 1),
]:  # fmt: skip
    reg(_op, how=f"torch.{_fn}")(_simple(_fn, _n))


@reg("Identity", "Dropout", how="identity")
def identity(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return [ins[0], None] if node.op == "Dropout" else ins[0]


@reg("Div", how="torch.div")
def div(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(_k5_div, ins[0], ins[1])


@reg("Mod", how="torch.remainder / torch.fmod")
def mod(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(_k5_mod, ins[0], ins[1], attrs["fmod"])


@reg("Max", "Min", "Sum", "Mean", how="torch.maximum / minimum / add")
def variadic(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    fn = {"Max": torch.maximum, "Min": torch.minimum, "Sum": torch.add, "Mean": torch.add}[node.op]
    out = ins[0]
    for x in ins[1:]:
        out = b.call(fn, out, x)
    if node.op == "Mean" and len(ins) > 1:
        out = b.call(torch.div, out, float(len(ins)))
    return out


@reg("LeakyRelu", how="nnf.leaky_relu")
def leaky_relu(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch.nn.functional as nnf

    return b.call(nnf.leaky_relu, ins[0], attrs["alpha"])


@reg("Elu", how="nnf.elu")
def elu(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch.nn.functional as nnf

    return b.call(nnf.elu, ins[0], attrs["alpha"])


@reg("HardSigmoid", how="clamp(alpha*x+beta)")
def hard_sigmoid(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(_k5_hard_sigmoid, ins[0], attrs["alpha"], attrs["beta"])


@reg("Gelu", how="nnf.gelu")
def gelu(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch.nn.functional as nnf

    return b.call(nnf.gelu, ins[0], approximate=attrs["approximate"])


@reg("Softmax", "LogSoftmax", how="torch.softmax / log_softmax")
def softmax(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    fn = torch.softmax if node.op == "Softmax" else torch.log_softmax
    return b.call(fn, ins[0], attrs["axis"])


@reg("Clip", how="torch.clamp")
def clip(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    lo = _scalar(ins[1]) if len(ins) > 1 else None
    hi = _scalar(ins[2]) if len(ins) > 2 else None
    return b.call(_k5_clip, ins[0], lo, hi)


@reg("PRelu", how="nn.PReLU")
def prelu(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    w = b.owns(node, ins, [("slope", 1, True)])
    if w is not None:
        slope = w["slope"]
        if slope.numel() == 1 or (slope.dim() >= 1 and slope.shape[1:].numel() == 1):
            with torch.device("meta"):
                m = torch.nn.PReLU(slope.numel())
            m.load_state_dict({"weight": slope.reshape(-1).clone()}, assign=True)
            return b.module(node.id, m, ins[0])
        return b.call(
            torch.where,
            b.call(torch.ge, ins[0], 0.0),
            ins[0],
            b.call(torch.mul, ins[0], Const(slope, node.id + ".slope", True)),
        )
    return b.call(torch.where, b.call(torch.ge, ins[0], 0.0), ins[0], b.call(torch.mul, ins[0], ins[1]))


@reg("Cast", "CastLike", how="Tensor.to")
def cast(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    if node.op == "CastLike":
        return b.call(torch.Tensor.type_as, ins[0], ins[1])
    to = attrs["to"]
    if to not in _TORCH_DTYPES:
        raise _unsupported(node, f"Cast to {to!r}")
    return b.call(_k5_cast, ins[0], getattr(torch, to))


# --- linear algebra ---------------------------------------------------------------------------------------------------
def _meta_module(factory: Callable[[], Any], state: dict[str, Any]) -> Any:
    """Build a module on the meta device (no random init) and give it ``state`` as its parameters."""
    import torch

    with torch.device("meta"):
        m = factory()
    m.load_state_dict({k: v.clone() if not v.is_contiguous() else v for k, v in state.items()}, assign=True)
    for p in m.parameters():
        p.requires_grad_(p.is_floating_point())
    return m


@reg("Linear", how="nn.Linear")
def linear(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    w = b.owns(node, ins, [("weight", 1, True), ("bias", 2, False)])
    if w is None:
        return b.call(torch.nn.functional.linear, ins[0], ins[1], ins[2] if len(ins) > 2 else None)
    weight, bias = w["weight"], w["bias"]
    state = {"weight": weight} | ({"bias": bias} if bias is not None else {})
    m = _meta_module(
        lambda: torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype), state
    )
    return b.module(node.id, m, ins[0])


@reg("Gemm", how="nn.Linear (transB=1) / matmul")
def gemm(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    alpha, beta, ta, tb = attrs["alpha"], attrs["beta"], attrs["transA"], attrs["transB"]
    w = b.owns(node, ins, [("B", 1, True), ("C", 2, False)])
    if w is not None and alpha == 1.0 and beta == 1.0 and not ta and (w["C"] is None or w["C"].dim() <= 1):
        weight = w["B"] if tb else w["B"].t().contiguous()
        bias = w["C"]
        if bias is not None and bias.numel() != weight.shape[0]:
            bias = bias.expand(weight.shape[0]).contiguous()
        state = {"weight": weight} | ({"bias": bias} if bias is not None else {})
        m = _meta_module(
            lambda: torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype), state
        )
        return b.module(node.id, m, ins[0])
    if w is not None:  # give the adopted constants back; they are used as tensors
        for i in (1, 2):
            if i < len(ins) and isinstance(ins[i], Const):
                ins[i].adopted = False
        bw = ins[1] if len(ins) > 1 and ins[1] is not None else Const(w["B"], node.id + ".B", True)
        cw = (
            ins[2]
            if len(ins) > 2 and ins[2] is not None
            else (Const(w["C"], node.id + ".C", True) if w["C"] is not None else None)
        )
        return b.call(_k5_gemm, ins[0], bw, cw, alpha, beta, ta, tb)
    return b.call(_k5_gemm, ins[0], ins[1], ins[2] if len(ins) > 2 else None, alpha, beta, ta, tb)


@reg("Einsum", how="torch.einsum")
def einsum(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    return b.call(torch.einsum, attrs["equation"], *ins)


# --- convolution ------------------------------------------------------------------------------------------------------
def _conv_attrs(node: Node, attrs: Attrs, nd: int) -> tuple[list[int], list[int], list[int], int]:
    if attrs["auto_pad"] not in ("NOTSET", "VALID"):
        raise _unsupported(node, f"auto_pad={attrs['auto_pad']!r} (use explicit pads)")
    strides: list[int] = attrs["strides"] or [1] * nd  # absent: 1 per spatial axis of the weight's rank
    pads: list[int] = attrs["pads"] or [0] * (2 * nd)
    dil: list[int] = attrs["dilations"] or [1] * nd
    return strides, pads, dil, attrs["group"]


@reg("Conv", how="nn.Conv1d/2d/3d")
def conv(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    w = b.owns(node, ins, [("weight", 1, True), ("bias", 2, False)])
    if w is None:
        wt = ins[1]
        nd = len(attrs["kernel_shape"] or []) or (wt.value.dim() - 2 if isinstance(wt, Const) else 2)
        strides, pads, dil, group = _conv_attrs(node, attrs, nd)
        return b.call(_k5_conv, ins[0], ins[1], ins[2] if len(ins) > 2 else None, strides, pads, dil, group)
    weight, bias = w["weight"], w["bias"]
    nd = weight.dim() - 2
    strides, pads, dil, group = _conv_attrs(node, attrs, nd)
    x = ins[0]
    if pads[:nd] != pads[nd:]:
        x = b.call(torch.nn.functional.pad, x, _torch_pads(pads, nd))
        pads = [0] * (2 * nd)
    cls = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)[nd - 1]
    state = {"weight": weight} | ({"bias": bias} if bias is not None else {})
    m = _meta_module(
        lambda: cls(
            weight.shape[1] * group, weight.shape[0], tuple(weight.shape[2:]), tuple(strides), tuple(pads[:nd]),
            tuple(dil), group, bias is not None, dtype=weight.dtype,
        ),
        state,
    )  # fmt: skip
    return b.module(node.id, m, x)


@reg("ConvTranspose", how="nn.ConvTranspose1d/2d/3d")
def conv_transpose(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    if attrs["output_shape"]:
        raise _unsupported(node, "ConvTranspose with output_shape")
    w = b.owns(node, ins, [("weight", 1, True), ("bias", 2, False)])
    wt = w["weight"] if w is not None else (ins[1].value if isinstance(ins[1], Const) else None)
    nd = len(attrs["kernel_shape"] or []) or (wt.dim() - 2 if wt is not None else 2)
    strides, pads, dil, group = _conv_attrs(node, attrs, nd)
    out_pad: list[int] = attrs["output_padding"] or [0] * nd
    if pads[:nd] != pads[nd:]:
        raise _unsupported(node, f"ConvTranspose with asymmetric pads {pads}")
    if w is None:
        return b.call(
            _k5_conv_transpose, ins[0], ins[1], ins[2] if len(ins) > 2 else None, strides, pads, out_pad, dil, group
        )
    weight, bias = w["weight"], w["bias"]
    cls = (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)[nd - 1]
    state = {"weight": weight} | ({"bias": bias} if bias is not None else {})
    m = _meta_module(
        lambda: cls(
            weight.shape[0], weight.shape[1] * group, tuple(weight.shape[2:]), tuple(strides), tuple(pads[:nd]),
            tuple(out_pad), group, bias is not None, tuple(dil), dtype=weight.dtype,
        ),
        state,
    )  # fmt: skip
    return b.module(node.id, m, ins[0])


# --- normalization ----------------------------------------------------------------------------------------------------
class _AnyRankBatchNorm:
    """Factory of a BatchNorm that accepts any input rank >= 2 (k5's BatchNormalization is rank-agnostic)."""

    cls: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls.cls is None:
            import torch

            class BatchNorm(torch.nn.modules.batchnorm._BatchNorm):
                """``nn.BatchNorm1d/2d/3d`` without the input-rank check."""

                def _check_input_dim(self, input: Any) -> None:
                    if input.dim() < 2:
                        raise ValueError(f"expected an input of rank >= 2 (got {input.dim()})")

            BatchNorm.__module__ = __name__
            BatchNorm.__qualname__ = "BatchNorm"  # from_torch converts it like nn.BatchNorm2d
            cls.cls = BatchNorm
        return cls.cls


@reg("BatchNormalization", how="nn.BatchNorm (eval statistics)")
def batch_norm(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    eps = attrs["epsilon"]
    if attrs["training_mode"]:
        raise _unsupported(node, "BatchNormalization with training_mode=1")
    specs = [("scale", 1, True), ("bias", 2, True), ("mean", 3, True), ("var", 4, True)]
    w = b.owns(node, ins, specs)
    if w is None:
        return b.call(torch.nn.functional.batch_norm, ins[0], ins[3], ins[4], ins[1], ins[2], False, 0.0, eps)
    c = w["scale"].numel()
    state = {
        "weight": w["scale"], "bias": w["bias"], "running_mean": w["mean"], "running_var": w["var"],
        "num_batches_tracked": torch.tensor(0),
    }  # fmt: skip
    m = _meta_module(lambda: _AnyRankBatchNorm.get()(c, eps=eps, dtype=w["scale"].dtype), state)
    return b.module(node.id, m, ins[0])


@reg("LayerNormalization", how="nn.LayerNorm")
def layer_norm(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    axis, eps = attrs["axis"], attrs["epsilon"]
    w = b.owns(node, ins, [("scale", 1, True), ("bias", 2, False)])
    if w is not None and axis < 0 and w["scale"].dim() == -axis:
        scale, bias = w["scale"], w["bias"]
        state = {"weight": scale} | ({"bias": bias} if bias is not None else {})
        m = _meta_module(
            lambda: torch.nn.LayerNorm(tuple(scale.shape), eps=eps, bias=bias is not None, dtype=scale.dtype), state
        )
        return b.module(node.id, m, ins[0])
    if w is not None:
        scale = Const(w["scale"], node.id + ".scale", True)
        bias = Const(w["bias"], node.id + ".bias", True) if w["bias"] is not None else None
        return b.call(_k5_layer_norm, ins[0], scale, bias, axis, eps)
    return b.call(_k5_layer_norm, ins[0], ins[1], ins[2] if len(ins) > 2 else None, axis, eps)


@reg("RMSNormalization", how="nn.RMSNorm")
def rms_norm(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    axis, eps = attrs["axis"], attrs["epsilon"]
    w = b.owns(node, ins, [("scale", 1, True)])
    if w is None or axis >= 0 or w["scale"].dim() != -axis:
        raise _unsupported(node, "RMSNormalization with a run-time or broadcast scale")
    scale = w["scale"]
    m = _meta_module(lambda: torch.nn.RMSNorm(tuple(scale.shape), eps=eps, dtype=scale.dtype), {"weight": scale})
    return b.module(node.id, m, ins[0])


@reg("GroupNormalization", "InstanceNormalization", how="nn.GroupNorm")
def group_norm(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    eps = attrs["epsilon"]
    w = b.owns(node, ins, [("scale", 1, True), ("bias", 2, True)])
    if w is None:
        raise _unsupported(node, f"{node.op} with run-time scale/bias")
    c = w["scale"].numel()
    groups = c if node.op == "InstanceNormalization" else attrs["num_groups"]
    if node.op == "GroupNormalization" and c != w["bias"].numel():
        raise _unsupported(node, "GroupNormalization with per-group scale (ONNX opset < 21 form)")
    state = {"weight": w["scale"], "bias": w["bias"]}
    m = _meta_module(lambda: torch.nn.GroupNorm(groups, c, eps=eps, dtype=w["scale"].dtype), state)
    return b.module(node.id, m, ins[0])


@reg("Embedding", how="nn.Embedding")
def embedding(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    w = b.owns(node, ins, [("weight", 1, True)])
    if w is None:
        return b.call(_k5_embedding, ins[0], ins[1])
    weight = w["weight"]
    m = _meta_module(
        lambda: torch.nn.Embedding(weight.shape[0], weight.shape[1], dtype=weight.dtype), {"weight": weight}
    )
    return b.module(node.id, m, ins[0])


# --- attention --------------------------------------------------------------------------------------------------------
@reg("MultiHeadAttention", how="nn.MultiheadAttention")
def multi_head_attention(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    names = ["q_weight", "k_weight", "v_weight", "q_bias", "k_bias", "v_bias", "out_weight", "out_bias"]
    specs = [(n, 5 + i, i in (0, 1, 2, 6)) for i, n in enumerate(names)]
    w = b.owns(node, ins, specs)
    if w is None:
        raise _unsupported(node, "MultiHeadAttention with run-time weights")
    heads, causal = attrs["num_heads"], attrs["causal"]
    e, kdim, vdim = w["q_weight"].shape[0], w["k_weight"].shape[1], w["v_weight"].shape[1]
    scale = attrs["scale"]
    if scale is not None and not math.isclose(scale, 1.0 / math.sqrt(e // heads), rel_tol=1e-6):
        raise _unsupported(node, f"MultiHeadAttention with scale={scale}")
    has_bias = any(w[n] is not None for n in ("q_bias", "k_bias", "v_bias", "out_bias"))
    dt = w["q_weight"].dtype

    def bias(n: str, size: int) -> Any:
        return w[n] if w[n] is not None else torch.zeros(size, dtype=dt)

    state: dict[str, Any] = {"out_proj.weight": w["out_weight"]}
    if kdim == e and vdim == e:
        state["in_proj_weight"] = torch.cat([w["q_weight"], w["k_weight"], w["v_weight"]])
    else:
        state.update(q_proj_weight=w["q_weight"], k_proj_weight=w["k_weight"], v_proj_weight=w["v_weight"])
    if has_bias:
        state["in_proj_bias"] = torch.cat([bias("q_bias", e), bias("k_bias", e), bias("v_bias", e)])
        state["out_proj.bias"] = bias("out_bias", e)
    m = _meta_module(
        lambda: torch.nn.MultiheadAttention(e, heads, bias=has_bias, kdim=kdim, vdim=vdim, batch_first=True, dtype=dt),
        state,
    )
    where = b._place(node.id, m, "module")
    mha = b.graph.get_attr(where)
    q, k, v = ins[0], ins[1], ins[2]
    mask = ins[3] if len(ins) > 3 else None
    kpm = ins[4] if len(ins) > 4 else None
    return b.call(_k5_mha, mha, q, k, v, mask, kpm, heads, causal)


# --- recurrent layers -------------------------------------------------------------------------------------------------
_GATES_BACK = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}  # ONNX order -> PyTorch chunks


def _torch_rnn_state(kind: str, w: dict[str, Any], layer: int, n_dir: int, hidden: int) -> dict[str, Any]:
    import torch

    order = _GATES_BACK[kind]
    state: dict[str, Any] = {}
    for d in range(n_dir):
        sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")

        def back(t: Any) -> Any:
            chunks = t.split(hidden, dim=0)
            return torch.cat([chunks[i] for i in order], dim=0).contiguous()

        state["weight_ih" + sfx] = back(w["W"][d])
        state["weight_hh" + sfx] = back(w["R"][d])
        if w.get("B") is not None:
            g = len(order) * hidden
            state["bias_ih" + sfx] = back(w["B"][d][:g])
            state["bias_hh" + sfx] = back(w["B"][d][g:])
    return state


def _rnn_config(node: Node, attrs: Attrs) -> tuple[int, str]:
    """(number of directions, activation) of a recurrent node; refuses what PyTorch's layers cannot run."""
    direction = attrs["direction"]
    if direction == "reverse":
        raise _unsupported(node, "direction='reverse'")
    if attrs["clip"] is not None or attrs.get("input_forget"):  # input_forget: LSTM only
        raise _unsupported(node, "clip / input_forget")
    if node.op == "GRU" and attrs["linear_before_reset"] != 1:
        raise _unsupported(node, "GRU with linear_before_reset=0 (PyTorch's GRU applies the reset after)")
    act = "tanh"
    given = attrs["activations"]
    if node.op == "RNN":
        acts = [s.lower() for s in (given or ["Tanh"])]  # absent: ONNX's per-op default
        if len(set(acts)) != 1 or acts[0] not in ("tanh", "relu"):
            raise _unsupported(node, f"RNN activations {acts}")
        act = acts[0]
    elif given:
        defaults = {"LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"]}[node.op]
        if [s.lower() for s in given] not in (defaults, defaults * 2):
            raise _unsupported(node, f"{node.op} activations {given}")
    return 2 if direction == "bidirectional" else 1, act


_RNN_WEIGHTS = [("W", 1, True), ("R", 2, True), ("B", 3, False)]


@reg("LSTM", "GRU", "RNN", how="nn.LSTM / nn.GRU / nn.RNN")
def rnn(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    n_dir, act = _rnn_config(node, attrs)
    layout = attrs["layout"]
    if len(ins) > 4 and ins[4] is not None:
        raise _unsupported(node, f"{node.op} with sequence_lens")
    w = b.owns(node, ins, _RNN_WEIGHTS + ([("P", 7, False)] if node.op == "LSTM" else []))
    if w is None:
        raise _unsupported(node, f"{node.op} with run-time weights")
    if w.get("P") is not None:
        raise _unsupported(node, "LSTM with peepholes (P)")
    hidden: int = attrs["hidden_size"] if attrs["hidden_size"] is not None else w["R"].shape[-1]  # R: [D, G*H, H]
    chain = _rnn_chain(b, node, n_dir) if node.id.endswith(".l0") else [node]
    layers = [w]
    for nd in chain[1:]:
        wk = b.owns(nd, [b.env.get(i) if i else None for i in nd.inputs], _RNN_WEIGHTS)
        if wk is None:
            raise _unsupported(nd, f"{nd.op} with run-time weights")
        layers.append(wk)
    state: dict[str, Any] = {}
    for i, wk in enumerate(layers):
        state.update(_torch_rnn_state(node.op, wk, i, n_dir, hidden))
    dt = w["W"].dtype
    in_size = w["W"].shape[2]
    cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN": torch.nn.RNN}[node.op]
    kwargs: dict[str, Any] = dict(
        num_layers=len(chain), bias=w.get("B") is not None, batch_first=bool(layout), bidirectional=n_dir == 2, dtype=dt
    )
    if node.op == "RNN":
        kwargs["nonlinearity"] = act
    if not kwargs["bias"]:
        state = {k: v for k, v in state.items() if not k.startswith("bias")}
    m = _meta_module(lambda: cls(in_size, hidden, **kwargs), state)
    m.flatten_parameters()
    path = node.id[: -len(".l0")] if len(chain) > 1 else node.id
    where = b._place(path, m, "module")
    mod = b.graph.get_attr(where)
    if len(chain) == 1:
        h0 = ins[5] if len(ins) > 5 else None
        c0 = ins[6] if len(ins) > 6 and node.op == "LSTM" else None
        out = b.call(_k5_rnn, mod, ins[0], h0, c0, layout, n_dir, node.op)
        return [b.item(out, 0), b.item(out, 1), b.item(out, 2)]
    return _rnn_chain_outputs(b, chain, mod, ins, layout, n_dir)


def _rnn_chain(b: Builder, first: Node, n_dir: int) -> list[Node]:
    """The layers ``<m>.l0, <m>.l1, ...`` of a multi-layer module exported by k5 (see :mod:`.export_modules`)
    when they form exactly the pattern the exporter writes; else just ``[first]``."""
    graph = b.model.graph
    base = first.id[: -len(".l0")]
    nodes = {n.id: n for n in graph.nodes}
    producers = {o: n for n in graph.nodes for o in n.outputs if o}
    consumers: dict[str, list[Node]] = {}
    for n in graph.nodes:
        for i in n.inputs:
            if i:
                consumers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in graph.outputs}
    chain = [first]
    while f"{base}.l{len(chain)}" in nodes:
        nxt = nodes[f"{base}.l{len(chain)}"]
        prev = chain[-1]
        if nxt.op != first.op or nxt.attrs != first.attrs or any(x for x in nxt.inputs[1:5]):
            return [first]
        path: list[Node] = []  # the glue from prev's Y to nxt's input
        src = producers.get(nxt.inputs[0])
        while src is not None and src is not prev and src.op in ("Transpose", "Reshape", "Squeeze") and len(path) < 3:
            path.append(src)
            src = producers.get(src.inputs[0])
        if src is not prev or not path or path[-1].inputs[0] != prev.outputs[0]:
            return [first]
        allowed = {id(n) for n in path} | {id(nxt)}
        for name in [prev.outputs[0], *(p.outputs[0] for p in path)]:
            if name in graph_outputs or any(id(c) not in allowed for c in consumers.get(name, [])):
                return [first]
        chain.append(nxt)
    if len(chain) == 1:
        return chain
    for j in (5, 6):  # initial states: absent everywhere, or layer i's slice [i*D, (i+1)*D) of one tensor
        given = [n.inputs[j] if j < len(n.inputs) else "" for n in chain]
        if not any(given):
            continue
        if not all(given):
            return [first]
        sources = set()
        for i, name in enumerate(given):
            src = producers.get(name)
            if src is not None and src.op == "Transpose":
                src = producers.get(src.inputs[0])
            if src is None or src.op != "Slice" or len(src.inputs) < 4:
                return [first]
            starts, ends, axes = (_constant_list(producers.get(x)) for x in src.inputs[1:4])
            if starts != [i * n_dir] or ends != [(i + 1) * n_dir] or axes not in ([0], [-3]):
                return [first]
            sources.add(src.inputs[0])
        if len(sources) != 1:
            return [first]
    return chain


def _constant_list(node: Node | None) -> list[int] | None:
    """The value of a ``Constant`` node as a list of ints (None if the producer is something else)."""
    if node is None or node.op != "Constant" or "value" not in node.weights:
        return None
    from k5.format.model import as_array

    return [int(v) for v in as_array(node.weights["value"]).reshape(-1).tolist()]


def _state_source(b: Builder, node: Node, j: int) -> Any:
    """The full [L*D, B, H] state tensor that the exporter sliced for ``node``'s input ``j`` (or None)."""
    name = node.inputs[j] if j < len(node.inputs) else ""
    if not name:
        return None
    producers = {o: n for n in b.model.graph.nodes for o in n.outputs if o}
    src = producers[name]
    if src.op == "Transpose":
        src = producers[src.inputs[0]]
    return b.env[src.inputs[0]]


def _k5_rnn_folded(mod: Any, x: Any, h0: Any, c0: Any, layout: int, n_dir: int, kind: str) -> Any:
    """Run a multi-layer module; returns Y (ONNX form of the last layer) and the torch-form h_n, c_n."""
    if kind == "LSTM":
        state = (h0, c0) if h0 is not None else None
        y, (h, c) = mod(x, state)
    else:
        y, h = mod(x, h0)
        c = None
    return _k5_rnn_out(y, layout, n_dir), h, c


def _k5_layer_state(s: Any, layer: int, n_dir: int, layout: int) -> Any:
    out = s.narrow(0, layer * n_dir, n_dir)
    return out.transpose(0, 1) if layout == 1 else out


def _rnn_chain_outputs(b: Builder, chain: list[Node], mod: Any, ins: list[Any], layout: int, n_dir: int) -> Any:
    """Run the folded module and bind every per-layer output (Y_h, Y_c; Y of the last layer) of the chain."""
    kind = chain[0].op
    h0 = _state_source(b, chain[0], 5)
    c0 = _state_source(b, chain[0], 6) if kind == "LSTM" else None
    out = b.call(_k5_rnn_folded, mod, ins[0], h0, c0, layout, n_dir, kind)
    y, h, c = b.item(out, 0), b.item(out, 1), b.item(out, 2)
    last = len(chain) - 1
    for i, nd in enumerate(chain):
        b.skip.add(nd.id)
        values = [
            y if i == last else _Unavailable(),
            b.call(_k5_layer_state, h, i, n_dir, layout),
            b.call(_k5_layer_state, c, i, n_dir, layout) if kind == "LSTM" else None,
        ]
        for name, v in zip(nd.outputs, values, strict=False):
            if name:
                b.env[name] = v
    return [b.env.get(o) if o else None for o in chain[0].outputs]


class _Unavailable:
    """An intermediate Y of a folded recurrent chain: only the glue into the next layer reads it (checked)."""


# --- shape ops --------------------------------------------------------------------------------------------------------
@reg("Reshape", how="Tensor.reshape")
def reshape(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    shape = b.static(ins[1])
    return b.call(_k5_reshape, ins[0], shape if shape is not None else ins[1], attrs["allowzero"])


@reg("Flatten", how="Tensor.reshape")
def flatten(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(_k5_flatten, ins[0], attrs["axis"])


@reg("Transpose", how="Tensor.permute")
def transpose(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    perm = attrs["perm"]
    if perm is None:
        return b.call(_k5_reverse_dims, ins[0])
    return b.call(torch.permute, ins[0], list(perm))


def _k5_reverse_dims(x: Any) -> Any:
    return x.permute(*reversed(range(x.dim())))


@reg("Unsqueeze", how="Tensor.unsqueeze")
def unsqueeze(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    axes = b.static(ins[1]) if len(ins) > 1 else None
    if axes is None:
        raise _unsupported(node, "Unsqueeze with run-time axes")
    return b.call(_k5_unsqueeze, ins[0], axes)


@reg("Squeeze", how="Tensor.squeeze")
def squeeze(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    axes = b.static(ins[1]) if len(ins) > 1 and ins[1] is not None else None
    if len(ins) > 1 and ins[1] is not None and axes is None:
        raise _unsupported(node, "Squeeze with run-time axes")
    return b.call(_k5_squeeze, ins[0], axes)


@reg("Concat", how="torch.cat")
def concat(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    return b.call(torch.cat, [x for x in ins if x is not None], attrs["axis"])


@reg("Split", how="Tensor.split")
def split(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    sizes = b.static(ins[1]) if len(ins) > 1 and ins[1] is not None else None
    num = attrs["num_outputs"] if attrs["num_outputs"] is not None else len(node.outputs)
    out = b.call(_k5_split, ins[0], sizes, attrs["axis"], num)
    return [b.item(out, i) for i in range(len(node.outputs))]


@reg("Slice", how="indexing")
def slice_(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    starts, ends = b.static(ins[1]), b.static(ins[2])
    axes = b.static(ins[3]) if len(ins) > 3 else None
    steps = b.static(ins[4]) if len(ins) > 4 else None
    if starts is None or ends is None or (len(ins) > 3 and ins[3] is not None and axes is None):
        return b.call(_k5_slice_dyn, *ins[:5])
    if steps is not None and any(s < 0 for s in steps):
        raise _unsupported(node, "Slice with a negative step")
    return b.call(_k5_slice, ins[0], starts, ends, axes, steps)


def _k5_slice_dyn(x: Any, starts: Any, ends: Any, axes: Any = None, steps: Any = None) -> Any:
    def lst(v: Any) -> Any:
        return None if v is None else [int(s) for s in (v.tolist() if hasattr(v, "tolist") else v)]

    return _k5_slice(x, lst(starts), lst(ends), lst(axes), lst(steps))


@reg("Gather", how="index_select")
def gather(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(_k5_gather, ins[0], ins[1], attrs["axis"])


@reg("Shape", how="Tensor.shape")
def shape(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(_k5_shape, ins[0], attrs["start"], attrs["end"])


@reg("Size", how="Tensor.numel")
def size(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(_k5_numel, ins[0])


def _k5_numel(x: Any) -> Any:
    import torch

    return torch.tensor(x.numel(), dtype=torch.int64)


@reg("Expand", how="Tensor.expand")
def expand(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    shape = b.static(ins[1])
    return b.call(_k5_expand, ins[0], shape if shape is not None else ins[1])


@reg("ConstantOfShape", how="torch.full")
def constant_of_shape(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    from k5.convert.torch.dtypes import from_numpy
    from k5.format.model import as_array

    value = from_numpy(as_array(node.weights["value"])) if "value" in node.weights else torch.zeros(1)
    shape = b.static(ins[0])
    return b.call(_k5_constant_of_shape, shape if shape is not None else ins[0], Const(value, node.id + ".value"))


@reg("Range", how="torch.arange")
def range_(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(_k5_range, *ins[:3])


@reg("Trilu", how="torch.triu / tril")
def trilu(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    k = b.static(ins[1]) if len(ins) > 1 and ins[1] is not None else [0]
    if k is None:
        raise _unsupported(node, "Trilu with a run-time k")
    fn = torch.triu if attrs["upper"] else torch.tril
    return b.call(fn, ins[0], int(k[0]))


@reg("Pad", how="nnf.pad")
def pad(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    pads = b.static(ins[1])
    axes = b.static(ins[3]) if len(ins) > 3 else None
    if pads is None:
        raise _unsupported(node, "Pad with run-time pads")
    value = ins[2] if len(ins) > 2 else None
    if isinstance(value, Const):
        value = float(value.value.reshape(-1)[0])
    return b.call(_k5_pad, ins[0], pads, value, attrs["mode"], axes)


# --- reductions and pooling ----------------------------------------------------------------------------------------
@reg("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", how="torch.mean / sum / amax / amin / prod")
def reduce(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    kind = node.op[len("Reduce") :].lower()
    axes = b.static(ins[1]) if len(ins) > 1 and ins[1] is not None else None
    if len(ins) > 1 and ins[1] is not None and axes is None:
        raise _unsupported(node, f"{node.op} with run-time axes")
    if not axes and attrs["noop_with_empty_axes"]:
        return ins[0]
    return b.call(_k5_reduce, ins[0], kind, axes, attrs["keepdims"])


@reg("ArgMax", "ArgMin", how="torch.argmax / argmin")
def argmax(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    if attrs["select_last_index"]:
        raise _unsupported(node, "select_last_index=1")
    fn = torch.argmax if node.op == "ArgMax" else torch.argmin
    return b.call(fn, ins[0], attrs["axis"], bool(attrs["keepdims"]))


@reg("CumSum", how="torch.cumsum")
def cumsum(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    axis = b.static(ins[1])
    if axis is None or attrs["exclusive"] or attrs["reverse"]:
        raise _unsupported(node, "CumSum with run-time axis, exclusive or reverse")
    return b.call(torch.cumsum, ins[0], int(axis[0]))


def _pool_attrs(node: Node, attrs: Attrs) -> tuple[list[int], list[int], list[int], list[int], int]:
    if attrs["auto_pad"] not in ("NOTSET", "VALID"):
        raise _unsupported(node, f"auto_pad={attrs['auto_pad']!r}")
    kernel: list[int] = attrs["kernel_shape"]
    nd = len(kernel)  # absent strides/pads/dilations: one per spatial axis of the kernel
    strides, pads, dil = attrs["strides"] or [1] * nd, attrs["pads"] or [0] * (2 * nd), attrs["dilations"] or [1] * nd
    return kernel, strides, pads, dil, attrs["ceil_mode"]


@reg("MaxPool", how="nnf.max_pool1d/2d/3d")
def max_pool(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise _unsupported(node, "MaxPool's Indices output")
    kernel, strides, pads, dil, ceil = _pool_attrs(node, attrs)
    return b.call(_k5_pool, ins[0], "max", kernel, strides, pads, dil, ceil, 0)


@reg("AveragePool", how="nnf.avg_pool1d/2d/3d")
def avg_pool(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    kernel, strides, pads, dil, ceil = _pool_attrs(node, attrs)
    nd = len(kernel)
    cip = attrs["count_include_pad"]
    if pads[:nd] != pads[nd:] and not cip:
        raise _unsupported(node, "AveragePool with asymmetric pads and count_include_pad=0")
    if any(d != 1 for d in dil):
        raise _unsupported(node, "AveragePool with dilations")
    return b.call(_k5_pool, ins[0], "avg", kernel, strides, pads, dil, ceil, cip)


@reg("GlobalAveragePool", "GlobalMaxPool", how="Tensor.mean / amax")
def global_pool(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(_k5_global_pool, ins[0], "avg" if node.op == "GlobalAveragePool" else "max")


@reg("AdaptiveAveragePool", "AdaptiveMaxPool", how="nnf.adaptive_avg_pool / adaptive_max_pool")
def adaptive_pool(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    kind = "avg" if node.op == "AdaptiveAveragePool" else "max"
    return b.call(_k5_adaptive_pool, ins[0], kind, attrs["output_size"])


@reg("Resize", how="nnf.interpolate")
def resize(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    mode, ctm, nearest = attrs["mode"], attrs["coordinate_transformation_mode"], attrs["nearest_mode"]
    scales = b.static(ins[2]) if len(ins) > 2 and ins[2] is not None else None
    sizes = b.static(ins[3]) if len(ins) > 3 and ins[3] is not None else None
    if scales is None and sizes is None:
        raise _unsupported(node, "Resize with run-time scales/sizes")
    if mode == "nearest" and (ctm != "asymmetric" or nearest != "floor"):
        raise _unsupported(node, f"Resize nearest with {ctm}/{nearest}")
    if mode == "linear" and ctm not in ("pytorch_half_pixel", "half_pixel", "align_corners"):
        raise _unsupported(node, f"Resize linear with {ctm}")
    if mode not in ("nearest", "linear"):
        raise _unsupported(node, f"Resize mode {mode!r}")
    align = (ctm == "align_corners") if mode == "linear" else None
    return b.call(_k5_resize, ins[0], sizes, [float(s) for s in scales] if scales else None, mode, align)


@reg("DepthToSpace", how="nnf.pixel_shuffle")
def depth_to_space(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch.nn.functional as nnf

    if attrs["mode"] != "CRD":
        raise _unsupported(node, "DepthToSpace mode DCR")
    return b.call(nnf.pixel_shuffle, ins[0], attrs["blocksize"])
