"""Reductions and their kin: Reduce*, ArgMax/ArgMin, Softmax/LogSoftmax/Hardmax, CumSum/CumProd, TopK.

``Reduce*`` take their axes as an optional int64 INPUT (latest ONNX): omitted or empty reduces every axis, unless
``noop_with_empty_axes`` is 1, in which case no axis is reduced (the elementwise part still applies, e.g.
``ReduceSumSquare`` squares). A reduction over an empty set gives the operation's identity (0 for sums, 1 for
products, -inf for max and the log-sums, +inf for min). Narrow floats (float16, bfloat16, float8) accumulate in
float32; every result keeps the input dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from k5.errors import OpError
from k5.ops.common import compute_dtype, normalize_axis
from k5.ops.registry import op

Axes = int | tuple[int, ...] | None


def _work(x: np.ndarray) -> np.ndarray:
    """``x`` in a dtype fit to accumulate in: float32 for narrow floats, itself otherwise."""
    return x.astype(compute_dtype(x.dtype), copy=False)


def _axes(data: np.ndarray, axes: np.ndarray | None, noop: int, op_name: str) -> Axes:
    """The NumPy ``axis`` argument for an ONNX axes input: None = every axis, () = none."""
    if axes is None or np.asarray(axes).size == 0:
        return () if noop else None
    values = [int(a) for a in np.asarray(axes).ravel()]
    norm = tuple(normalize_axis(a, data.ndim, op_name) for a in values)
    if len(set(norm)) != len(norm):
        raise OpError(f"{op_name}: axes must be distinct. Received: axes={values}")
    return norm


def _reduce(name: str, body: Callable[[np.ndarray, Axes, bool], np.ndarray], doc: str) -> Callable[..., np.ndarray]:
    def kernel(
        data: np.ndarray, axes: np.ndarray | None = None, *, keepdims: int = 1, noop_with_empty_axes: int = 0
    ) -> np.ndarray:
        axis = _axes(data, axes, noop_with_empty_axes, name)
        with np.errstate(all="ignore"):
            out = body(_work(data), axis, bool(keepdims))
        return np.asarray(out).astype(data.dtype, copy=False)

    kernel.__name__ = kernel.__qualname__ = name[0].lower() + name[1:]
    kernel.__doc__ = doc
    return op(name, inputs=["data", "axes?"], outputs=["reduced"])(kernel)


def _identity_for(dtype: np.dtype, largest: bool) -> Any:
    """The identity of max (largest=False: the smallest value) or min (largest=True) for ``dtype``."""
    if dtype == np.bool_:
        return largest
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return info.max if largest else info.min
    return np.inf if largest else -np.inf


def _max(x: np.ndarray, axis: Axes, keepdims: bool) -> np.ndarray:
    return np.max(x, axis=axis, keepdims=keepdims, initial=_identity_for(x.dtype, False))


def _min(x: np.ndarray, axis: Axes, keepdims: bool) -> np.ndarray:
    return np.min(x, axis=axis, keepdims=keepdims, initial=_identity_for(x.dtype, True))


def _sum(x: np.ndarray, axis: Axes, keepdims: bool) -> np.ndarray:
    return np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype if x.dtype.kind in "iuf" else None)


def _mean(x: np.ndarray, axis: Axes, keepdims: bool) -> np.ndarray:
    if x.dtype.kind in "iu":
        return np.asarray(np.mean(x, axis=axis, keepdims=keepdims, dtype=np.float64))
    return np.asarray(np.mean(x, axis=axis, keepdims=keepdims))


def _wide(x: np.ndarray) -> np.ndarray:
    """Integers as float64, for reductions whose result is not an integer."""
    return x.astype(np.float64) if x.dtype.kind in "iub" else x


def _log_sum_exp(x: np.ndarray, axis: Axes, keepdims: bool) -> np.ndarray:
    x = _wide(x)
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis if axis is not None else tuple(range(x.ndim)))


_reduce("ReduceSum", _sum, "Sum over ``axes``.")
_reduce("ReduceMean", _mean, "Mean over ``axes`` (NaN over an empty set; integers truncate).")
_reduce("ReduceMax", _max, "Maximum over ``axes`` (-inf, or the type's minimum, over an empty set).")
_reduce("ReduceMin", _min, "Minimum over ``axes`` (+inf, or the type's maximum, over an empty set).")
_reduce("ReduceProd", lambda x, a, k: np.prod(x, axis=a, keepdims=k), "Product over ``axes``.")
_reduce("ReduceL1", lambda x, a, k: _sum(np.abs(x), a, k), "Sum of absolute values over ``axes``.")
_reduce("ReduceL2", lambda x, a, k: np.sqrt(_sum(_wide(x) ** 2, a, k)), "Square root of the sum of squares.")
_reduce(
    "ReduceLogSum",
    lambda x, a, k: np.log(_sum(_wide(x), a, k)),
    "Natural log of the sum over ``axes`` (-inf over an empty set).",
)
_reduce("ReduceLogSumExp", _log_sum_exp, "``log(sum(exp(x)))`` over ``axes``, computed without overflow.")
_reduce("ReduceSumSquare", lambda x, a, k: _sum(x * x, a, k), "Sum of squares over ``axes``.")


# --- arg reductions ------------------------------------------------------------------------------------------


def _arg(x: np.ndarray, axis: int, keepdims: int, select_last_index: int, fn: Callable[..., np.ndarray], name: str):
    ax = normalize_axis(axis, x.ndim, name)
    if x.ndim == 0:
        raise OpError(f"{name}: needs an input of rank >= 1. Received: a scalar")
    if x.shape[ax] == 0:
        raise OpError(f"{name}: axis {axis} has size 0; there is no index to return")
    w = _work(x)
    if select_last_index:
        idx = (x.shape[ax] - 1) - fn(np.flip(w, axis=ax), axis=ax, keepdims=bool(keepdims))
    else:
        idx = fn(w, axis=ax, keepdims=bool(keepdims))
    return np.asarray(idx, dtype=np.int64)


@op("ArgMax", inputs=["data"], outputs=["reduced"], out_dtype="int64")
def arg_max(data: np.ndarray, *, axis: int = 0, keepdims: int = 1, select_last_index: int = 0) -> np.ndarray:
    """Index (int64) of the largest value along ``axis``: the first one, or the last with ``select_last_index``."""
    return _arg(data, axis, keepdims, select_last_index, np.argmax, "ArgMax")


@op("ArgMin", inputs=["data"], outputs=["reduced"], out_dtype="int64")
def arg_min(data: np.ndarray, *, axis: int = 0, keepdims: int = 1, select_last_index: int = 0) -> np.ndarray:
    """Index (int64) of the smallest value along ``axis``: the first one, or the last with ``select_last_index``."""
    return _arg(data, axis, keepdims, select_last_index, np.argmin, "ArgMin")


# --- softmax family ------------------------------------------------------------------------------------------


@op("Softmax", inputs=["input"], outputs=["output"])
def softmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis`` (max-shifted, so it cannot overflow)."""
    ax = normalize_axis(axis, x.ndim, "Softmax")
    w = _work(x)
    with np.errstate(all="ignore"):
        e = np.exp(w - np.max(w, axis=ax, keepdims=True))
        return (e / np.sum(e, axis=ax, keepdims=True)).astype(x.dtype, copy=False)


