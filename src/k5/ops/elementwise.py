"""Elementwise ops: arithmetic, math functions, activations, comparisons, logic, casts. NumPy broadcasting rules.

Every kernel follows the latest ONNX opset. Results keep the input dtype (comparisons and ``Is*`` give ``bool``);
float16, bfloat16 and float8 inputs of transcendental functions are computed in float32 and rounded back once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import ml_dtypes
import numpy as np

from k5.errors import OpError
from k5.format.dtypes import dtype_of
from k5.ops.common import compute_dtype, is_float
from k5.ops.registry import op

# --- helpers -------------------------------------------------------------------------------------------------


def _float_unary(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap ``fn`` so it runs on float32 for narrow float types and returns the input dtype."""

    @functools.wraps(fn)
    def wrapped(x: np.ndarray, **attrs: object) -> np.ndarray:
        x = np.asarray(x)
        work = x.astype(compute_dtype(x.dtype), copy=False)
        with np.errstate(all="ignore"):
            y = np.asarray(fn(work, **attrs))
        return y.astype(x.dtype, copy=False)

    return wrapped


def _same(result: np.ndarray, like: np.ndarray) -> np.ndarray:
    return np.asarray(result).astype(like.dtype, copy=False)


def _erf64(x: np.ndarray) -> np.ndarray:
    """erf in float64 to ~1e-15: a positive-term series below |x| = 3, erfc's continued fraction above."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    a = np.abs(x)
    small = a < 3.0
    xs = x[small]
    if xs.size:
        # erf(x) = 2/sqrt(pi) exp(-x^2) sum_n (2x^2)^n x / (1*3*...*(2n+1)): every term has the sign of x
        two_x2 = 2.0 * xs * xs
        term = xs.copy()
        total = xs.copy()
        for n in range(1, 60):
            term *= two_x2 / (2 * n + 1)
            total += term
        out[small] = (2.0 / math.sqrt(math.pi)) * np.exp(-xs * xs) * total
    large = ~small
    xl = a[large]
    if xl.size:
        # erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated from the tail
        with np.errstate(all="ignore"):
            t = xl.copy()
            for k in range(80, 0, -1):
                t = xl + (k / 2.0) / t
            erfc = np.exp(-xl * xl) / math.sqrt(math.pi) / t
        erfc = np.where(np.isinf(xl), 0.0, erfc)
        out[large] = np.sign(x[large]) * (1.0 - erfc)
    out[np.isnan(x)] = np.nan
    return out


def _to_e8m0(x: np.ndarray, saturate: int, round_mode: str) -> np.ndarray:
    """float8_e8m0fnu (a bare power-of-two exponent) from ``x``'s float32 exponent field; the sign is dropped.

    ``round_mode`` "up" takes the next power of two when the mantissa is non-zero, "down" truncates, "nearest"
    rounds up from half the interval. NaN and inf become NaN (0xFF); past the largest exponent (0xFE) the result
    saturates when ``saturate``, else becomes NaN.
    """
    if round_mode not in ("up", "down", "nearest"):
        raise ValueError(f"round_mode must be 'up', 'down' or 'nearest'. Received: {round_mode!r}")
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    exponent = ((bits >> 23) & 0xFF).astype(np.uint16)
    mantissa = bits & 0x7FFFFF
    special = exponent == 0xFF
    if round_mode == "up":
        bump = mantissa > 0
    elif round_mode == "nearest":
        bump = ((mantissa & 0x400000) > 0) & ((exponent > 0) | ((mantissa & 0x3FFFFF) > 0))
    else:
        bump = np.zeros(bits.shape, bool)
    exponent = exponent + (bump & ~special)
    overflow = (exponent > 0xFE) & ~special
    exponent[overflow] = 0xFE if saturate else 0xFF
    exponent[special] = 0xFF
    return exponent.astype(np.uint8).view(ml_dtypes.float8_e8m0fnu)


def _cast(x: np.ndarray, target: np.dtype, saturate: int, round_mode: str = "up") -> np.ndarray:
    """``x`` converted to ``target``; float8 targets saturate to their finite range when ``saturate``."""
    name = str(target)
    with np.errstate(all="ignore"):
        if name == "float8_e8m0fnu":
            return _to_e8m0(x.astype(np.float32), saturate, round_mode)
        if name.startswith("float8"):
            if x.dtype.kind in "iub":
                x = x.astype(np.float32)
            if saturate:
                limit = float(ml_dtypes.finfo(target).max)
                x = np.clip(x.astype(np.float64, copy=False), -limit, limit)
            return x.astype(target)
        if is_float(x.dtype) and target.kind in "iu":
            # out of range is undefined in ONNX; NaN -> 0 keeps the result deterministic
            return np.nan_to_num(x.astype(compute_dtype(x.dtype), copy=False), nan=0.0).astype(target)
        return x.astype(target)


# --- unary math ----------------------------------------------------------------------------------------------


@op("Abs", inputs=["X"], outputs=["Y"])
def abs_(x: np.ndarray) -> np.ndarray:
    """``|x|``."""
    return _same(np.abs(x), x)


@op("Neg", inputs=["X"], outputs=["Y"])
def neg(x: np.ndarray) -> np.ndarray:
    """``-x`` (integers wrap around)."""
    return _same(np.negative(x), x)


@op("Reciprocal", inputs=["X"], outputs=["Y"])
@_float_unary
def reciprocal(x: np.ndarray) -> np.ndarray:
    """``1 / x``."""
    return np.reciprocal(x)


@op("Sqrt", inputs=["X"], outputs=["Y"])
@_float_unary
def sqrt(x: np.ndarray) -> np.ndarray:
    """``sqrt(x)``; NaN for negative inputs."""
    return np.sqrt(x)


@op("Exp", inputs=["input"], outputs=["output"])
@_float_unary
def exp(x: np.ndarray) -> np.ndarray:
    """``e**x``."""
    return np.exp(x)


@op("Log", inputs=["input"], outputs=["output"])
@_float_unary
def log(x: np.ndarray) -> np.ndarray:
    """Natural logarithm; -inf at 0, NaN below."""
    return np.log(x)


@op("Ceil", inputs=["X"], outputs=["Y"])
@_float_unary
def ceil(x: np.ndarray) -> np.ndarray:
    """Smallest integer >= x."""
    return np.ceil(x)


@op("Floor", inputs=["X"], outputs=["Y"])
@_float_unary
def floor(x: np.ndarray) -> np.ndarray:
    """Largest integer <= x."""
    return np.floor(x)


@op("Round", inputs=["X"], outputs=["Y"])
@_float_unary
def round_(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, halves to even."""
    return np.round(x)


