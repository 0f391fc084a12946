"""Keras activations (``activation=`` strings and the Activation/ReLU/... layers) as k5 ops.

An activation is elementwise, so it runs in whatever layout its input has (no Transpose), except the softmax
family, whose axis is mapped into the input's layout.
"""

from __future__ import annotations

from collections.abc import Callable

from k5.convert.keras.graph import Builder, Val, axis_in
from k5.errors import ConversionError

__all__ = ["ACTIVATIONS", "activation_name", "apply_activation"]

# name -> (k5 op, attrs); composite activations are handled in apply_activation
_SIMPLE: dict[str, tuple[str, dict[str, float | str]]] = {
    "relu": ("Relu", {}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "elu": ("Elu", {"alpha": 1.0}),
    "selu": ("Selu", {}),
    "softplus": ("Softplus", {}),
    "softsign": ("Softsign", {}),
    "exponential": ("Exp", {}),
    "gelu": ("Gelu", {"approximate": "none"}),
    "hard_sigmoid": ("HardSigmoid", {"alpha": 1.0 / 6.0, "beta": 0.5}),  # Keras 3: relu6(x + 3) / 6
    "hard_silu": ("HardSwish", {}),
    "hard_swish": ("HardSwish", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.2}),  # keras.activations.leaky_relu(negative_slope=0.2)
    "abs": ("Abs", {}),
}
_COMPOSITE = ("silu", "swish", "mish", "relu6", "softmax", "log_softmax", "linear")

#: every activation name from_keras accepts
ACTIVATIONS = tuple(sorted((*_SIMPLE, *_COMPOSITE)))


def activation_name(value: object) -> str:
    """The activation named by a layer config's ``activation`` entry (a string, or a serialized function)."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):  # {"module": "keras.activations", "class_name": "function", "config": "relu"}
        if value.get("module") in ("keras.activations", "keras.src.activations.activations", "builtins"):
            cfg = value.get("config")
            if isinstance(cfg, str):
                return cfg
        raise ConversionError(f"activation {value.get('config')!r} is not a built-in Keras activation; refused")
    raise ConversionError(f"activation {value!r} is not a built-in Keras activation name")


def apply_activation(b: Builder, x: Val, name: str, node_id: str, *, out: str | None = None) -> Val:
    """``name`` applied to ``x`` (same layout); returns ``x`` itself for "linear"."""
    act = _ACTS.get(name)
    if act is None:
        raise ConversionError(f"activation {name!r} has no k5 form. Supported: {', '.join(ACTIVATIONS)}",
                              where=f"node {node_id!r}")
    return act(b, x, name, node_id, out)


def _simple(b: Builder, x: Val, name: str, node_id: str, out: str | None) -> Val:
    op, attrs = _SIMPLE[name]
    return _like(x, b.add1(op, [x.name], id=node_id, attrs=dict(attrs), out=out))


def _like(x: Val, name: str) -> Val:
    return Val(name, x.layout, x.rank, x.flat_shape)


def _linear(b: Builder, x: Val, name: str, node_id: str, out: str | None) -> Val:
    return x


def _swish(b: Builder, x: Val, name: str, node_id: str, out: str | None) -> Val:
    s = b.add1("Sigmoid", [x.name], id=f"{node_id}.sigmoid")
    return _like(x, b.add1("Mul", [x.name, s], id=node_id, out=out))


def _mish(b: Builder, x: Val, name: str, node_id: str, out: str | None) -> Val:
    sp = b.add1("Softplus", [x.name], id=f"{node_id}.softplus")
    t = b.add1("Tanh", [sp], id=f"{node_id}.tanh")
    return _like(x, b.add1("Mul", [x.name, t], id=node_id, out=out))


def _relu6(b: Builder, x: Val, name: str, node_id: str, out: str | None) -> Val:
    lo, hi = b.const(0.0, "zero"), b.const(6.0, "six")
    return _like(x, b.add1("Clip", [x.name, lo, hi], id=node_id, out=out))


def _softmax(b: Builder, x: Val, name: str, node_id: str, out: str | None, axis: int = -1) -> Val:
    op = "Softmax" if name == "softmax" else "LogSoftmax"
    if x.layout == "flatcf":
        xn = b.get(x, "k")
        return Val(b.add1(op, [xn], id=node_id, attrs={"axis": -1}, out=out), "k", 2)
    ax = axis_in(x.layout, axis, x.rank) if x.rank else axis
    return _like(x, b.add1(op, [x.name], id=node_id, attrs={"axis": ax}, out=out))


Act = Callable[[Builder, Val, str, str, "str | None"], Val]
_ACTS: dict[str, Act] = {n: _simple for n in _SIMPLE}
_ACTS.update(linear=_linear, silu=_swish, swish=_swish, mish=_mish, relu6=_relu6, softmax=_softmax,
             log_softmax=_softmax)


def softmax(b: Builder, x: Val, node_id: str, axis: int, *, log: bool = False) -> Val:
    return _softmax(b, x, "log_softmax" if log else "softmax", node_id, None, axis)