@op("LogSoftmax", inputs=["input"], outputs=["output"])
def log_softmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """``x - log(sum(exp(x)))`` along ``axis`` (max-shifted)."""
    ax = normalize_axis(axis, x.ndim, "LogSoftmax")
    w = _work(x)
    with np.errstate(all="ignore"):
        shifted = w - np.max(w, axis=ax, keepdims=True)
        return (shifted - np.log(np.sum(np.exp(shifted), axis=ax, keepdims=True))).astype(x.dtype, copy=False)


@op("Hardmax", inputs=["input"], outputs=["output"])
def hardmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """1 at the first maximum along ``axis``, 0 elsewhere, in the input dtype."""
    ax = normalize_axis(axis, x.ndim, "Hardmax")
    out = np.zeros(x.shape, dtype=x.dtype)
    if x.size:
        idx = np.argmax(_work(x), axis=ax, keepdims=True)
        np.put_along_axis(out, idx, np.ones((), dtype=x.dtype), axis=ax)
    return out


# --- cumulative ops ------------------------------------------------------------------------------------------


def _cumulative(
    x: np.ndarray, axis: np.ndarray, exclusive: int, reverse: int, fn: Callable[..., np.ndarray], unit: int, name: str
) -> np.ndarray:
    a = np.asarray(axis)
    if a.size != 1 or a.dtype.kind not in "iu":
        raise OpError(f"{name}: 'axis' must be one integer. Received: {a.dtype}{list(a.shape)}")
    ax = normalize_axis(int(a.reshape(())), x.ndim, name)
    w = _work(x)
    if reverse:
        w = np.flip(w, axis=ax)
    acc = fn(w, axis=ax, dtype=w.dtype)
    if exclusive:
        head = np.full_like(np.take(acc, [0], axis=ax), unit) if x.shape[ax] else acc[:0]
        acc = np.concatenate([head, np.take(acc, np.arange(x.shape[ax] - 1), axis=ax)], axis=ax)
    if reverse:
        acc = np.flip(acc, axis=ax)
    return np.ascontiguousarray(acc).astype(x.dtype, copy=False)


