"""Normalization layers: batch, layer, group, instance, RMS, Lp, mean-variance, LRN.

Statistics of half-precision inputs are computed in float32 (``stash_type=1``, ONNX's default) and the result is
cast back to the input dtype.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from k5.errors import OpError
from k5.format.dtypes import from_numpy
from k5.ops.registry import op

#: ONNX stash_type (a TensorProto element type) -> NumPy dtype for statistics
_STASH: dict[int, np.dtype] = {1: np.dtype(np.float32), 11: np.dtype(np.float64), 10: np.dtype(np.float16)}


def _stats_dtype(dtype: np.dtype, stash_type: int = 1) -> np.dtype:
    if stash_type == 16:  # bfloat16
        import ml_dtypes

        stash = np.dtype(ml_dtypes.bfloat16)
    else:
        try:
            stash = _STASH[stash_type]
        except KeyError:
            msg = f"attribute 'stash_type' expects 1, 10, 11 or 16. Received: stash_type={stash_type}"
            raise OpError(msg) from None
    # never compute with less precision than the input has, nor in half precision
    if dtype == np.float64:
        return dtype
    return stash if stash.itemsize >= 4 else np.dtype(np.float32)


def _channel_shape(what: str, name: str, v: np.ndarray | None, C: int, rank: int) -> np.ndarray | None:
    return None if v is None else _per_channel(what, name, v, C, rank)


def _per_channel(what: str, name: str, v: np.ndarray, C: int, rank: int) -> np.ndarray:
    if v.size != C:
        raise OpError(f"{what}: {name} expects {C} values (one per channel). Received: shape {list(v.shape)}")
    return v.reshape((C,) + (1,) * (rank - 2))


def _check_nc(what: str, x: np.ndarray) -> None:
    if x.ndim < 2:
        raise OpError(f"{what} expects X [N, C, ...]. Received: shape {list(x.shape)}")


@op(
    "BatchNormalization",
    inputs=["X", "@scale", "@bias", "@mean", "@var"],
    outputs=["Y", "running_mean?", "running_var?"],
)
def batch_normalization(
    x: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    *,
    epsilon: float = 1e-5,
    momentum: float = 0.9,
    training_mode: int = 0,
) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Y = scale * (X - mean) / sqrt(var + epsilon) + bias`` per channel (axis 1).

    Inference (``training_mode=0``): the given running statistics; one output. ``training_mode=1``: the batch's
    own mean and (biased) variance over every axis but 1, and the outputs ``running_mean = mean * momentum +
    batch_mean * (1 - momentum)``, likewise ``running_var``.
    """
    what = "BatchNormalization"
    _check_nc(what, x)
    C = x.shape[1]
    ct = _stats_dtype(x.dtype)
    xc = x.astype(ct, copy=False)
    s, b, m, v = (_per_channel(what, n, a.astype(ct, copy=False), C, x.ndim)
                  for n, a in (("scale", scale), ("bias", bias), ("mean", mean), ("var", var)))  # fmt: skip
    if not training_mode:
        factor = s / np.sqrt(v + ct.type(epsilon))
        return np.asarray(xc * factor + (b - m * factor), dtype=x.dtype)
    axes = (0, *range(2, x.ndim))
    bm = xc.mean(axis=axes, keepdims=True)
    bv = xc.var(axis=axes, keepdims=True)
    y = (xc - bm) * (s / np.sqrt(bv + ct.type(epsilon))) + b
    run_mean = (m * momentum + bm * (1 - momentum)).reshape(mean.shape)
    run_var = (v * momentum + bv * (1 - momentum)).reshape(var.shape)
    return np.asarray(y, dtype=x.dtype), run_mean.astype(mean.dtype), run_var.astype(var.dtype)


