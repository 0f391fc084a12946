"""Quantization: QuantizeLinear, DequantizeLinear, integer matmul/conv, QLinear ops.

k5 stores a quantized tensor as (integer or float8 tensor, scale, zero point): a ``Constant`` holding the quantized
values feeding ``DequantizeLinear``. Scale and zero point share one shape, which sets the granularity: a scalar
(per tensor), a 1-D tensor along ``axis`` (per axis), or the input's rank with ``ceil(D_axis / block_size)`` along
``axis`` (blocked). ``output_dtype``/``precision`` are k5 dtype names.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from k5.errors import AttrError, OpError
from k5.format.dtypes import dtype_of
from k5.ops.conv import conv
from k5.ops.registry import op

__all__ = ["conv_integer_accumulate"]

_FLOAT8 = tuple(np.dtype(t) for t in (
    ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2, ml_dtypes.float8_e5m2fnuz,
))  # fmt: skip
_FLOAT4 = (np.dtype(ml_dtypes.float4_e2m1fn),)  # no inf/NaN encodings: always saturates


def _broadcast_param(p: np.ndarray, x: np.ndarray, axis: int, block_size: int, what: str) -> np.ndarray:
    """Scale or zero point ``p`` broadcastable to ``x`` for per-tensor, per-axis or blocked quantization."""
    p = np.asarray(p)
    if p.ndim == 0 or (p.size == 1 and block_size <= 0 and p.ndim <= 1):
        return p.reshape(())
    axis = axis + x.ndim if axis < 0 else axis
    if not 0 <= axis < max(x.ndim, 1):
        raise AttrError(f"axis={axis} is out of range for an input of rank {x.ndim}")
    if block_size <= 0:
        if p.ndim != 1 or p.shape[0] != x.shape[axis]:
            raise OpError(
                f"per-axis {what} must be 1-D of length {x.shape[axis]} (input axis {axis}). Received: shape "
                f"{list(p.shape)}"
            )
        shape = [1] * x.ndim
        shape[axis] = -1
        return p.reshape(shape)
    want = list(x.shape)
    want[axis] = math.ceil(x.shape[axis] / block_size)
    if p.ndim != x.ndim or [d for i, d in enumerate(p.shape) if i != axis] != [
        d for i, d in enumerate(x.shape) if i != axis
    ]:
        raise OpError(f"blocked {what} must have shape {want} (block_size={block_size}). Received: {list(p.shape)}")
    n, blocks = x.shape[axis], p.shape[axis]
    if not (block_size * blocks >= n and block_size * (blocks - 1) < n):
        raise OpError(f"block_size={block_size} does not fit {what} shape {list(p.shape)} for input {list(x.shape)}")
    return np.repeat(p, block_size, axis=axis).take(np.arange(x.shape[axis]), axis=axis)


def _int_range(dtype: np.dtype) -> tuple[int, int] | None:
    """(min, max) of an integer type (NumPy's or ml_dtypes' 2/4-bit ones); None for other types."""
    try:
        info = ml_dtypes.iinfo(dtype)
    except (TypeError, ValueError):
        return None
    return int(info.min), int(info.max)


def _saturate_cast(v: np.ndarray, target: np.dtype, saturate: int) -> np.ndarray:
    """Cast real values ``v`` (already rounded for integer targets) to ``target``."""
    if target in _FLOAT8 or target in _FLOAT4:
        v = v.astype(np.float32)
        if saturate or target in _FLOAT4:
            big = float(ml_dtypes.finfo(target).max)
            v = np.where(np.isnan(v), v, np.clip(v, -big, big))
        return v.astype(target)
    limits = _int_range(target)
    if limits is not None:
        return np.clip(v, *limits).astype(target)
    return v.astype(target)


@op(
    "QuantizeLinear",
    inputs=["x", "y_scale", "y_zero_point?"],
    outputs=["y"],
    out_dtype="attr:output_dtype|same:y_zero_point|uint8",
)
def quantize_linear(
    x: np.ndarray,
    y_scale: np.ndarray,
    y_zero_point: np.ndarray | None,
    *,
    axis: int = 1,
    block_size: int = 0,
    output_dtype: str | None = None,
    saturate: int = 1,
    precision: str | None = None,
) -> np.ndarray:
    """``y = saturate(round_half_even(x / y_scale) + y_zero_point)``; float8 targets skip the rounding.

    The output type is ``output_dtype``, else the zero point's type, else uint8. The division runs in ``precision``
    (default: the scale's type). ``saturate`` only concerns float8 targets: clip to the largest finite value
    instead of producing inf/NaN.
    """
    if output_dtype is not None:
        target = dtype_of(output_dtype).numpy
        if y_zero_point is not None and y_zero_point.dtype != target:
            raise OpError(f"output_dtype={output_dtype!r} differs from y_zero_point's dtype {y_zero_point.dtype}")
    elif y_zero_point is not None:
        target = y_zero_point.dtype
    else:
        target = np.dtype(np.uint8)
    calc = dtype_of(precision).numpy if precision else np.asarray(y_scale).dtype
    if calc.kind in "iu":
        calc = np.dtype(np.float32)
    scale = _broadcast_param(y_scale, x, axis, block_size, "y_scale").astype(calc)
    v = x.astype(calc) / scale
    is_float = _int_range(target) is None  # float8/float4 targets: no rounding
    v = v.astype(np.float32) if is_float else np.rint(v.astype(np.float64))
    if y_zero_point is not None:
        zp = _broadcast_param(y_zero_point, x, axis, block_size, "y_zero_point")
        v = v + zp.astype(np.float32 if is_float else np.float64)
    return _saturate_cast(np.asarray(v), target, saturate)


@op(
    "DequantizeLinear",
    inputs=["x", "x_scale", "x_zero_point?"],
    outputs=["y"],
    out_dtype="attr:output_dtype|same:x_scale",
)
def dequantize_linear(
    x: np.ndarray,
    x_scale: np.ndarray,
    x_zero_point: np.ndarray | None,
    *,
    axis: int = 1,
    block_size: int = 0,
    output_dtype: str | None = None,
) -> np.ndarray:
    """``y = (x - x_zero_point) * x_scale`` in ``output_dtype`` (default: the scale's type)."""
    out = dtype_of(output_dtype).numpy if output_dtype else np.asarray(x_scale).dtype
    if x_zero_point is not None and x_zero_point.dtype != x.dtype:
        raise OpError(f"x_zero_point dtype {x_zero_point.dtype} differs from x dtype {x.dtype}")
    if _int_range(x.dtype) is not None:
        diff = x.astype(np.int64)
        if x_zero_point is not None:
            diff = diff - _broadcast_param(x_zero_point, x, axis, block_size, "x_zero_point").astype(np.int64)
    else:  # float8
        diff = x.astype(np.float32)
        if x_zero_point is not None:
            diff = diff - _broadcast_param(x_zero_point, x, axis, block_size, "x_zero_point").astype(np.float32)
    scale = _broadcast_param(x_scale, x, axis, block_size, "x_scale")
    y = diff.astype(np.float32) * scale.astype(np.float32)
    return np.asarray(y).astype(out)


@op(
    "DynamicQuantizeLinear",
    inputs=["x"],
    outputs=["y", "y_scale", "y_zero_point"],
    out_dtype=("uint8", "float32", "uint8"),
)
def dynamic_quantize_linear(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 quantization of float ``x`` over ``[min(0, min x), max(0, max x)]``."""
    xf = x.astype(np.float32)
    lo = min(0.0, float(xf.min())) if xf.size else 0.0
    hi = max(0.0, float(xf.max())) if xf.size else 0.0
    scale = np.float32((hi - lo) / 255.0)
    if scale == 0:
        zp = np.uint8(0)
        y = np.zeros(x.shape, np.uint8)
    else:
        zp = np.uint8(np.clip(np.rint(np.float32(0.0) - np.float32(lo) / scale), 0, 255))
        y = np.clip(np.rint(xf / scale) + np.float32(zp), 0, 255).astype(np.uint8)
    return y, np.asarray(scale, np.float32), np.asarray(zp, np.uint8)


def _minus_zero_point(a: np.ndarray, zp: np.ndarray | None, row_axis: int | None = None) -> np.ndarray:
    """``a - zp`` in int64; a 1-D zero point applies along ``row_axis`` (per row of A / per column of B)."""
    a = a.astype(np.int64)
    if zp is None:
        return a
    zp = np.asarray(zp).astype(np.int64)
    if zp.ndim == 1 and zp.size > 1 and row_axis is not None:
        shape = [1] * a.ndim
        shape[row_axis] = -1
        zp = zp.reshape(shape)
    elif zp.size == 1:
        zp = zp.reshape(())
    return a - zp


def _int_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer matmul of small integers through float64 BLAS (exact below 2**53)."""
    return np.rint(np.matmul(a.astype(np.float64), b.astype(np.float64))).astype(np.int64)


@op("MatMulInteger", inputs=["A", "B", "a_zero_point?", "b_zero_point?"], outputs=["Y"], out_dtype="int32")
def matmul_integer(
    A: np.ndarray, B: np.ndarray, a_zero_point: np.ndarray | None, b_zero_point: np.ndarray | None
) -> np.ndarray:
    """``(A - a_zero_point) @ (B - b_zero_point)`` in int32 (a 1-D a_zero_point is per row, b per column)."""
    a = _minus_zero_point(A, a_zero_point, row_axis=A.ndim - 2 if A.ndim >= 2 else None)
    b = _minus_zero_point(B, b_zero_point, row_axis=B.ndim - 1)
    return _int_matmul(a, b).astype(np.int32)


# --- integer convolution --------------------------------------------------------------------------------------
def conv_integer_accumulate(
    x: np.ndarray,
    w: np.ndarray,
    *,
    group: int = 1,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
    dilations: list[int] | None = None,
    kernel_shape: list[int] | None = None,
    auto_pad: str = "NOTSET",
) -> np.ndarray:
    """N-D grouped convolution of integer-valued arrays (zero points already removed), exact int64 result.

    ``x`` [N, C, *S], ``w`` [M, C/group, *K]; padding adds zeros (the zero point, once it is removed). The float
    Conv kernel does the work in float64, which holds every int8/uint8 product sum exactly.
    """
    y = conv(
        x.astype(np.float64),
        w.astype(np.float64),
        None,
        auto_pad=auto_pad,
        dilations=dilations,
        group=group,
        kernel_shape=kernel_shape,
        pads=pads,
        strides=strides,
    )
    return np.rint(y).astype(np.int64)


def _conv_weight_zero_point(w: np.ndarray, zp: np.ndarray | None) -> np.ndarray:
    return _minus_zero_point(w, zp, row_axis=0)


@op("ConvInteger", inputs=["x", "w", "x_zero_point?", "w_zero_point?"], outputs=["y"], out_dtype="int32")
def conv_integer(
    x: np.ndarray,
    w: np.ndarray,
    x_zero_point: np.ndarray | None,
    w_zero_point: np.ndarray | None,
    *,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    """Convolution of ``x - x_zero_point`` with ``w - w_zero_point`` (per output channel if 1-D), int32 output."""
    xi = _minus_zero_point(x, x_zero_point)
    wi = _conv_weight_zero_point(w, w_zero_point)
    y = conv_integer_accumulate(
        xi, wi, group=group, pads=pads, strides=strides, dilations=dilations, kernel_shape=kernel_shape,
        auto_pad=auto_pad,
    )  # fmt: skip
    return y.astype(np.int32)


def _requantize(acc: np.ndarray, multiplier: np.ndarray | float, y_zero_point: np.ndarray) -> np.ndarray:
    """``saturate(round_half_even(acc * multiplier) + y_zero_point)`` in the zero point's type."""
    v = np.rint(acc.astype(np.float64) * multiplier) + np.asarray(y_zero_point).astype(np.float64)
    lo, hi = _int_range(y_zero_point.dtype) or (-np.inf, np.inf)
    return np.clip(v, lo, hi).astype(y_zero_point.dtype)


def _scale_along(s: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    s = np.asarray(s).astype(np.float64)
    if s.size == 1:
        return s.reshape(())
    shape = [1] * ndim
    shape[axis] = -1
    return s.reshape(shape)


@op(
    "QLinearMatMul",
    inputs=["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "y_scale", "y_zero_point"],
    outputs=["y"],
    out_dtype="same:y_zero_point",
)
def qlinear_matmul(
    a: np.ndarray,
    a_scale: np.ndarray,
    a_zero_point: np.ndarray,
    b: np.ndarray,
    b_scale: np.ndarray,
    b_zero_point: np.ndarray,
    y_scale: np.ndarray,
    y_zero_point: np.ndarray,
) -> np.ndarray:
    """Quantized matmul: ``quantize(dequantize(a) @ dequantize(b), y_scale, y_zero_point)``.

    Scales and zero points are scalars, or 1-D per row of ``a`` / per column of ``b``.
    """
    ai = _minus_zero_point(a, a_zero_point, row_axis=a.ndim - 2 if a.ndim >= 2 else None)
    bi = _minus_zero_point(b, b_zero_point, row_axis=b.ndim - 1)
    acc = _int_matmul(ai, bi)
    sa = _scale_along(a_scale, acc.ndim, acc.ndim - 2) if acc.ndim >= 2 else np.asarray(a_scale, np.float64)
    sb = _scale_along(b_scale, acc.ndim, acc.ndim - 1)
    # the reference computes in the scales' float type: dequantize, multiply, then divide by y_scale
    ft = np.float32
    real = (acc.astype(ft) * (sa.astype(ft) * sb.astype(ft))).astype(ft) / np.asarray(y_scale).astype(ft)
    return _requantize(np.asarray(real), np.float64(1.0), y_zero_point)


@op(
    "QLinearConv",
    inputs=["x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point", "y_scale", "y_zero_point", "B?"],
    outputs=["y"],
    out_dtype="same:y_zero_point",
)
def qlinear_conv(
    x: np.ndarray,
    x_scale: np.ndarray,
    x_zero_point: np.ndarray,
    w: np.ndarray,
    w_scale: np.ndarray,
    w_zero_point: np.ndarray,
    y_scale: np.ndarray,
    y_zero_point: np.ndarray,
    B: np.ndarray | None,
    *,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    """Quantized convolution; ``w_scale``/``w_zero_point`` may be per output channel, ``B`` is int32 in the
    accumulator's scale (``x_scale * w_scale``)."""
    xi = _minus_zero_point(x, x_zero_point)
    wi = _conv_weight_zero_point(w, w_zero_point)
    acc = conv_integer_accumulate(
        xi, wi, group=group, pads=pads, strides=strides, dilations=dilations, kernel_shape=kernel_shape,
        auto_pad=auto_pad,
    )  # fmt: skip
    if B is not None:
        acc = acc + B.astype(np.int64).reshape([1, -1] + [1] * (acc.ndim - 2))
    mult = (
        np.asarray(x_scale, np.float64).reshape(())
        * _scale_along(w_scale, acc.ndim, 1)
        / np.asarray(y_scale, np.float64).reshape(())
    )
    return _requantize(acc, mult, y_zero_point)
