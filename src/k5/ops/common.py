"""Helpers shared by the op families (and by any layer that computes like the kernels): one copy of each."""

from __future__ import annotations

from typing import Any

import numpy as np

from k5.errors import OpError

__all__ = ["compute_dtype", "int_list", "is_float", "normalize_axis"]

_FLOAT32 = np.dtype(np.float32)
_WIDE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def is_float(dtype: np.dtype) -> bool:
    """True for every floating type: NumPy's, and the ml_dtypes ones (bfloat16, float8_*, float4_*) that NumPy
    files under kind 'V'."""
    return dtype.kind == "f" or (dtype.kind == "V" and dtype.name.startswith(("bfloat", "float")))


def compute_dtype(dtype: np.dtype, *, non_float: Any = None) -> np.dtype:
    """The dtype a kernel computes in, before rounding back to its output dtype once.

    float32 and float64 compute as themselves, every narrower float (float16, bfloat16, float8, float4) in float32.
    Any other dtype (integers, bool, complex) computes as itself, or in ``non_float`` when given (kernels whose
    maths only exists in floats, such as attention and recurrent cells, pass ``np.float32``).
    """
    if is_float(dtype):
        return dtype if dtype in _WIDE_FLOATS else _FLOAT32
    return dtype if non_float is None else np.dtype(non_float)


def normalize_axis(axis: int, rank: int, op_name: str, *, extra: int = 0) -> int:
    """``axis`` in [-rank, rank - 1 + extra] as a non-negative index (``extra=1``: an axis may equal the rank, as
    Flatten's); a rank-0 input accepts axis 0. Out of range is an :class:`OpError` naming the op."""
    hi = rank - 1 + extra
    if not -rank <= axis <= max(hi, 0):
        raise OpError(f"{op_name}: axis {axis} is out of range for rank {rank}. Expected: [{-rank}, {max(hi, 0)}]")
    return axis + rank if axis < 0 else axis


def int_list(value: np.ndarray | None, name: str, op_name: str) -> list[int]:
    """A 0-d or 1-d integer tensor (an input such as ``axes`` or ``shape``) as a list of Python ints."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise OpError(f"{op_name}: input {name!r} must be an integer tensor. Received: {arr.dtype}")
    if arr.ndim > 1:
        raise OpError(f"{op_name}: input {name!r} must be 1-D. Received: shape {list(arr.shape)}")
    return [int(v) for v in arr.ravel()]