def _normalize_from(
    what: str, x: np.ndarray, axis: int, epsilon: float, stash_type: int, center: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.dtype]:
    """(normalized X, mean, 1/std) over the axes ``axis..``, statistics keeping dims, in the stats dtype."""
    if not -x.ndim <= axis < x.ndim:
        raise OpError(f"{what}: attribute 'axis' must be in [{-x.ndim}, {x.ndim - 1}]. Received: axis={axis}")
    axis %= x.ndim
    axes = tuple(range(axis, x.ndim))
    ct = _stats_dtype(x.dtype, stash_type)
    xc = x.astype(ct, copy=False)
    if center:
        mean = xc.mean(axis=axes, keepdims=True)
        d = xc - mean
        var = np.mean(d * d, axis=axes, keepdims=True)
    else:
        mean = np.zeros((1,) * x.ndim, dtype=ct)
        d = xc
        var = np.mean(d * d, axis=axes, keepdims=True)
    inv = 1.0 / np.sqrt(var + ct.type(epsilon))
    return d * inv, mean, inv.astype(ct), ct


def _stash_out(stash_type: int) -> np.dtype:
    """The dtype of LayerNormalization's Mean and InvStdDev outputs."""
    return _STASH.get(stash_type, np.dtype(np.float32))


def _stash_rule(dtypes: Sequence[str | None], attrs: Mapping[str, Any]) -> str | None:
    """stash_type (float32 by default)"""
    return from_numpy(_stash_out(attrs["stash_type"]))


