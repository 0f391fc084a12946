"""Shape and data-movement ops: reshape, transpose, slice, gather, scatter, concat, split, pad, constants...

Shapes, axes, indices and repeats arrive as int64 tensors (inputs), as in the latest ONNX opset. Negative axes count
from the end; negative indices from the end of their axis. Ops that only re-view their input (Reshape, Transpose,
Squeeze, ...) may return a view of it; none writes to its inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from k5.errors import OpError
from k5.format.dtypes import dtype_of
from k5.ops.common import int_list, normalize_axis
from k5.ops.registry import op

# --- helpers -------------------------------------------------------------------------------------------------


def _scalar(value: np.ndarray, name: str, op_name: str) -> Any:
    arr = np.asarray(value)
    if arr.size != 1:
        raise OpError(f"{op_name}: input {name!r} must hold one value. Received: shape {list(arr.shape)}")
    return arr.reshape(()).item()


def _indices(indices: np.ndarray, size: int, op_name: str, what: str = "indices") -> np.ndarray:
    """Integer indices into an axis of ``size``, negatives wrapped; out-of-range ones are an error."""
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise OpError(f"{op_name}: {what} must be integers. Received: {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    bad = (idx < -size) | (idx >= size)
    if np.any(bad):
        raise OpError(
            f"{op_name}: {what} out of range [{-size}, {size - 1}]. Received: {idx[bad].ravel()[:5].tolist()}"
        )
    return np.where(idx < 0, idx + size, idx)


# --- constants and shapes ------------------------------------------------------------------------------------


@op("Constant", inputs=["@value"], outputs=["output"])
def constant(value: np.ndarray) -> np.ndarray:
    """A stored tensor (the node's weight ``value``)."""
    return value


@op("ConstantOfShape", inputs=["input", "@value?"], outputs=["output"], out_dtype="same:value|float32")
def constant_of_shape(shape: np.ndarray, value: np.ndarray | None = None) -> np.ndarray:
    """A tensor of shape ``input`` (1-D int64) filled with the one-element weight ``value`` (float32 0 if absent)."""
    dims = int_list(shape, "input", "ConstantOfShape")
    if any(d < 0 for d in dims):
        raise OpError(f"ConstantOfShape: dimensions must be >= 0. Received: {dims}")
    fill = np.zeros((), dtype=np.float32) if value is None else np.asarray(value)
    if fill.size != 1:
        raise OpError(f"ConstantOfShape: 'value' must hold one element. Received: shape {list(fill.shape)}")
    return np.full(dims, fill.reshape(()), dtype=fill.dtype)


@op("Shape", inputs=["data"], outputs=["shape"], out_dtype="int64")
def shape(data: np.ndarray, *, start: int = 0, end: int | None = None) -> np.ndarray:
    """The shape of ``data`` as int64, dims ``[start:end]`` (negative counts from the end, clamped to the rank)."""
    rank = np.ndim(data)
    s, e = start, rank if end is None else end
    s = min(max(s + rank if s < 0 else s, 0), rank)
    e = min(max(e + rank if e < 0 else e, 0), rank)
    return np.asarray(np.shape(data)[s:e], dtype=np.int64).reshape(-1)


@op("Size", inputs=["data"], outputs=["size"], out_dtype="int64")
def size(data: np.ndarray) -> np.ndarray:
    """The number of elements of ``data``, as a 0-d int64."""
    return np.asarray(np.size(data), dtype=np.int64)


# --- re-viewing ops ------------------------------------------------------------------------------------------


@op("Reshape", inputs=["data", "shape"], outputs=["reshaped"])
def reshape(data: np.ndarray, shape: np.ndarray, *, allowzero: int = 0) -> np.ndarray:
    """``data`` with a new shape; -1 infers one dimension, 0 copies the input's dimension (unless ``allowzero``,
    where 0 is a real zero)."""
    dims = int_list(shape, "shape", "Reshape")
    if dims.count(-1) > 1:
        raise OpError(f"Reshape: at most one dimension may be -1. Received: shape={dims}")
    if allowzero and 0 in dims and -1 in dims:
        raise OpError(f"Reshape: with allowzero=1, shape cannot hold both 0 and -1. Received: shape={dims}")
    out = []
    for i, d in enumerate(dims):
        if d == 0 and not allowzero:
            if i >= data.ndim:
                raise OpError(f"Reshape: shape[{i}] = 0 copies a dimension that a rank-{data.ndim} input lacks")
            d = data.shape[i]
        elif d < -1:
            raise OpError(f"Reshape: dimensions must be >= -1. Received: shape={dims}")
        out.append(d)
    try:
        return np.reshape(data, out)
    except ValueError:
        raise OpError(f"Reshape: cannot reshape {list(data.shape)} ({data.size} elements) to {dims}") from None


@op("Transpose", inputs=["data"], outputs=["transposed"])
def transpose(data: np.ndarray, *, perm: list[int] | None = None) -> np.ndarray:
    """Axes permuted by ``perm`` (reversed if absent)."""
    if perm is None:
        return np.transpose(data)
    if sorted(p % max(data.ndim, 1) for p in perm) != list(range(data.ndim)):
        raise OpError(f"Transpose: perm must be a permutation of 0..{data.ndim - 1}. Received: perm={perm}")
    return np.transpose(data, perm)


@op("Flatten", inputs=["input"], outputs=["output"])
def flatten(x: np.ndarray, *, axis: int = 1) -> np.ndarray:
    """A 2-D view: dims before ``axis`` become rows, the rest columns (``axis`` in [-rank, rank])."""
    ax = normalize_axis(axis, x.ndim, "Flatten", extra=1)
    rows = int(np.prod(x.shape[:ax], dtype=np.int64))
    return np.reshape(x, (rows, int(np.prod(x.shape[ax:], dtype=np.int64))))


@op("Squeeze", inputs=["data", "axes?"], outputs=["squeezed"])
def squeeze(data: np.ndarray, axes: np.ndarray | None = None) -> np.ndarray:
    """``data`` without the size-1 dims listed in ``axes`` (every size-1 dim if absent)."""
    if axes is None:
        return np.squeeze(data)
    ax = tuple(normalize_axis(a, data.ndim, "Squeeze") for a in int_list(axes, "axes", "Squeeze"))
    bad = [a for a in ax if data.shape[a] != 1]
    if bad:
        raise OpError(f"Squeeze: axes {bad} of shape {list(data.shape)} do not have size 1")
    return np.squeeze(data, axis=ax)


@op("Unsqueeze", inputs=["data", "axes"], outputs=["expanded"])
def unsqueeze(data: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """``data`` with size-1 dims inserted at ``axes`` (indices in the output's rank)."""
    values = int_list(axes, "axes", "Unsqueeze")
    rank = data.ndim + len(values)
    ax = tuple(normalize_axis(a, rank, "Unsqueeze") for a in values)
    if len(set(ax)) != len(ax):
        raise OpError(f"Unsqueeze: axes must be distinct. Received: axes={values}")
    return np.expand_dims(data, ax)


# --- joining and splitting -----------------------------------------------------------------------------------


@op("Concat", inputs=["inputs*"], outputs=["concat_result"])
def concat(*inputs: np.ndarray, axis: int) -> np.ndarray:
    """The inputs joined along ``axis``."""
    if not inputs:
        raise OpError("Concat: needs at least one input")
    ax = normalize_axis(axis, inputs[0].ndim, "Concat")
    try:
        return np.concatenate(inputs, axis=ax)
    except ValueError:
        shapes = [list(i.shape) for i in inputs]
        raise OpError(f"Concat: shapes {shapes} differ outside axis {axis}") from None


@op("Split", inputs=["input", "split?"], outputs=["outputs*"])
def split(
    x: np.ndarray, split: np.ndarray | None = None, *, axis: int = 0, num_outputs: int | None = None
) -> tuple[np.ndarray, ...]:
    """``input`` cut along ``axis`` into pieces of the sizes ``split``, or into ``num_outputs`` pieces of
    ``ceil(dim / num_outputs)`` (the last one smaller)."""
    ax = normalize_axis(axis, x.ndim, "Split")
    dim = x.shape[ax]
    if split is not None and np.asarray(split).size:
        sizes = int_list(split, "split", "Split")
        if sum(sizes) != dim or any(s < 0 for s in sizes):
            raise OpError(f"Split: sizes must be >= 0 and sum to {dim} (axis {axis}). Received: split={sizes}")
    elif num_outputs:
        chunk = -(-dim // num_outputs)
        sizes = [chunk] * (num_outputs - 1) + [dim - chunk * (num_outputs - 1)]
        if sizes[-1] < 0:
            raise OpError(f"Split: axis {axis} of size {dim} cannot be cut into {num_outputs} ceil-sized pieces")
    else:
        raise OpError("Split: needs the 'split' input or the 'num_outputs' attribute")
    bounds = np.cumsum(sizes)[:-1]
    return tuple(np.split(x, bounds, axis=ax))


@op("Slice", inputs=["data", "starts", "ends", "axes?", "steps?"], outputs=["output"])
def slice_(
    data: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    axes: np.ndarray | None = None,
    steps: np.ndarray | None = None,
) -> np.ndarray:
    """``data[starts:ends:steps]`` on ``axes`` (all leading axes if absent); out-of-range bounds are clamped as
    Python slices do."""
    s = int_list(starts, "starts", "Slice")
    e = int_list(ends, "ends", "Slice")
    a = list(range(len(s))) if axes is None else int_list(axes, "axes", "Slice")
    st = [1] * len(s) if steps is None else int_list(steps, "steps", "Slice")
    if not len(s) == len(e) == len(a) == len(st):
        raise OpError(f"Slice: starts, ends, axes and steps differ in length: {len(s)}, {len(e)}, {len(a)}, {len(st)}")
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(s, e, a, st, strict=True):
        if step == 0:
            raise OpError("Slice: steps cannot be 0")
        index[normalize_axis(axis, data.ndim, "Slice")] = slice(start, end, step)
    return data[tuple(index)]


# --- gather and scatter --------------------------------------------------------------------------------------


@op("Gather", inputs=["data", "indices"], outputs=["output"])
def gather(data: np.ndarray, indices: np.ndarray, *, axis: int = 0) -> np.ndarray:
    """Slices of ``data`` along ``axis`` picked by ``indices``; the output shape is
    ``data.shape[:axis] + indices.shape + data.shape[axis+1:]``."""
    ax = normalize_axis(axis, data.ndim, "Gather")
    return np.take(data, _indices(indices, data.shape[ax], "Gather"), axis=ax)


@op("GatherElements", inputs=["data", "indices"], outputs=["output"])
def gather_elements(data: np.ndarray, indices: np.ndarray, *, axis: int = 0) -> np.ndarray:
    """``out[i][j][k] = data[indices[i][j][k]][j][k]`` for axis 0 (and likewise for other axes)."""
    ax = normalize_axis(axis, data.ndim, "GatherElements")
    if np.ndim(indices) != data.ndim:
        raise OpError(f"GatherElements: indices must have the rank of data ({data.ndim}). Received: {np.ndim(indices)}")
    return np.take_along_axis(data, _indices(indices, data.shape[ax], "GatherElements"), axis=ax)


@op("GatherND", inputs=["data", "indices"], outputs=["output"])
def gather_nd(data: np.ndarray, indices: np.ndarray, *, batch_dims: int = 0) -> np.ndarray:
    """Slices of ``data`` addressed by the last dimension of ``indices`` (of length m); the first ``batch_dims``
    dims of both are a shared batch. Output: ``indices.shape[:-1] + data.shape[batch_dims + m:]``."""
    idx = np.asarray(indices).astype(np.int64, copy=False)
    b = batch_dims
    m = idx.shape[-1] if idx.ndim else 0
    if idx.ndim < 1 or b + m > data.ndim or data.shape[:b] != idx.shape[:b]:
        raise OpError(
            f"GatherND: indices {list(idx.shape)} do not fit data {list(data.shape)} with batch_dims={batch_dims}"
        )
    batch = int(np.prod(data.shape[:b], dtype=np.int64))
    flat_data = data.reshape((batch, *data.shape[b:]))
    flat_idx = idx.reshape((batch, -1, m))
    coords = [_indices(flat_idx[..., j], data.shape[b + j], "GatherND") for j in range(m)]
    picked = flat_data[(np.arange(batch)[:, None], *coords)]
    return picked.reshape(idx.shape[:-1] + data.shape[b + m :])


_REDUCTIONS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _scatter(out: np.ndarray, where: tuple[np.ndarray, ...], updates: np.ndarray, reduction: str, name: str) -> None:
    if reduction == "none":
        out[where] = updates
        return
    fn = _REDUCTIONS.get(reduction)
    if fn is None:
        raise OpError(f"{name}: reduction must be one of none, {', '.join(_REDUCTIONS)}. Received: {reduction!r}")
    fn.at(out, where, updates)


def _scatter_elements(data, indices, updates, axis: int, reduction: str, name: str) -> np.ndarray:
    ax = normalize_axis(axis, data.ndim, name)
    idx = np.asarray(indices)
    if idx.shape != np.shape(updates) or idx.ndim != data.ndim:
        raise OpError(
            f"{name}: indices {list(idx.shape)} and updates {list(np.shape(updates))} must have one shape, "
            f"of the rank of data {list(data.shape)}"
        )
    grids: list[Any] = list(np.indices(idx.shape, sparse=True))
    grids[ax] = _indices(idx, data.shape[ax], name)
    out = np.array(data, copy=True)
    _scatter(out, tuple(grids), np.asarray(updates, dtype=data.dtype), reduction, name)
    return out


@op("ScatterElements", inputs=["data", "indices", "updates"], outputs=["output"])
def scatter_elements(
    data: np.ndarray, indices: np.ndarray, updates: np.ndarray, *, axis: int = 0, reduction: str = "none"
) -> np.ndarray:
    """A copy of ``data`` where ``out[indices[i][j]][j] = updates[i][j]`` (axis 0), or combined with ``reduction``
    (add, mul, max, min)."""
    return _scatter_elements(data, indices, updates, axis, reduction, "ScatterElements")


@op("Scatter", inputs=["data", "indices", "updates"], outputs=["output"])
def scatter(data: np.ndarray, indices: np.ndarray, updates: np.ndarray, *, axis: int = 0) -> np.ndarray:
    """Deprecated alias of ScatterElements without reduction."""
    return _scatter_elements(data, indices, updates, axis, "none", "Scatter")


@op("ScatterND", inputs=["data", "indices", "updates"], outputs=["output"])
def scatter_nd(data: np.ndarray, indices: np.ndarray, updates: np.ndarray, *, reduction: str = "none") -> np.ndarray:
    """A copy of ``data`` whose slices addressed by the last dimension of ``indices`` are set to ``updates`` (or
    combined with ``reduction``: add, mul, max, min)."""
    idx = np.asarray(indices)
    m = idx.shape[-1] if idx.ndim else 0
    want = idx.shape[:-1] + data.shape[m:]
    if idx.ndim < 1 or m > data.ndim or np.shape(updates) != want:
        raise OpError(
            f"ScatterND: updates must have shape {list(want)} for indices {list(idx.shape)} and data "
            f"{list(data.shape)}. Received: {list(np.shape(updates))}"
        )
    where = tuple(_indices(idx[..., j], data.shape[j], "ScatterND") for j in range(m))
    out = np.array(data, copy=True)
    _scatter(out, where, np.asarray(updates, dtype=data.dtype), reduction, "ScatterND")
    return out


@op("TensorScatter", inputs=["past_cache", "update", "write_indices?"], outputs=["present_cache"])
def tensor_scatter(
    past_cache: np.ndarray, update: np.ndarray, write_indices: np.ndarray | None = None, *, axis: int = -2,
    mode: str = "linear",
) -> np.ndarray:  # fmt: skip
    """A copy of ``past_cache`` with ``update`` written along the sequence ``axis`` from ``write_indices[b]`` (0 if
    absent) for each batch entry b; ``mode="circular"`` wraps positions modulo the cache length."""
    ax = normalize_axis(axis, past_cache.ndim, "TensorScatter")
    if ax == 0:
        raise OpError("TensorScatter: axis cannot be 0 (the batch dimension)")
    if mode not in ("linear", "circular"):
        raise OpError(f"TensorScatter: mode must be 'linear' or 'circular'. Received: {mode!r}")
    n, cap, seq = past_cache.shape[0], past_cache.shape[ax], update.shape[ax]
    starts = np.zeros(n, np.int64) if write_indices is None else np.asarray(write_indices, np.int64).reshape(n)
    pos = starts[:, None] + np.arange(seq)[None, :]
    if mode == "circular":
        pos %= max(cap, 1)
    elif seq and (np.any(pos < 0) or np.any(pos >= cap)):
        raise OpError(f"TensorScatter: linear writes go past the cache length {cap}: write_indices={starts.tolist()}")
    out = np.array(past_cache, copy=True)
    view = np.moveaxis(out, ax, -1)
    upd = np.moveaxis(np.asarray(update, dtype=out.dtype), ax, -1)
    pos = pos.reshape((n,) + (1,) * (upd.ndim - 2) + (seq,))
    np.put_along_axis(view, np.broadcast_to(pos, upd.shape), upd, axis=-1)
    return out


# --- padding, tiling, broadcasting ---------------------------------------------------------------------------


@op("Pad", inputs=["data", "pads", "constant_value?", "axes?"], outputs=["output"])
def pad(
    data: np.ndarray,
    pads: np.ndarray,
    constant_value: np.ndarray | None = None,
    axes: np.ndarray | None = None,
    *,
    mode: str = "constant",
) -> np.ndarray:
    """``data`` padded by ``pads`` = [begin_0, begin_1, ..., end_0, end_1, ...] on ``axes`` (all if absent); negative
    pads crop. ``mode``: constant (``constant_value``, default 0), reflect, edge or wrap."""
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise OpError(f"Pad: mode must be constant, reflect, edge or wrap. Received: mode={mode!r}")
    p = int_list(pads, "pads", "Pad")
    ax = (
        list(range(data.ndim))
        if axes is None
        else [normalize_axis(a, data.ndim, "Pad") for a in int_list(axes, "axes", "Pad")]
    )
    if len(p) != 2 * len(ax):
        raise OpError(f"Pad: pads needs 2 values per padded axis ({2 * len(ax)}). Received: {len(p)} values")
    width = [(0, 0)] * data.ndim
    crop = [slice(None)] * data.ndim
    for i, a in enumerate(ax):
        begin, end = p[i], p[len(ax) + i]
        crop[a] = slice(max(-begin, 0), data.shape[a] - max(-end, 0))
        width[a] = (max(begin, 0), max(end, 0))
    x = data[tuple(crop)]
    if mode == "constant":
        fill = 0 if constant_value is None or np.asarray(constant_value).size == 0 else constant_value
        value = np.asarray(fill).reshape(()).astype(data.dtype)
        return np.pad(x, width, mode="constant", constant_values=value)
    if x.size == 0 and any(w != (0, 0) for w in width):
        raise OpError(f"Pad: mode {mode!r} cannot pad an empty tensor of shape {list(x.shape)}")
    pad_mode: Any = mode  # one of NumPy's modes, checked above
    return np.pad(x, width, mode=pad_mode)


@op("Expand", inputs=["input", "shape"], outputs=["output"])
def expand(x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """``input`` broadcast with ``shape`` (both ways, as NumPy broadcasting: a 1 in ``shape`` keeps the input's dim)."""
    dims = int_list(shape, "shape", "Expand")
    try:
        out_shape = np.broadcast_shapes(x.shape, tuple(dims))
    except ValueError:
        raise OpError(f"Expand: input shape {list(x.shape)} does not broadcast with {dims}") from None
    return np.broadcast_to(x, out_shape).copy()


@op("Tile", inputs=["input", "repeats"], outputs=["output"])
def tile(x: np.ndarray, repeats: np.ndarray) -> np.ndarray:
    """``input`` repeated ``repeats[i]`` times along each axis i."""
    reps = int_list(repeats, "repeats", "Tile")
    if len(reps) != x.ndim or any(r < 0 for r in reps):
        raise OpError(f"Tile: repeats needs {x.ndim} values >= 0. Received: {reps}")
    return np.tile(x, reps)


# --- generators ----------------------------------------------------------------------------------------------


@op("Range", inputs=["start", "limit", "delta"], outputs=["output"])
def range_(start: np.ndarray, limit: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``start, start + delta, ...`` while below ``limit`` (above it for a negative delta), of ``start``'s dtype:
    ``max(ceil((limit - start) / delta), 0)`` elements."""
    dtype = np.asarray(start).dtype
    s, lim, d = (_scalar(v, n, "Range") for v, n in ((start, "start"), (limit, "limit"), (delta, "delta")))
    if d == 0:
        raise OpError("Range: delta cannot be 0")
    if isinstance(s, int) and isinstance(lim, int) and isinstance(d, int):
        n = max(-((s - lim) // d), 0)  # exact ceil((limit - start) / delta) for integers
    else:
        n = max(int(np.ceil((lim - s) / d)), 0)
    return (np.asarray(s, dtype=dtype) + np.arange(n, dtype=dtype) * np.asarray(d, dtype=dtype)).astype(dtype)


@op("OneHot", inputs=["indices", "depth", "values"], outputs=["output"], out_dtype="same:values")
def one_hot(indices: np.ndarray, depth: np.ndarray, values: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """``values[1]`` where the new ``axis`` equals ``indices`` (negatives wrap once), ``values[0]`` elsewhere.
    Indices outside [-depth, depth) give an all-off row."""
    d = int(_scalar(depth, "depth", "OneHot"))
    vals = np.asarray(values)
    if vals.size != 2:
        raise OpError(f"OneHot: 'values' must be [off_value, on_value]. Received: shape {list(vals.shape)}")
    idx = np.asarray(indices)
    ax = normalize_axis(axis, idx.ndim + 1, "OneHot")
    idx = idx.astype(np.int64) if idx.dtype.kind in "iub" else np.trunc(idx).astype(np.int64)
    idx = np.where(idx < 0, idx + d, idx)
    hot = np.expand_dims(idx, ax) == np.arange(d).reshape((d,) + (1,) * (idx.ndim - ax))
    off, on = vals.ravel()
    return np.where(hot, on, off).astype(vals.dtype)


@op("NonZero", inputs=["X"], outputs=["Y"], out_dtype="int64")
def non_zero(x: np.ndarray) -> np.ndarray:
    """The int64 coordinates of the non-zero elements, shape [rank, count], in row-major order."""
    if x.ndim == 0:
        return np.zeros((0, int(bool(x))), dtype=np.int64)
    return np.asarray(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


@op("Trilu", inputs=["input", "k?"], outputs=["output"])
def trilu(x: np.ndarray, k: np.ndarray | None = None, *, upper: int = 1) -> np.ndarray:
    """The upper (``upper=1``) or lower triangle of the last two dims, from diagonal ``k``; the rest zeroed."""
    if x.ndim < 2:
        raise OpError(f"Trilu: needs an input of rank >= 2. Received: shape {list(x.shape)}")
    kk = 0 if k is None else int(_scalar(k, "k", "Trilu"))
    return np.triu(x, kk) if upper else np.tril(x, kk)


@op("EyeLike", inputs=["input"], outputs=["output"], out_dtype="attr:dtype|same")
def eye_like(x: np.ndarray, *, dtype: str | None = None, k: int = 0) -> np.ndarray:
    """A 2-D tensor of the input's shape with ones on diagonal ``k``; of k5 dtype ``dtype`` (the input's if absent)."""
    if x.ndim != 2:
        raise OpError(f"EyeLike: needs a 2-D input. Received: shape {list(x.shape)}")
    out_dtype = x.dtype if dtype is None else dtype_of(dtype, where="EyeLike attribute 'dtype'").numpy
    return np.eye(x.shape[0], x.shape[1], k, dtype=out_dtype)


# --- selection -----------------------------------------------------------------------------------------------


@op("Compress", inputs=["input", "condition"], outputs=["output"])
def compress(x: np.ndarray, condition: np.ndarray, *, axis: int | None = None) -> np.ndarray:
    """The slices along ``axis`` (of the flattened input if absent) where the bool ``condition`` is True;
    ``condition`` may be shorter than the axis (the rest is dropped)."""
    cond = np.asarray(condition, dtype=bool).reshape(-1)
    if axis is None:
        flat = np.reshape(x, -1)
        if cond.size > flat.size:
            raise OpError(f"Compress: condition has {cond.size} values for {flat.size} elements")
        return np.compress(cond, flat)
    ax = normalize_axis(axis, x.ndim, "Compress")
    if cond.size > x.shape[ax]:
        raise OpError(f"Compress: condition has {cond.size} values for axis {axis} of size {x.shape[ax]}")
    return np.compress(cond, x, axis=ax)


@op("ReverseSequence", inputs=["input", "sequence_lens"], outputs=["Y"])
def reverse_sequence(
    x: np.ndarray, sequence_lens: np.ndarray, *, batch_axis: int = 1, time_axis: int = 0
) -> np.ndarray:
    """For each batch entry b, its first ``sequence_lens[b]`` time steps reversed, the rest unchanged."""
    b_ax = normalize_axis(batch_axis, x.ndim, "ReverseSequence")
    t_ax = normalize_axis(time_axis, x.ndim, "ReverseSequence")
    if b_ax == t_ax or x.ndim < 2:
        raise OpError("ReverseSequence: batch_axis and time_axis must be two different axes of a rank >= 2 input")
    lens = np.asarray(sequence_lens, dtype=np.int64).reshape(-1)
    n, steps = x.shape[b_ax], x.shape[t_ax]
    if lens.size != n or np.any(lens < 0) or np.any(lens > steps):
        raise OpError(f"ReverseSequence: sequence_lens needs {n} values in [0, {steps}]. Received: {lens.tolist()}")
    t = np.arange(steps)[None, :]
    src = np.where(t < lens[:, None], lens[:, None] - 1 - t, t)  # [batch, time]
    shape = [1] * x.ndim
    shape[b_ax], shape[t_ax] = n, steps
    src = src if b_ax < t_ax else src.T
    src = np.broadcast_to(src.reshape(shape), x.shape)
    return np.take_along_axis(x, src, axis=t_ax)


@op(
    "Unique",
    inputs=["X"],
    outputs=["Y", "indices?", "inverse_indices?", "counts?"],
    out_dtype=("same", "int64", "int64", "int64"),
)
def unique(
    x: np.ndarray, *, axis: int | None = None, sorted: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The unique values of the flattened input (or unique slices along ``axis``), sorted ascending or in order of
    first occurrence (``sorted=0``); with the int64 index of each one's first occurrence, the index in Y of every
    input element (or slice), and the counts."""
    if axis is None:
        data, ax = np.reshape(x, -1), 0
        y, first, inverse, counts = np.unique(data, return_index=True, return_inverse=True, return_counts=True)
    else:
        data, ax = x, normalize_axis(axis, x.ndim, "Unique")
        y, first, inverse, counts = np.unique(data, return_index=True, return_inverse=True, return_counts=True, axis=ax)
    inverse = np.asarray(inverse).reshape(-1)
    if not sorted:
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        first, counts, inverse = first[order], counts[order], rank[inverse]
        y = np.take(data, first, axis=ax)
    as64 = [np.asarray(v, dtype=np.int64) for v in (first, inverse, counts)]
    return np.asarray(y), as64[0], as64[1], as64[2]
