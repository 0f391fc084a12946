"""Image ops: resize, grid sampling, RoI align, depth/space rearrangement, crops, box suppression.

Resize and GridSample are vectorised: interpolation runs as a few gathers and weighted sums over whole tensors,
never a Python loop per pixel. Layout is channels-first (N, C, spatial...).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from k5.errors import AttrError, OpError
from k5.ops.registry import op

__all__: list[str] = []


def _cast_like(v: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float results back to the input's type; integers are rounded and saturated."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(v), info.min, info.max).astype(dtype)
    if dtype == np.bool_:
        return v != 0
    return v.astype(dtype)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise AttrError(f"attribute {name!r} expects one of {', '.join(allowed)}. Received: {name}={value!r}")
    return value


# --- Resize ---------------------------------------------------------------------------------------------------
_CTM = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize")
_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _linear_kernel(d: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - np.abs(d), 0.0, 1.0)


def _cubic_kernel(d: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with coefficient ``a``."""
    d = np.abs(d)
    near = ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0
    far = ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a
    return np.where(d <= 1.0, near, np.where(d < 2.0, far, 0.0))


def _source_coords(
    ctm: str, n_in: int, n_out: int, scale: float, roi: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Input coordinates of every output index along one axis, and (tf_crop_and_resize) which fall outside."""
    y = np.arange(n_out, dtype=np.float64)
    width = scale * n_in  # the possibly fractional target length
    if ctm == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    if ctm == "half_pixel_symmetric":
        offset = (n_in / 2.0) * (1.0 - n_out / width)
        return offset + (y + 0.5) / scale - 0.5, None
    if ctm == "pytorch_half_pixel":
        return ((y + 0.5) / scale - 0.5 if width != 1 else np.full(n_out, -0.5)), None
    if ctm == "align_corners":
        return (y * (n_in - 1) / (width - 1) if width != 1 else np.zeros(n_out)), None
    if ctm == "asymmetric":
        return y / scale, None
    start, end = roi
    if width != 1:
        x = start * (n_in - 1) + y * (end - start) * (n_in - 1) / (width - 1)
    else:
        x = np.full(n_out, start * (n_in - 1) + (end - start) * (n_in - 1) / 2.0)
    return x, (x < 0) | (x > n_in - 1)


def _resize_taps(
    x: np.ndarray,
    n_in: int,
    scale: float,
    *,
    mode: str,
    nearest_mode: str,
    cubic_coeff_a: float,
    exclude_outside: int,
    antialias: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(indices [out, taps], weights [out, taps]) interpolating input positions ``x`` along one axis."""
    if mode == "nearest":
        frac = x - np.floor(x)
        if nearest_mode == "round_prefer_floor":
            idx = np.where(frac <= 0.5, np.floor(x), np.ceil(x))
        elif nearest_mode == "round_prefer_ceil":
            idx = np.where(frac < 0.5, np.floor(x), np.ceil(x))
        elif nearest_mode == "floor":
            idx = np.floor(x)
        else:
            idx = np.ceil(x)
        return np.clip(idx, 0, n_in - 1).astype(np.intp)[:, None], np.ones((x.size, 1))
    radius = 1.0 if mode == "linear" else 2.0
    stretch = scale if antialias and scale < 1.0 else 1.0  # antialias widens the filter by 1/scale
    half = math.ceil(radius / stretch)
    base = np.floor(x)
    idx = base[:, None] + np.arange(1 - half, half + 1)[None, :]
    d = (x[:, None] - idx) * stretch
    w = _linear_kernel(d) if mode == "linear" else _cubic_kernel(d, cubic_coeff_a)
    if exclude_outside:
        w = np.where((idx < 0) | (idx > n_in - 1), 0.0, w)
    if exclude_outside or stretch != 1.0:
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    return np.clip(idx, 0, n_in - 1).astype(np.intp), w


def _apply_taps(data: np.ndarray, axis: int, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    gathered = np.take(data, idx, axis=axis)  # [..., out, taps, ...]
    if idx.shape[1] == 1:
        return np.squeeze(gathered, axis=axis + 1)
    shape = [1] * gathered.ndim
    shape[axis], shape[axis + 1] = w.shape
    return (gathered * w.reshape(shape)).sum(axis=axis + 1)


def _present(v: np.ndarray | None) -> np.ndarray | None:
    return None if v is None or np.asarray(v).size == 0 else np.asarray(v)


@op("Resize", inputs=["X", "roi?", "scales?", "sizes?"], outputs=["Y"])
def resize(
    X: np.ndarray,
    roi: np.ndarray | None,
    scales: np.ndarray | None,
    sizes: np.ndarray | None,
    *,
    antialias: int = 0,
    axes: list[int] | None = None,
    coordinate_transformation_mode: str = "half_pixel",
    cubic_coeff_a: float = -0.75,
    exclude_outside: int = 0,
    extrapolation_value: float = 0.0,
    keep_aspect_ratio_policy: str = "stretch",
    mode: str = "nearest",
    nearest_mode: str = "round_prefer_floor",
) -> np.ndarray:
    """Resize ``X`` along ``axes`` (default all) by ``scales`` or to ``sizes`` (exactly one of them).

    Separable: each resized axis maps output index ``y`` to an input coordinate by
    ``coordinate_transformation_mode`` and interpolates there (``nearest`` with ``nearest_mode``; ``linear``;
    ``cubic`` with Keys' coefficient ``cubic_coeff_a``). Neighbours beyond the edge repeat the edge value, or get
    weight 0 with ``exclude_outside`` (weights renormalised). ``antialias`` stretches the linear/cubic filter by
    ``1/scale`` when downscaling. With ``scales`` the output length is ``floor(length * scale)``; ``sizes`` with
    ``keep_aspect_ratio_policy`` ``not_larger``/``not_smaller`` uses one common scale (min/max of
    ``sizes / length``) and rounds half up. ``roi`` ([starts..., ends...], normalised) and
    ``extrapolation_value`` only matter for ``tf_crop_and_resize``.
    """
    _choice("mode", mode, ("nearest", "linear", "cubic"))
    _choice("coordinate_transformation_mode", coordinate_transformation_mode, _CTM)
    _choice("nearest_mode", nearest_mode, _NEAREST)
    _choice("keep_aspect_ratio_policy", keep_aspect_ratio_policy, ("stretch", "not_larger", "not_smaller"))
    r = X.ndim
    ax = [a % r if -r <= a < r else _bad_axis(a, r) for a in axes] if axes is not None else list(range(r))
    if len(set(ax)) != len(ax):
        raise AttrError(f"attribute 'axes' repeats an axis. Received: axes={axes}")
    scales, sizes, roi = _present(scales), _present(sizes), _present(roi)
    if scales is not None and sizes is None:
        given = scales
    elif sizes is not None and scales is None:
        given = sizes
    else:
        raise OpError("Resize needs exactly one of 'scales' and 'sizes'")
    if given.size != len(ax):
        raise OpError(f"{'scales' if scales is not None else 'sizes'} has {given.size} values; expected {len(ax)}")
    in_len = [X.shape[a] for a in ax]
    if scales is not None:
        factor = [float(s) for s in scales.astype(np.float64)]
        if any(s <= 0 for s in factor):
            raise OpError(f"scales must be > 0. Received: {factor}")
        out_len = [int(n * s) for n, s in zip(in_len, factor, strict=True)]
    else:
        want = [int(s) for s in given.astype(np.int64)]
        factor = [w / n if n else 1.0 for w, n in zip(want, in_len, strict=True)]
        if keep_aspect_ratio_policy != "stretch":
            common = min(factor) if keep_aspect_ratio_policy == "not_larger" else max(factor)
            factor = [common] * len(ax)
            out_len = [int(common * n + 0.5) for n in in_len]
        else:
            out_len = want
    starts, ends = [0.0] * len(ax), [1.0] * len(ax)
    if roi is not None and coordinate_transformation_mode == "tf_crop_and_resize":
        if roi.size != 2 * len(ax):
            raise OpError(f"roi has {roi.size} values; expected {2 * len(ax)} (starts, then ends)")
        starts, ends = [float(v) for v in roi[: len(ax)]], [float(v) for v in roi[len(ax) :]]
    result = X.astype(np.float64)
    outside = np.zeros([1] * r, dtype=bool)
    for k, a in enumerate(ax):
        if math.isclose(factor[k], 1.0) and out_len[k] == in_len[k] and (starts[k], ends[k]) == (0.0, 1.0):
            continue
        if out_len[k] == 0 or in_len[k] == 0:
            shape = list(result.shape)
            shape[a] = out_len[k]
            result = np.zeros(shape)
            continue
        x, ext = _source_coords(coordinate_transformation_mode, in_len[k], out_len[k], factor[k], (starts[k], ends[k]))
        idx, w = _resize_taps(
            x, in_len[k], factor[k], mode=mode, nearest_mode=nearest_mode, cubic_coeff_a=cubic_coeff_a,
            exclude_outside=exclude_outside, antialias=antialias,
        )  # fmt: skip
        result = _apply_taps(result, a, idx, w)
        if ext is not None:
            shape = [1] * r
            shape[a] = -1
            outside = outside | ext.reshape(shape)
    if outside.any():
        result = np.where(outside, extrapolation_value, result)
    return _cast_like(result, X.dtype)


def _bad_axis(a: int, r: int) -> int:
    raise AttrError(f"axis {a} is out of range for an input of rank {r}")


@op("Upsample", inputs=["X", "scales"], outputs=["Y"])
def upsample(X: np.ndarray, scales: np.ndarray, *, mode: str = "nearest") -> np.ndarray:
    """Deprecated ONNX op: ``Resize`` with ``asymmetric`` coordinates (``nearest`` rounds down; ``linear``)."""
    mode = {"bilinear": "linear", "trilinear": "linear"}.get(mode, mode)
    _choice("mode", mode, ("nearest", "linear"))
    return resize(X, None, scales, None, coordinate_transformation_mode="asymmetric", mode=mode, nearest_mode="floor")


# --- depth <-> space ------------------------------------------------------------------------------------------
def _check_rank4(x: np.ndarray, what: str) -> None:
    if x.ndim != 4:
        raise OpError(f"{what} expects a rank-4 input [N, C, H, W]. Received: shape {list(x.shape)}")


@op("DepthToSpace", inputs=["input"], outputs=["output"])
def depth_to_space(x: np.ndarray, *, blocksize: int, mode: str = "DCR") -> np.ndarray:
    """[N, C, H, W] -> [N, C/b², H·b, W·b]; ``DCR`` reads the channel as (row, column, depth), ``CRD`` as
    (depth, row, column)."""
    _check_rank4(x, "DepthToSpace")
    _choice("mode", mode, ("DCR", "CRD"))
    N, C, H, W = x.shape
    b = blocksize
    if b < 1 or C % (b * b):
        raise OpError(f"channels C={C} must be a multiple of blocksize²={b * b}")
    if mode == "DCR":
        y = x.reshape(N, b, b, C // (b * b), H, W).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(N, C // (b * b), b, b, H, W).transpose(0, 1, 4, 2, 5, 3)
    return np.ascontiguousarray(y.reshape(N, C // (b * b), H * b, W * b))


@op("SpaceToDepth", inputs=["input"], outputs=["output"])
def space_to_depth(x: np.ndarray, *, blocksize: int, mode: str = "DCR") -> np.ndarray:
    """[N, C, H, W] -> [N, C·b², H/b, W/b], the inverse of DepthToSpace in the same ``mode``."""
    _check_rank4(x, "SpaceToDepth")
    _choice("mode", mode, ("DCR", "CRD"))
    N, C, H, W = x.shape
    b = blocksize
    if b < 1 or H % b or W % b:
        raise OpError(f"height {H} and width {W} must be multiples of blocksize={b}")
    y = x.reshape(N, C, H // b, b, W // b, b)
    y = y.transpose(0, 3, 5, 1, 2, 4) if mode == "DCR" else y.transpose(0, 1, 3, 5, 2, 4)
    return np.ascontiguousarray(y.reshape(N, C * b * b, H // b, W // b))


# --- GridSample / AffineGrid ----------------------------------------------------------------------------------
def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold coordinates into [lo, hi] by reflecting at the borders."""
    span = hi - lo
    if span <= 0:
        return np.zeros_like(x)
    below, above = x < lo, x > hi
    d = np.where(below, lo - x, np.where(above, x - hi, 0.0))
    n = np.trunc(d / span)
    rem = d - n * span
    even = (n % 2) == 0
    from_low = np.where(even, lo + rem, hi - rem)
    from_high = np.where(even, hi - rem, lo + rem)
    return np.where(below, from_low, np.where(above, from_high, x))


@op("GridSample", inputs=["X", "grid"], outputs=["Y"])
def grid_sample(
    X: np.ndarray, grid: np.ndarray, *, align_corners: int = 0, mode: str = "linear", padding_mode: str = "zeros"
) -> np.ndarray:
    """Sample ``X`` [N, C, D1..Dr] at ``grid`` [N, O1..Or, r] (normalised coordinates in [-1, 1], last component
    for the last spatial axis) -> [N, C, O1..Or].

    ``align_corners``: -1/1 are the centres of the corner pixels (else their outer edges). ``mode``: ``linear``
    (r-linear), ``nearest`` (round half to even), ``cubic`` (Keys, a = -0.75). ``padding_mode``: ``zeros``
    (outside pixels read 0), ``border`` (clamp), ``reflection`` (mirror at the borders). With ``cubic`` and
    ``border``, each of the 4 taps per axis is clamped, not the coordinate (onnxruntime and torch agree on this;
    onnx.reference clamps the coordinate).
    """
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    _choice("mode", mode, ("linear", "nearest", "cubic"))
    _choice("padding_mode", padding_mode, ("zeros", "border", "reflection"))
    r = X.ndim - 2
    if r < 1 or grid.ndim != r + 2 or grid.shape[-1] != r or grid.shape[0] != X.shape[0]:
        raise OpError(f"grid must be [N, O1..O{r}, {r}] for X {list(X.shape)}. Received: grid shape {list(grid.shape)}")
    N, C = X.shape[:2]
    dims = X.shape[2:]
    out_sp = grid.shape[1:-1]
    Q = int(np.prod(out_sp, dtype=np.int64))
    g = grid.reshape(N, Q, r).astype(np.float64)
    coords = []
    lo_hi = []
    for d in range(r):
        n = g[:, :, r - 1 - d]
        size = dims[d]
        if align_corners:
            x, lo, hi = (n + 1.0) / 2.0 * (size - 1), 0.0, size - 1.0
        else:
            x, lo, hi = ((n + 1.0) * size - 1.0) / 2.0, -0.5, size - 0.5
        if mode == "nearest":
            x = np.rint(x)
        if padding_mode == "border" and mode != "cubic":  # cubic clamps each tap instead (as torch and onnxruntime)
            x = np.where((x < lo) | (x > hi), np.clip(x, 0, size - 1), x)
        elif padding_mode == "reflection":
            x = _reflect(x, lo, hi)
        coords.append(x)
        lo_hi.append((lo, hi))
    per_dim: list[list[tuple[np.ndarray, np.ndarray]]] = []  # per spatial axis: (index, weight) per tap
    for d, x in enumerate(coords):
        if mode == "nearest":
            offsets, base = [0], x
        elif mode == "linear":
            offsets, base = [0, 1], np.floor(x)
        else:
            offsets, base = [-1, 0, 1, 2], np.floor(x)
        taps = []
        for o in offsets:
            i = base + o
            if mode == "nearest":
                w = np.ones_like(x)
            elif mode == "linear":
                w = _linear_kernel(x - i)
            else:
                w = _cubic_kernel(x - i, -0.75)
            size = dims[d]
            if padding_mode == "border":
                i = np.clip(i, 0, size - 1)
            elif padding_mode == "reflection":
                i = np.trunc(_reflect(i, *lo_hi[d]))
            taps.append((i, w))
        per_dim.append(taps)
    flat = X.reshape(N, C, -1).astype(np.float64)
    strides = [int(np.prod(dims[d + 1 :], dtype=np.int64)) for d in range(r)]
    out = np.zeros((N, C, Q))
    for combo in itertools.product(*per_dim):
        weight = np.ones((N, Q))
        index = np.zeros((N, Q), dtype=np.int64)
        valid = np.ones((N, Q), dtype=bool)
        for d, (i, w) in enumerate(combo):
            weight = weight * w
            valid &= (i >= 0) & (i <= dims[d] - 1)
            index += np.clip(i, 0, dims[d] - 1).astype(np.int64) * strides[d]
        weight = np.where(valid, weight, 0.0)
        out += np.take_along_axis(flat, index[:, None, :], axis=2) * weight[:, None, :]
    return _cast_like(out.reshape(N, C, *out_sp), X.dtype)


@op("AffineGrid", inputs=["theta", "size"], outputs=["grid"])
def affine_grid(theta: np.ndarray, size: np.ndarray, *, align_corners: int = 0) -> np.ndarray:
    """Sampling grid [N, D1..Dr, r] of the affine maps ``theta`` [N, r, r+1] over an output of ``size``
    [N, C, D1..Dr] (r = 2 or 3); each point is ``theta @ (x, y[, z], 1)`` with base coordinates in [-1, 1]."""
    shape = [int(v) for v in np.asarray(size).reshape(-1)]
    r = len(shape) - 2
    if r not in (2, 3) or theta.shape != (shape[0], r, r + 1):
        raise OpError(f"theta must be [N, {r}, {r + 1}] for size {shape}. Received: theta shape {list(theta.shape)}")
    axes = []
    for n in shape[2:]:
        if align_corners:
            axes.append(np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(n))
        else:
            axes.append((2.0 * np.arange(n) + 1.0) / n - 1.0)
    mesh = np.meshgrid(*axes, indexing="ij")  # spatial order D1..Dr
    base = np.stack([*mesh[::-1], np.ones_like(mesh[0])], axis=-1)  # (x, y[, z], 1)
    grid = np.einsum("...k,njk->n...j", base, theta.astype(np.float64))
    return grid.astype(theta.dtype)


# --- RoiAlign -------------------------------------------------------------------------------------------------
def _bilinear_setup(pos: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Low/high indices, their weights and a validity mask for RoiAlign's sample positions along one axis."""
    valid = (pos >= -1.0) & (pos <= size)
    p = np.maximum(pos, 0.0)
    low = np.floor(p).astype(np.int64)
    at_edge = low >= size - 1
    low = np.where(at_edge, size - 1, low)
    high = np.where(at_edge, size - 1, low + 1)
    p = np.where(at_edge, low.astype(np.float64), p)
    frac = p - low
    return low, high, 1.0 - frac, frac, valid


@op("RoiAlign", inputs=["X", "rois", "batch_indices"], outputs=["Y"])
def roi_align(
    X: np.ndarray,
    rois: np.ndarray,
    batch_indices: np.ndarray,
    *,
    coordinate_transformation_mode: str = "half_pixel",
    mode: str = "avg",
    output_height: int = 1,
    output_width: int = 1,
    sampling_ratio: int = 0,
    spatial_scale: float = 1.0,
) -> np.ndarray:
    """Pool each region ``rois[k]`` = (x1, y1, x2, y2) of image ``batch_indices[k]`` into
    [output_height, output_width] bins -> [num_rois, C, output_height, output_width].

    Each bin averages (``avg``) or takes the maximum (``max``; of the four weighted corner terms, as onnxruntime)
    of ``sampling_ratio``² bilinear samples (adaptive ``ceil(roi_size / output_size)`` when 0). ``half_pixel``
    shifts the scaled box by -0.5; ``output_half_pixel`` does not, and forces boxes to be at least 1 wide.
    """
    _choice("mode", mode, ("avg", "max"))
    _choice("coordinate_transformation_mode", coordinate_transformation_mode, ("half_pixel", "output_half_pixel"))
    if X.ndim != 4 or rois.ndim != 2 or rois.shape[1] != 4 or batch_indices.shape != (rois.shape[0],):
        raise OpError(
            f"expects X [N, C, H, W], rois [R, 4], batch_indices [R]. Received: {list(X.shape)}, "
            f"{list(rois.shape)}, {list(batch_indices.shape)}"
        )
    N, C, H, W = X.shape
    R = rois.shape[0]
    out = np.zeros((R, C, output_height, output_width))
    offset = 0.5 if coordinate_transformation_mode == "half_pixel" else 0.0
    data = X.astype(np.float64)
    for k in range(R):
        b = int(batch_indices[k])
        if not 0 <= b < N:
            raise OpError(f"batch_indices[{k}]={b} is out of range for a batch of {N}")
        x1, y1, x2, y2 = (float(v) * spatial_scale - offset for v in rois[k])
        rw, rh = x2 - x1, y2 - y1
        if coordinate_transformation_mode == "output_half_pixel":
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / output_height, rw / output_width
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / output_height)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / output_width)
        count = max(gh * gw, 1)
        ys = (y1 + np.arange(output_height)[:, None] * bh + (np.arange(gh)[None, :] + 0.5) * bh / gh).reshape(-1)
        xs = (x1 + np.arange(output_width)[:, None] * bw + (np.arange(gw)[None, :] + 0.5) * bw / gw).reshape(-1)
        ylo, yhi, wy_lo, wy_hi, vy = _bilinear_setup(ys, H)
        xlo, xhi, wx_lo, wx_hi, vx = _bilinear_setup(xs, W)
        valid = (vy[:, None] & vx[None, :]).astype(np.float64)
        img = data[b]  # [C, H, W]
        terms = [
            img[:, ylo[:, None], xlo[None, :]] * (wy_lo[:, None] * wx_lo[None, :] * valid),
            img[:, ylo[:, None], xhi[None, :]] * (wy_lo[:, None] * wx_hi[None, :] * valid),
            img[:, yhi[:, None], xlo[None, :]] * (wy_hi[:, None] * wx_lo[None, :] * valid),
            img[:, yhi[:, None], xhi[None, :]] * (wy_hi[:, None] * wx_hi[None, :] * valid),
        ]
        if mode == "avg":
            samples = terms[0] + terms[1] + terms[2] + terms[3]
            if gh * gw:
                pooled = samples.reshape(C, output_height, gh, output_width, gw).sum(axis=(2, 4)) / count
            else:
                pooled = np.zeros((C, output_height, output_width))
        else:
            samples = np.maximum(np.maximum(terms[0], terms[1]), np.maximum(terms[2], terms[3]))
            if gh * gw:
                pooled = samples.reshape(C, output_height, gh, output_width, gw).max(axis=(2, 4))
            else:
                pooled = np.zeros((C, output_height, output_width))
        out[k] = pooled
    return out.astype(X.dtype)


# --- NonMaxSuppression ----------------------------------------------------------------------------------------
def _corners(boxes: np.ndarray, center_point_box: int) -> np.ndarray:
    """[..., 4] -> (y_min, x_min, y_max, x_max)."""
    b = boxes.astype(np.float64)
    if center_point_box:
        xc, yc, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
        return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)
    y1, x1, y2, x2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack([np.minimum(y1, y2), np.minimum(x1, x2), np.maximum(y1, y2), np.maximum(x1, x2)], axis=-1)


def _iou(one: np.ndarray, many: np.ndarray) -> np.ndarray:
    ih = np.clip(np.minimum(one[2], many[:, 2]) - np.maximum(one[0], many[:, 0]), 0, None)
    iw = np.clip(np.minimum(one[3], many[:, 3]) - np.maximum(one[1], many[:, 1]), 0, None)
    inter = ih * iw
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    union = area(one) + area(many) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


@op(
    "NonMaxSuppression",
    inputs=["boxes", "scores", "max_output_boxes_per_class?", "iou_threshold?", "score_threshold?"],
    outputs=["selected_indices"],
    out_dtype="int64",
)
def non_max_suppression(
    boxes: np.ndarray,
    scores: np.ndarray,
    max_output_boxes_per_class: np.ndarray | None,
    iou_threshold: np.ndarray | None,
    score_threshold: np.ndarray | None,
    *,
    center_point_box: int = 0,
) -> np.ndarray:
    """Greedy non-maximum suppression per batch and class -> int64 [selected, 3] of (batch, class, box).

    ``boxes`` [B, n, 4] as (y1, x1, y2, x2) corners in either order, or (x_center, y_center, w, h) with
    ``center_point_box=1``; ``scores`` [B, classes, n]. Boxes scoring above ``score_threshold`` are taken in
    decreasing score order; a box is dropped when its IoU with an already selected box exceeds
    ``iou_threshold`` (default 0). At most ``max_output_boxes_per_class`` (default 0: none) per class.
    """
    if boxes.ndim != 3 or boxes.shape[2] != 4 or scores.ndim != 3 or scores.shape[::2] != boxes.shape[:2]:
        raise OpError(
            f"expects boxes [B, n, 4] and scores [B, classes, n]. Received: {list(boxes.shape)}, {list(scores.shape)}"
        )
    limit = 0 if max_output_boxes_per_class is None else int(np.asarray(max_output_boxes_per_class).reshape(-1)[0])
    iou_max = 0.0 if iou_threshold is None else float(np.asarray(iou_threshold).reshape(-1)[0])
    min_score = None if score_threshold is None else float(np.asarray(score_threshold).reshape(-1)[0])
    corners = _corners(boxes, center_point_box)
    picked: list[tuple[int, int, int]] = []
    if limit > 0:
        for b in range(boxes.shape[0]):
            for c in range(scores.shape[1]):
                s = scores[b, c].astype(np.float64)
                order = np.argsort(-s, kind="stable")
                if min_score is not None:
                    order = order[s[order] > min_score]
                chosen: list[int] = []
                while order.size and len(chosen) < limit:
                    best = int(order[0])
                    chosen.append(best)
                    rest = order[1:]
                    order = rest[_iou(corners[b, best], corners[b, rest]) <= iou_max]
                picked.extend((b, c, i) for i in chosen)
    return np.array(picked, dtype=np.int64).reshape(-1, 3)


# --- CenterCropPad --------------------------------------------------------------------------------------------
@op("CenterCropPad", inputs=["input_data", "shape"], outputs=["output_data"])
def center_crop_pad(x: np.ndarray, shape: np.ndarray, *, axes: list[int] | None = None) -> np.ndarray:
    """Crop (window start rounded down) or zero-pad (odd extra pixel on the right) each of ``axes`` to ``shape``,
    centred."""
    r = x.ndim
    ax = [a % r if -r <= a < r else _bad_axis(a, r) for a in axes] if axes is not None else list(range(r))
    target = [int(v) for v in np.asarray(shape).reshape(-1)]
    if len(target) != len(ax):
        raise OpError(f"shape has {len(target)} values; expected {len(ax)} (one per axis)")
    out_shape = list(x.shape)
    src: list[slice] = [slice(None)] * r
    dst: list[slice] = [slice(None)] * r
    for a, t in zip(ax, target, strict=True):
        n = x.shape[a]
        out_shape[a] = t
        if t <= n:
            start = (n - t) // 2
            src[a] = slice(start, start + t)
        else:
            start = (t - n) // 2
            dst[a] = slice(start, start + n)
    out = np.zeros(out_shape, dtype=x.dtype)
    out[tuple(dst)] = x[tuple(src)]
    return out
