"""Small Keras layers for k5 ops that have no built-in Keras layer, registered as serializable (package "k5").

This module imports Keras at import, so k5 imports it only inside :func:`k5.convert.keras.to_keras`. A ``.keras``
file saved from a converted model reloads in a fresh process once this module is imported (or with
``custom_objects=k5.convert.keras.custom_objects()``).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

__all__ = ["CUSTOM_OBJECTS", "K5Binary", "K5Pad", "K5Reduce", "K5Reshape", "K5SequenceMask", "K5Slice", "K5Transpose",
           "K5Unary", "K5Where"]

_UNARY = {
    "Relu": lambda x, a: ops.relu(x),
    "Sigmoid": lambda x, a: ops.sigmoid(x),
    "Tanh": lambda x, a: ops.tanh(x),
    "Elu": lambda x, a: ops.where(x > 0, x, a.get("alpha", 1.0) * (ops.exp(ops.minimum(x, 0.0)) - 1.0)),
    "Selu": lambda x, a: ops.selu(x),
    "Softplus": lambda x, a: ops.softplus(x),
    "Softsign": lambda x, a: ops.soft_sign(x),
    "Exp": lambda x, a: ops.exp(x),
    "Log": lambda x, a: ops.log(x),
    "Abs": lambda x, a: ops.abs(x),
    "Neg": lambda x, a: ops.negative(x),
    "Sqrt": lambda x, a: ops.sqrt(x),
    "Erf": lambda x, a: ops.erf(x),
    "Reciprocal": lambda x, a: 1.0 / x,
    "Gelu": lambda x, a: ops.gelu(x, approximate=a.get("approximate", "none") == "tanh"),
    "LeakyRelu": lambda x, a: ops.leaky_relu(x, negative_slope=a.get("alpha", 0.01)),
    "HardSigmoid": lambda x, a: ops.clip(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0.0, 1.0),
    "HardSwish": lambda x, a: x * ops.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "Softmax": lambda x, a: ops.softmax(x, axis=a.get("axis", -1)),
    "LogSoftmax": lambda x, a: ops.log_softmax(x, axis=a.get("axis", -1)),
    "Clip": lambda x, a: ops.clip(x, a.get("min", -np.inf), a.get("max", np.inf)),
    "Cast": lambda x, a: ops.cast(x, a["to"]),
    "Identity": lambda x, a: x,
    "Flatten": lambda x, a: _reshape(x, [0, -1]),
    "Gather": lambda x, a: ops.take(x, np.asarray(a["indices"], dtype="int32"), axis=a["axis"]),
    "Expand": lambda x, a: x * ops.ones(a["shape"], dtype=x.dtype),
    "Unsqueeze": lambda x, a: _unsqueeze(x, a["axes"]),
    "Squeeze": lambda x, a: ops.squeeze(x, axis=tuple(a["axes"])),
    "Not": lambda x, a: ops.logical_not(x),
}


def _reshape(x: Any, shape: list[int]) -> Any:
    """k5 Reshape (0 copies a dim, -1 is inferred), resolved statically where the input's unknown dim (the batch,
    usually) is copied through a 0, so Keras knows the output shape while building."""
    dims = list(x.shape)
    unknown = [j for j, d in enumerate(dims) if d is None]
    if len(unknown) <= 1 and all(j < len(shape) and shape[j] == 0 for j in unknown):
        target = [(dims[i] if d == 0 else d) for i, d in enumerate(shape)]
        if -1 in target:
            known_in = int(np.prod([d for d in dims if d is not None]))
            known_out = int(np.prod([d for d in target if d not in (None, -1)]))
            target[target.index(-1)] = known_in // max(known_out, 1)
        target = [-1 if d is None else d for d in target]
        return ops.reshape(x, target)
    live = ops.shape(x)
    return ops.reshape(x, [live[i] if d == 0 else d for i, d in enumerate(shape)])


def _unsqueeze(x: Any, axes: list[int]) -> Any:
    for ax in sorted(axes):
        x = ops.expand_dims(x, ax)
    return x


_BINARY = {
    "Add": ops.add, "Sub": ops.subtract, "Mul": ops.multiply, "Div": ops.divide, "Max": ops.maximum,
    "Min": ops.minimum, "Pow": ops.power, "MatMul": ops.matmul, "Equal": ops.equal,
    "Greater": ops.greater, "Less": ops.less, "GreaterOrEqual": ops.greater_equal, "LessOrEqual": ops.less_equal,
}


@keras.saving.register_keras_serializable(package="k5")
class K5Unary(keras.layers.Layer):
    """An elementwise k5 op (and Softmax/Clip/Cast/Flatten/Unsqueeze/Squeeze) with its attributes."""

    def __init__(self, op: str, attrs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.op, self.attrs = op, dict(attrs or {})

    def call(self, x: Any) -> Any:
        return _UNARY[self.op](x, self.attrs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "op": self.op, "attrs": self.attrs}


@keras.saving.register_keras_serializable(package="k5")
class K5Binary(keras.layers.Layer):
    """``op(a, b)`` with broadcasting; a constant operand (``const_index`` 0 or 1) is a non-trainable weight."""

    def __init__(self, op: str, const_index: int | None = None, const_shape: list[int] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.op, self.const_index, self.const_shape = op, const_index, const_shape
        if const_index is not None:
            self.constant = self.add_weight(name="constant", shape=tuple(const_shape or ()), trainable=False,
                                            initializer="zeros")

    def call(self, *xs: Any) -> Any:
        args = list(xs)
        if self.const_index is not None:
            args.insert(self.const_index, ops.cast(self.constant, args[0].dtype))
        return _BINARY[self.op](args[0], args[1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "op": self.op, "const_index": self.const_index,
                "const_shape": self.const_shape}


@keras.saving.register_keras_serializable(package="k5")
class K5SequenceMask(keras.layers.Layer):
    """The Keras RNN mask of k5's ``sequence_lens``: ``mask[n, t] = t < lens[n]`` for batch-first ``x [N, T, ...]``."""

    def call(self, x: Any, lens: Any) -> Any:
        steps = ops.arange(ops.shape(x)[1], dtype="int32")
        return ops.less(ops.expand_dims(steps, 0), ops.expand_dims(ops.cast(lens, "int32"), 1))