@op("CumSum", inputs=["x", "axis"], outputs=["y"])
def cum_sum(x: np.ndarray, axis: np.ndarray, *, exclusive: int = 0, reverse: int = 0) -> np.ndarray:
    """Running sum along ``axis`` (a 0-d or 1-element int tensor); ``exclusive`` leaves the current element out,
    ``reverse`` runs from the end."""
    return _cumulative(x, axis, exclusive, reverse, np.cumsum, 0, "CumSum")


@op("CumProd", inputs=["x", "axis"], outputs=["y"])
def cum_prod(x: np.ndarray, axis: np.ndarray, *, exclusive: int = 0, reverse: int = 0) -> np.ndarray:
    """Running product along ``axis``; ``exclusive`` and ``reverse`` as in CumSum."""
    return _cumulative(x, axis, exclusive, reverse, np.cumprod, 1, "CumProd")


# --- TopK ----------------------------------------------------------------------------------------------------


@op("TopK", inputs=["X", "K"], outputs=["Values", "Indices"], out_dtype=("same", "int64"))
def top_k(
    x: np.ndarray, k: np.ndarray, *, axis: int = -1, largest: int = 1, sorted: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """The ``K`` largest (or smallest) values along ``axis`` and their int64 indices, in sorted order; equal
    values keep their index order (the lower index first)."""
    kk = np.asarray(k)
    if kk.size != 1:
        raise OpError(f"TopK: 'K' must hold one value. Received: shape {list(kk.shape)}")
    kv = int(kk.reshape(()))
    ax = normalize_axis(axis, x.ndim, "TopK")
    n = x.shape[ax]
    if not 0 <= kv <= n:
        raise OpError(f"TopK: K must be in [0, {n}] (the size of axis {axis}). Received: K={kv}")
    w = _work(x)
    if largest:
        # stable ascending sort of the reversed axis, read backwards: descending, ties by lower index first
        order = np.argsort(np.flip(w, axis=ax), axis=ax, kind="stable")
        order = (n - 1) - np.flip(order, axis=ax)
    else:
        order = np.argsort(w, axis=ax, kind="stable")
    idx = np.take(order, np.arange(kv), axis=ax).astype(np.int64)
    return np.take_along_axis(x, idx, axis=ax), idx