@op("Sign", inputs=["input"], outputs=["output"])
def sign(x: np.ndarray) -> np.ndarray:
    """-1, 0 or 1 with the sign of x (NaN stays NaN)."""
    if is_float(x.dtype) and x.dtype.kind != "f":
        return _float_unary(np.sign)(x)
    return _same(np.sign(x), x)


def _trig(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> None:
    def kernel(x: np.ndarray) -> np.ndarray:
        return _float_unary(fn)(x)

    kernel.__name__ = name.lower()
    kernel.__qualname__ = name.lower()
    kernel.__doc__ = f"``{fn.__name__}(x)`` elementwise."
    op(name, inputs=["input"], outputs=["output"])(kernel)


for _name, _fn in {
    "Sin": np.sin, "Cos": np.cos, "Tan": np.tan, "Asin": np.arcsin, "Acos": np.arccos, "Atan": np.arctan,
    "Sinh": np.sinh, "Cosh": np.cosh, "Asinh": np.arcsinh, "Acosh": np.arccosh, "Atanh": np.arctanh,
}.items():  # fmt: skip
    _trig(_name, _fn)


@op("Tanh", inputs=["input"], outputs=["output"])
@_float_unary
def tanh(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent."""
    return np.tanh(x)


@op("Erf", inputs=["input"], outputs=["output"])
def erf(x: np.ndarray) -> np.ndarray:
    """The Gauss error function ``2/sqrt(pi) * integral_0^x exp(-t^2) dt`` (integers are rounded back)."""
    y = _erf64(x.astype(np.float64))
    if x.dtype.kind in "iu":
        y = np.round(y)
    return np.asarray(y).astype(x.dtype)


@op("IsNaN", inputs=["X"], outputs=["Y"], out_dtype="bool")
def isnan(x: np.ndarray) -> np.ndarray:
    """True where x is NaN."""
    return np.asarray(np.isnan(x.astype(np.float32) if x.dtype.kind not in "fiub" else x))


@op("IsInf", inputs=["X"], outputs=["Y"], out_dtype="bool")
def isinf(x: np.ndarray, *, detect_negative: int = 1, detect_positive: int = 1) -> np.ndarray:
    """True where x is +inf (if ``detect_positive``) or -inf (if ``detect_negative``)."""
    if x.dtype.kind not in "fiub":
        x = x.astype(np.float32)
    pos = np.isposinf(x) if detect_positive else np.zeros(x.shape, dtype=bool)
    neg_ = np.isneginf(x) if detect_negative else np.zeros(x.shape, dtype=bool)
    return np.asarray(pos | neg_)


@op("Not", inputs=["X"], outputs=["Y"], out_dtype="bool")
def not_(x: np.ndarray) -> np.ndarray:
    """Logical not of a bool tensor."""
    return np.asarray(np.logical_not(x))


# --- binary and variadic arithmetic ------------------------------------------------------------------------


@op("Add", inputs=["A", "B"], outputs=["C"])
def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b`` with NumPy broadcasting; integers wrap around."""
    return _same(np.add(a, b), a)


@op("Sub", inputs=["A", "B"], outputs=["C"])
def sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` with NumPy broadcasting."""
    return _same(np.subtract(a, b), a)


@op("Mul", inputs=["A", "B"], outputs=["C"])
def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a * b`` with NumPy broadcasting."""
    return _same(np.multiply(a, b), a)


@op("Div", inputs=["A", "B"], outputs=["C"])
def div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b``; integer division truncates toward zero (C semantics)."""
    with np.errstate(all="ignore"):
        if a.dtype.kind in "iu" and np.asarray(b).dtype.kind in "iu":
            q = np.floor_divide(a, b)
            r = np.remainder(a, b)
            adjust = (r != 0) & ((a < 0) ^ (b < 0))
            return _same(q + adjust.astype(q.dtype), a)
        return _same(np.divide(a, b), a)


@op("Pow", inputs=["X", "Y"], outputs=["Z"])
def pow_(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x ** y``; the result has the dtype of ``x`` (the exponent may have another type)."""
    with np.errstate(all="ignore"):
        if x.dtype.kind in "iu" and y.dtype.kind in "iu" and not np.any(y < 0):
            return _same(np.power(x, y.astype(x.dtype)), x)
        work = compute_dtype(x.dtype) if is_float(x.dtype) else np.dtype(np.float64)
        return _same(np.power(x.astype(work), y.astype(np.float64 if work == np.float64 else work)), x)


@op("Mod", inputs=["A", "B"], outputs=["C"])
def mod(a: np.ndarray, b: np.ndarray, *, fmod: int = 0) -> np.ndarray:
    """Remainder ``a - floor(a / b) * b`` with the sign of ``b`` (``fmod=0``), or ``a - trunc(a / b) * b`` with
    the sign of ``a`` (``fmod=1``, C's fmod). Integer division by zero gives 0."""
    if fmod not in (0, 1):
        raise OpError(f"Mod: attribute 'fmod' must be 0 or 1. Received: fmod={fmod}")
    fn = np.fmod if fmod else np.mod
    with np.errstate(all="ignore"):
        if a.dtype.kind in "iu":
            return _same(fn(a, b), a)
        work = compute_dtype(a.dtype)
        return _same(fn(a.astype(work), b.astype(work)), a)


def _variadic(name: str, arrays: tuple[np.ndarray, ...]) -> None:
    if not arrays:
        raise OpError(f"{name}: needs at least one input. Received: none")


@op("Max", inputs=["data_0*"], outputs=["max"])
def max_(*data: np.ndarray) -> np.ndarray:
    """Elementwise maximum of all inputs, broadcast together (NaN propagates)."""
    _variadic("Max", data)
    return _same(functools.reduce(np.maximum, data), data[0])


@op("Min", inputs=["data_0*"], outputs=["min"])
def min_(*data: np.ndarray) -> np.ndarray:
    """Elementwise minimum of all inputs, broadcast together (NaN propagates)."""
    _variadic("Min", data)
    return _same(functools.reduce(np.minimum, data), data[0])


@op("Sum", inputs=["data_0*"], outputs=["sum"])
def sum_(*data: np.ndarray) -> np.ndarray:
    """Elementwise sum of all inputs, broadcast together."""
    _variadic("Sum", data)
    return _same(functools.reduce(np.add, data), data[0])


@op("Mean", inputs=["data_0*"], outputs=["mean"])
def mean(*data: np.ndarray) -> np.ndarray:
    """Elementwise mean of all inputs, broadcast together."""
    _variadic("Mean", data)
    dtype = data[0].dtype
    work = compute_dtype(dtype) if is_float(dtype) else np.dtype(np.float64)
    total = functools.reduce(np.add, [d.astype(work) for d in data])
    return _same(total / len(data), data[0])


# --- comparisons and logic -----------------------------------------------------------------------------------


def _compare(name: str, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], what: str) -> None:
    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray(fn(a, b))

    kernel.__name__ = kernel.__qualname__ = name.lower()
    kernel.__doc__ = f"``{what}`` elementwise with broadcasting, as bool."
    op(name, inputs=["A", "B"], outputs=["C"], out_dtype="bool")(kernel)


for _name, _cmp, _what in (
    ("Equal", np.equal, "a == b"),
    ("Less", np.less, "a < b"),
    ("LessOrEqual", np.less_equal, "a <= b"),
    ("Greater", np.greater, "a > b"),
    ("GreaterOrEqual", np.greater_equal, "a >= b"),
    ("And", np.logical_and, "a and b"),
    ("Or", np.logical_or, "a or b"),
    ("Xor", np.logical_xor, "a xor b"),
):
    _compare(_name, _cmp, _what)


@op("Where", inputs=["condition", "X", "Y"], outputs=["output"], out_dtype="same:X")
def where(condition: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x`` where ``condition`` else ``y``, all three broadcast together."""
    return _same(np.where(condition, x, y), x)


@op("BitShift", inputs=["X", "Y"], outputs=["Z"])
def bit_shift(x: np.ndarray, y: np.ndarray, *, direction: str) -> np.ndarray:
    """Shift the bits of unsigned integers ``x`` by ``y``; ``direction`` is "LEFT" or "RIGHT"."""
    if direction not in ("LEFT", "RIGHT"):
        raise OpError(f"BitShift: attribute 'direction' must be 'LEFT' or 'RIGHT'. Received: direction={direction!r}")
    fn = np.left_shift if direction == "LEFT" else np.right_shift
    return _same(fn(x, y.astype(x.dtype)), x)


def _bitwise(name: str, fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return _same(fn(a, b), a)

    kernel.__name__ = kernel.__qualname__ = name.lower()
    kernel.__doc__ = f"Bitwise {name[7:].lower()} of two integer tensors, with broadcasting."
    op(name, inputs=["A", "B"], outputs=["C"])(kernel)


for _name, _bit in (("BitwiseAnd", np.bitwise_and), ("BitwiseOr", np.bitwise_or), ("BitwiseXor", np.bitwise_xor)):
    _bitwise(_name, _bit)


@op("BitwiseNot", inputs=["X"], outputs=["Y"])
def bitwise_not(x: np.ndarray) -> np.ndarray:
    """Bitwise complement of an integer tensor."""
    return _same(np.invert(x), x)


@op("BitCast", inputs=["input"], outputs=["output"], out_dtype="attr:to")
def bit_cast(x: np.ndarray, *, to: str) -> np.ndarray:
    """The same bytes (little-endian) read as the k5 dtype ``to``, which must have the input's bit width."""
    target = dtype_of(to, where="BitCast attribute 'to'").numpy
    if target.itemsize != x.dtype.itemsize:
        raise OpError(
            f"BitCast: 'to' must have the input's bit width ({x.dtype.itemsize * 8}). "
            f"Received: to={to!r} ({target.itemsize * 8} bits) for a {x.dtype} input"
        )
    return np.ascontiguousarray(x).view(target).reshape(x.shape).copy()


# --- activations ---------------------------------------------------------------------------------------------


@op("Relu", inputs=["X"], outputs=["Y"])
def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``."""
    return _same(np.maximum(x, np.zeros((), dtype=x.dtype)), x)


@op("LeakyRelu", inputs=["X"], outputs=["Y"])
@_float_unary
def leaky_relu(x: np.ndarray, *, alpha: float = 0.01) -> np.ndarray:
    """``x`` if ``x >= 0`` else ``alpha * x``."""
    return np.where(x >= 0, x, x * x.dtype.type(alpha))


@op("PRelu", inputs=["X", "@slope"], outputs=["Y"])
def prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """``x`` if ``x >= 0`` else ``slope * x``; ``slope`` broadcasts to ``x`` (e.g. one value per channel [C,1,1])."""
    try:
        np.broadcast_shapes(slope.shape, x.shape)
    except ValueError:
        raise OpError(
            f"PRelu: slope of shape {list(slope.shape)} does not broadcast to X of shape {list(x.shape)}"
        ) from None
    return _same(np.where(x < 0, x * slope, x), x)


@op("Elu", inputs=["X"], outputs=["Y"])
@_float_unary
def elu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    """``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    return np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0)))


@op("Selu", inputs=["X"], outputs=["Y"])
@_float_unary
def selu(
    x: np.ndarray, *, alpha: float = 1.67326319217681884765625, gamma: float = 1.05070102214813232421875
) -> np.ndarray:
    """``gamma * (x if x > 0 else alpha * (exp(x) - 1))``."""
    t = x.dtype.type
    return t(gamma) * np.where(x > 0, x, t(alpha) * np.expm1(np.minimum(x, 0)))


@op("Celu", inputs=["X"], outputs=["Y"])
@_float_unary
def celu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    t = x.dtype.type
    return np.maximum(x, 0) + np.minimum(0, t(alpha) * np.expm1(np.minimum(x, 0) / t(alpha)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


@op("Sigmoid", inputs=["X"], outputs=["Y"])
@_float_unary
def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))``, computed without overflow."""
    return _sigmoid(x)


@op("HardSigmoid", inputs=["X"], outputs=["Y"])
@_float_unary
def hard_sigmoid(x: np.ndarray, *, alpha: float = 0.2, beta: float = 0.5) -> np.ndarray:
    """``max(0, min(1, alpha * x + beta))``."""
    t = x.dtype.type
    return np.clip(t(alpha) * x + t(beta), 0, 1)


@op("HardSwish", inputs=["X"], outputs=["Y"])
@_float_unary
def hard_swish(x: np.ndarray) -> np.ndarray:
    """``x * max(0, min(1, x / 6 + 0.5))``."""
    t = x.dtype.type
    return x * np.clip(x * t(1.0 / 6.0) + t(0.5), 0, 1)


@op("Softplus", inputs=["X"], outputs=["Y"])
@_float_unary
def softplus(x: np.ndarray) -> np.ndarray:
    """``log(exp(x) + 1)``, computed without overflow."""
    return np.logaddexp(x.dtype.type(0), x)


@op("Softsign", inputs=["input"], outputs=["output"])
@_float_unary
def softsign(x: np.ndarray) -> np.ndarray:
    """``x / (1 + |x|)``."""
    return x / (1 + np.abs(x))


@op("ThresholdedRelu", inputs=["X"], outputs=["Y"])
@_float_unary
def thresholded_relu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    """``x`` if ``x > alpha`` else 0."""
    return np.where(x > x.dtype.type(alpha), x, 0)


@op("Shrink", inputs=["input"], outputs=["output"])
def shrink(x: np.ndarray, *, bias: float = 0.0, lambd: float = 0.5) -> np.ndarray:
    """``x + bias`` if ``x < -lambd``, ``x - bias`` if ``x > lambd``, else 0."""
    work = x.astype(compute_dtype(x.dtype) if is_float(x.dtype) else np.float64)
    y = np.where(work < -lambd, work + bias, np.where(work > lambd, work - bias, 0))
    return _same(y, x)


@op("Gelu", inputs=["X"], outputs=["Y"])
def gelu(x: np.ndarray, *, approximate: str = "none") -> np.ndarray:
    """``x * Phi(x)``: exact with ``approximate="none"``, the tanh formula with ``"tanh"``."""
    if approximate not in ("none", "tanh"):
        raise OpError(f"Gelu: attribute 'approximate' must be 'none' or 'tanh'. Received: {approximate!r}")
    w = x.astype(np.float64)
    if approximate == "tanh":
        y = 0.5 * w * (1 + np.tanh(math.sqrt(2 / math.pi) * (w + 0.044715 * w**3)))
    else:
        y = 0.5 * w * (1 + _erf64(w / math.sqrt(2)))
    return np.asarray(y).astype(x.dtype)


@op("Mish", inputs=["X"], outputs=["Y"])
@_float_unary
def mish(x: np.ndarray) -> np.ndarray:
    """``x * tanh(softplus(x))``."""
    return x * np.tanh(np.logaddexp(x.dtype.type(0), x))


@op("Swish", inputs=["X"], outputs=["Y"])
@_float_unary
def swish(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    """``x * sigmoid(alpha * x)``."""
    return x * _sigmoid(x.dtype.type(alpha) * x)


@op("Clip", inputs=["input", "min?", "max?"], outputs=["output"])
def clip(x: np.ndarray, min: np.ndarray | None = None, max: np.ndarray | None = None) -> np.ndarray:
    """``min(max(x, min), max)``; an omitted bound does not clip (if min > max, every value becomes max)."""
    y = x
    for bound, fn, name in ((min, np.maximum, "min"), (max, np.minimum, "max")):
        if bound is None:
            continue
        b = np.asarray(bound)
        if b.size == 0:  # an empty tensor stands for an omitted bound
            continue
        if b.size != 1:
            raise OpError(f"Clip: input {name!r} must be a scalar. Received: shape {list(b.shape)}")
        y = fn(y, b.reshape(()).astype(x.dtype))
    return _same(y, x)


@op("Identity", inputs=["input"], outputs=["output"])
def identity(x: object) -> object:
    """The input, unchanged (a tensor, a sequence or an optional)."""
    return x


@op("Dropout", inputs=["data", "ratio?", "training_mode?"], outputs=["output", "mask?"], out_dtype=("same", "bool"))
def dropout(
    data: np.ndarray,
    ratio: np.ndarray | None = None,
    training_mode: np.ndarray | None = None,
    *,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Inference: the input and an all-True mask. Training (``training_mode`` True, ``ratio`` > 0): each value is
    kept with probability ``1 - ratio`` and scaled by ``1 / (1 - ratio)``; the draw is NumPy's legacy
    ``RandomState(seed).uniform`` (the one ONNX's test data uses), so a given ``seed`` is reproducible."""
    p = 0.5 if ratio is None else float(np.asarray(ratio).reshape(()))
    training = training_mode is not None and bool(np.asarray(training_mode).reshape(()))
    if not training or p == 0:
        return data, np.ones(data.shape, dtype=bool)
    if not 0 <= p < 1:
        raise OpError(f"Dropout: 'ratio' must be in [0, 1) in training mode. Received: ratio={p}")
    rng = np.random.RandomState(seed)  # ONNX's reference draws, for a given seed
    mask = rng.uniform(0.0, 1.0, data.shape) >= p
    work = data.astype(compute_dtype(data.dtype))
    return _same(work * mask * work.dtype.type(1.0 / (1.0 - p)), data), mask


# --- casts ---------------------------------------------------------------------------------------------------


@op("Cast", inputs=["input"], outputs=["output"], out_dtype="attr:to")
def cast(x: np.ndarray, *, to: str, saturate: int = 1, round_mode: str = "up") -> np.ndarray:
    """``x`` converted to the k5 dtype named ``to`` (e.g. "float16"). Floats to integers truncate toward zero;
    to float8 types, out-of-range values become the largest finite value when ``saturate`` (default), else
    inf/NaN as the type allows. ``round_mode`` ("up", "down", "nearest") only concerns float8_e8m0fnu."""
    target = dtype_of(to, where="Cast attribute 'to'").numpy
    return _cast(np.asarray(x), target, saturate, round_mode)


@op("CastLike", inputs=["input", "target_type"], outputs=["output"], out_dtype="same:target_type")
def cast_like(x: np.ndarray, target_type: np.ndarray, *, saturate: int = 1, round_mode: str = "up") -> np.ndarray:
    """``x`` converted to the dtype of ``target_type`` (whose values are ignored), as ``Cast`` does."""
    return _cast(np.asarray(x), np.asarray(target_type).dtype, saturate, round_mode)