@keras.saving.register_keras_serializable(package="k5")
class K5Where(keras.layers.Layer):
    """``where(cond, a, b)``; constant operands (``const_shapes[i]`` not None) are non-trainable weights (a constant
    condition is stored as 0/1 floats), the others are the call's tensors in order."""

    def __init__(self, const_shapes: list[list[int] | None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.const_shapes = [None if c is None else list(c) for c in const_shapes]
        self.consts = [None if c is None else self.add_weight(name=f"constant{i}", shape=tuple(c), trainable=False,
                                                              initializer="zeros")
                       for i, c in enumerate(self.const_shapes)]

    def call(self, *xs: Any) -> Any:
        it = iter(xs)
        args = [next(it) if c is None else c for c in self.consts]
        dtype = next((a.dtype for i, a in enumerate(args) if i and self.consts[i] is None), "float32")
        cond = args[0] if self.consts[0] is None else ops.not_equal(args[0], 0)
        a, b = (ops.cast(v, dtype) if self.consts[i + 1] is not None else v for i, v in enumerate(args[1:]))
        return ops.where(cond, a, b)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "const_shapes": self.const_shapes}


@keras.saving.register_keras_serializable(package="k5")
class K5Transpose(keras.layers.Layer):
    def __init__(self, perm: list[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.perm = list(perm)

    def call(self, x: Any) -> Any:
        return ops.transpose(x, self.perm)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "perm": self.perm}


@keras.saving.register_keras_serializable(package="k5")
class K5Reshape(keras.layers.Layer):
    """k5 Reshape: 0 copies the input's dim, -1 is inferred."""

    def __init__(self, shape: list[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shape_ = list(shape)

    def call(self, x: Any) -> Any:
        return _reshape(x, self.shape_)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "shape": self.shape_}


@keras.saving.register_keras_serializable(package="k5")
class K5Pad(keras.layers.Layer):
    def __init__(self, pads: list[int], value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pads, self.value = list(pads), float(value)

    def call(self, x: Any) -> Any:
        n = len(self.pads) // 2
        return ops.pad(x, [(self.pads[i], self.pads[i + n]) for i in range(n)], constant_values=self.value)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pads": self.pads, "value": self.value}


@keras.saving.register_keras_serializable(package="k5")
class K5Slice(keras.layers.Layer):
    """k5 Slice with constant starts/ends/axes/steps (a step of -1 flips the axis)."""

    def __init__(self, starts: list[int], ends: list[int], axes: list[int], steps: list[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.starts, self.ends, self.axes, self.steps = list(starts), list(ends), list(axes), list(steps)

    def call(self, x: Any) -> Any:
        rank = len(x.shape)
        index: list[Any] = [slice(None)] * rank
        for s, e, a, st in zip(self.starts, self.ends, self.axes, self.steps, strict=True):
            big = 1 << 62
            index[a % rank] = slice(None if abs(s) >= big else s, None if abs(e) >= big else e, st)
        flips = [i for i, sl in enumerate(index) if sl.step == -1]
        for i in flips:  # reverse with flip (works on every backend)
            sl = index[i]
            x = ops.flip(x, axis=i)
            index[i] = slice(None if sl.start in (None, -1) else -sl.start - 1, None, 1)
        return x[tuple(index)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "starts": self.starts, "ends": self.ends, "axes": self.axes,
                "steps": self.steps}


@keras.saving.register_keras_serializable(package="k5")
class K5Reduce(keras.layers.Layer):
    def __init__(self, op: str, axes: list[int], keepdims: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.op, self.axes, self.keepdims = op, list(axes), bool(keepdims)

    def call(self, x: Any) -> Any:
        fn = {"ReduceMean": ops.mean, "ReduceMax": ops.max, "ReduceMin": ops.min, "ReduceSum": ops.sum,
              "ReduceProd": ops.prod}[self.op]
        return fn(x, axis=tuple(self.axes), keepdims=self.keepdims)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "op": self.op, "axes": self.axes, "keepdims": self.keepdims}


CUSTOM_OBJECTS = {f"k5>{c.__name__}": c for c in (K5Unary, K5Binary, K5Transpose, K5Reshape, K5Pad, K5Slice,
                                                   K5Reduce, K5SequenceMask, K5Where)}
