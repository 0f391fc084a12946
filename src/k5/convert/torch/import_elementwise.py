"""to_torch builders of element-wise ops: arithmetic, comparisons, activations, casts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k5.convert.torch.import_context import Attrs, Builder, ConstValue, unsupported
from k5.convert.torch.import_runtime import k5_cast, k5_clip, k5_div, k5_hard_sigmoid, k5_mod
from k5.convert.torch.registry import register_builder
from k5.format.model import Node

__all__: list[str] = []


_TORCH_DTYPES = frozenset({
    "float32", "uint8", "int8", "uint16", "int16", "int32", "int64", "bool", "float16", "float64", "uint32", "uint64",
    "complex64", "complex128", "bfloat16",
})  # fmt: skip


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
    if isinstance(v, ConstValue) and not v.trainable and v.value.dim() == 0 and v.value.dtype.is_floating_point:
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
    register_builder(_op, how=f"torch.{_fn}")(_simple(_fn, _n))


@register_builder("Identity", "Dropout", how="identity")
def identity(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return [ins[0], None] if node.op == "Dropout" else ins[0]


@register_builder("Div", how="torch.div")
def div(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(k5_div, ins[0], ins[1])


@register_builder("Mod", how="torch.remainder / torch.fmod")
def mod(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(k5_mod, ins[0], ins[1], attrs["fmod"])


@register_builder("Max", "Min", "Sum", "Mean", how="torch.maximum / minimum / add")
def variadic(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    fns: dict[str, Callable[..., Any]] = {
        "Max": torch.maximum,
        "Min": torch.minimum,
        "Sum": torch.add,
        "Mean": torch.add,
    }
    fn = fns[node.op]
    out = ins[0]
    for x in ins[1:]:
        out = b.call(fn, out, x)
    if node.op == "Mean" and len(ins) > 1:
        out = b.call(torch.div, out, float(len(ins)))
    return out


@register_builder("LeakyRelu", how="nnf.leaky_relu")
def leaky_relu(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch.nn.functional as nnf

    return b.call(nnf.leaky_relu, ins[0], attrs["alpha"])


@register_builder("Elu", how="nnf.elu")
def elu(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch.nn.functional as nnf

    return b.call(nnf.elu, ins[0], attrs["alpha"])


@register_builder("HardSigmoid", how="clamp(alpha*x+beta)")
def hard_sigmoid(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(k5_hard_sigmoid, ins[0], attrs["alpha"], attrs["beta"])


@register_builder("Gelu", how="nnf.gelu")
def gelu(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch.nn.functional as nnf

    return b.call(nnf.gelu, ins[0], approximate=attrs["approximate"])


@register_builder("Softmax", "LogSoftmax", how="torch.softmax / log_softmax")
def softmax(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    fn = torch.softmax if node.op == "Softmax" else torch.log_softmax
    return b.call(fn, ins[0], attrs["axis"])


@register_builder("Clip", how="torch.clamp")
def clip(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    lo = _scalar(ins[1]) if len(ins) > 1 else None
    hi = _scalar(ins[2]) if len(ins) > 2 else None
    return b.call(k5_clip, ins[0], lo, hi)


@register_builder("PRelu", how="nn.PReLU")
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
            b.call(torch.mul, ins[0], ConstValue(slope, node.id + ".slope", True)),
        )
    return b.call(torch.where, b.call(torch.ge, ins[0], 0.0), ins[0], b.call(torch.mul, ins[0], ins[1]))


@register_builder("Cast", "CastLike", how="Tensor.to")
def cast(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    if node.op == "CastLike":
        return b.call(torch.Tensor.type_as, ins[0], ins[1])
    to = attrs["to"]
    if to not in _TORCH_DTYPES:
        raise unsupported(node, f"Cast to {to!r}")
    return b.call(k5_cast, ins[0], getattr(torch, to))


@register_builder("BitwiseAnd", "BitwiseOr", "BitwiseXor", how="torch.bitwise_and / or / xor")
def bitwise(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    fn = {"BitwiseAnd": torch.bitwise_and, "BitwiseOr": torch.bitwise_or, "BitwiseXor": torch.bitwise_xor}[node.op]
    return b.call(fn, ins[0], ins[1])