@op(
    "LayerNormalization",
    inputs=["X", "@scale", "@bias?"],
    outputs=["Y", "Mean?", "InvStdDev?"],
    out_dtype=("same", _stash_rule, _stash_rule),
)
def layer_normalization(
    x: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray | None,
    *,
    axis: int = -1,
    epsilon: float = 1e-5,
    stash_type: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalize over the axes ``axis..`` (mean 0, variance 1), then ``* scale + bias`` (broadcast to those axes).

    ``Mean`` and ``InvStdDev`` keep X's rank with the normalized axes of size 1, in the ``stash_type`` dtype
    (float32 by default).
    """
    y, mean, inv, ct = _normalize_from("LayerNormalization", x, axis, epsilon, stash_type, center=True)
    y = y * scale.astype(ct, copy=False)
    if bias is not None:
        y = y + bias.astype(ct, copy=False)
    out_stats = _stash_out(stash_type)
    return np.asarray(y, dtype=x.dtype), mean.astype(out_stats), inv.astype(out_stats)


@op("RMSNormalization", inputs=["X", "@scale"], outputs=["Y"])
def rms_normalization(
    x: np.ndarray, scale: np.ndarray, *, axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1
) -> np.ndarray:
    """``Y = X / sqrt(mean(X^2 over axes axis..) + epsilon) * scale``."""
    y, _, _, ct = _normalize_from("RMSNormalization", x, axis, epsilon, stash_type, center=False)
    return np.asarray(y * scale.astype(ct, copy=False), dtype=x.dtype)


@op("GroupNormalization", inputs=["X", "@scale", "@bias"], outputs=["Y"])
def group_normalization(
    x: np.ndarray, scale: np.ndarray, bias: np.ndarray, *, epsilon: float = 1e-5, num_groups: int, stash_type: int = 1
) -> np.ndarray:
    """Split the C channels into ``num_groups`` groups; normalize each group of each sample over its channels and
    spatial positions; then ``* scale + bias`` per channel (``scale``, ``bias`` ``[C]``, ONNX opset 21)."""
    what = "GroupNormalization"
    _check_nc(what, x)
    N, C = x.shape[:2]
    if num_groups < 1 or C % num_groups:
        raise OpError(f"{what}: {C} channels are not divisible into num_groups={num_groups}")
    xg = x.reshape(N, num_groups, -1)
    y, _, _, ct = _normalize_from(what, xg, 2, epsilon, stash_type, center=True)
    y = y.reshape(x.shape)
    s = _channel_shape(what, "scale", scale.astype(ct, copy=False), C, x.ndim)
    b = _channel_shape(what, "bias", bias.astype(ct, copy=False), C, x.ndim)
    return np.asarray(y * s + b, dtype=x.dtype)


@op("InstanceNormalization", inputs=["X", "@scale", "@bias"], outputs=["Y"])
def instance_normalization(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, *, epsilon: float = 1e-5) -> np.ndarray:
    """Normalize each channel of each sample over its spatial positions, then ``* scale + bias`` per channel."""
    what = "InstanceNormalization"
    _check_nc(what, x)
    C = x.shape[1]
    xs = x.reshape(*x.shape[:2], -1)
    y, _, _, ct = _normalize_from(what, xs, 2, epsilon, 1, center=True)
    y = y.reshape(x.shape)
    s = _channel_shape(what, "scale", scale.astype(ct, copy=False), C, x.ndim)
    b = _channel_shape(what, "bias", bias.astype(ct, copy=False), C, x.ndim)
    return np.asarray(y * s + b, dtype=x.dtype)


@op("LpNormalization", inputs=["X"], outputs=["Y"])
def lp_normalization(x: np.ndarray, *, axis: int = -1, p: int = 2) -> np.ndarray:
    """``X / ||X||_p`` along ``axis`` (p is 1 or 2); a zero norm gives 0."""
    if p not in (1, 2):
        raise OpError(f"LpNormalization: attribute 'p' expects 1 or 2. Received: p={p}")
    if not -x.ndim <= axis < x.ndim:
        raise OpError(f"LpNormalization: attribute 'axis' must be in [{-x.ndim}, {x.ndim - 1}]. Received: axis={axis}")
    ct = _stats_dtype(x.dtype)
    xc = x.astype(ct, copy=False)
    if p == 1:
        norm = np.sum(np.abs(xc), axis=axis, keepdims=True)
    else:
        norm = np.sqrt(np.sum(xc * xc, axis=axis, keepdims=True))
    safe = np.where(norm == 0, 1, norm)
    return np.asarray(np.where(norm == 0, 0, xc / safe), dtype=x.dtype)


@op("MeanVarianceNormalization", inputs=["X"], outputs=["Y"])
def mean_variance_normalization(x: np.ndarray, *, axes: list[int] | None = None) -> np.ndarray:
    """``(X - mean) / (sqrt(E[X^2] - E[X]^2) + 1e-9)`` over ``axes`` (default ``[0, 2, 3]``), as ONNX's function."""
    axes = [0, 2, 3] if axes is None else axes
    if any(not -x.ndim <= a < x.ndim for a in axes):
        raise OpError(f"MeanVarianceNormalization: axes {axes} out of range for rank {x.ndim}")
    ax = tuple(a % x.ndim for a in axes)
    ct = _stats_dtype(x.dtype)
    xc = x.astype(ct, copy=False)
    mean = xc.mean(axis=ax, keepdims=True)
    var = np.maximum(np.mean(xc * xc, axis=ax, keepdims=True) - mean * mean, 0)
    return np.asarray((xc - mean) / (np.sqrt(var) + ct.type(1e-9)), dtype=x.dtype)


@op("LRN", inputs=["X"], outputs=["Y"])
def lrn(x: np.ndarray, *, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0, size: int) -> np.ndarray:
    """Local response normalization across channels: ``Y = X / (bias + alpha/size * S) ^ beta`` where ``S`` sums
    ``X^2`` over channels ``[c - floor((size-1)/2), c + ceil((size-1)/2)]`` (clipped to the valid range)."""
    _check_nc("LRN", x)
    if size < 1:
        raise OpError(f"LRN: attribute 'size' must be >= 1. Received: size={size}")
    ct = _stats_dtype(x.dtype)
    xc = x.astype(ct, copy=False)
    lo, hi = math.floor((size - 1) / 2), math.ceil((size - 1) / 2)
    sq = xc * xc
    # a running sum over channels: S[c] = cs[c + hi + 1] - cs[c - lo] with the cumulative sum zero-padded
    cs = np.cumsum(sq, axis=1)
    pad = [(0, 0)] * x.ndim
    pad[1] = (lo + 1, hi)
    cs = np.pad(cs, pad, mode="edge")
    cs[:, : lo + 1] = 0
    C = x.shape[1]
    s = cs[:, lo + hi + 1 : lo + hi + 1 + C] - cs[:, :C]
    return np.asarray(xc / (ct.type(bias) + ct.type(alpha / size) * s) ** ct.type(beta), dtype=x.dtype)
