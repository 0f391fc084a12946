"""Convolution and pooling: Conv, ConvTranspose, Col2Im, DeformConv, max/average/Lp/global/adaptive pooling.

Layout is channels-first: ``X [N, C, *spatial]`` with 1, 2 or 3 (or more) spatial axes. Kernels are vectorised:
windows are strided views (``sliding_window_view``) contracted with one matmul (im2col), or loops over the kernel
offsets only (never over output pixels). Half-precision inputs are computed in float32 and cast back.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from k5.errors import OpError
from k5.ops.common import compute_dtype
from k5.ops.registry import op

_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


# --- helpers ----------------------------------------------------------------------------------------------------
def _attr_ints(name: str, value: Sequence[int] | None, n: int, default: int, what: str) -> list[int]:
    if value is None:
        return [default] * n
    if len(value) != n:
        raise OpError(f"{what}: attribute {name!r} expects {n} ints. Received: {name}={list(value)}")
    return [int(v) for v in value]


def _check_input(what: str, x: np.ndarray, min_rank: int = 3) -> None:
    if x.ndim < min_rank:
        raise OpError(f"{what} expects X [N, C, *spatial] (rank >= {min_rank}). Received: shape {list(x.shape)}")


def _explicit_pads(what: str, pads: Sequence[int] | None, n: int) -> tuple[list[int], list[int]]:
    p = _attr_ints("pads", pads, 2 * n, 0, what)
    if any(v < 0 for v in p):
        raise OpError(f"{what}: attribute 'pads' must be >= 0. Received: pads={p}")
    return p[:n], p[n:]


def _same_pads(auto_pad: str, total: int) -> tuple[int, int]:
    """Split a total padding as SAME_UPPER (extra at the end) or SAME_LOWER (extra at the beginning)."""
    total = max(total, 0)
    small = total // 2
    return (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)


def _window_geometry(
    what: str,
    in_shape: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int] | None,
    auto_pad: str,
    ceil_mode: int = 0,
) -> tuple[list[int], list[int], list[int]]:
    """(output sizes, begin pads, end pads) of a sliding window; end pads include any ceil-mode overhang."""
    n = len(in_shape)
    if auto_pad not in _AUTO_PADS:
        raise OpError(f"{what}: attribute 'auto_pad' expects one of {list(_AUTO_PADS)}. Received: {auto_pad!r}")
    if any(s < 1 for s in strides) or any(d < 1 for d in dilations) or any(k < 1 for k in kernel):
        raise OpError(
            f"{what}: kernel, strides and dilations must be >= 1. "
            f"Received: kernel_shape={list(kernel)}, strides={list(strides)}, dilations={list(dilations)}"
        )
    out, begin, end = [], [], []
    for i in range(n):
        size, k, s, d = in_shape[i], kernel[i], strides[i], dilations[i]
        dk = (k - 1) * d + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-size // s)
            b, e = _same_pads(auto_pad, (o - 1) * s + dk - size)
        else:
            if auto_pad == "VALID":
                b = e = 0
            else:
                pb, pe = _explicit_pads(what, pads, n)
                b, e = pb[i], pe[i]
            span = size + b + e - dk
            if span < 0:
                raise OpError(
                    f"{what}: the window (kernel {k}, dilation {d}) is larger than the padded input ({size + b + e}) "
                    f"on spatial axis {i}"
                )
            if ceil_mode:
                o = -(-span // s) + 1
                if (o - 1) * s >= size + b:  # the last window must start inside the input or the left padding
                    o -= 1
            else:
                o = span // s + 1
            e = max(e, (o - 1) * s + dk - size - b)
        out.append(o)
        begin.append(b)
        end.append(e)
    return out, begin, end


def _pad(x: np.ndarray, begin: Sequence[int], end: Sequence[int], value: float = 0.0) -> np.ndarray:
    if not any(begin) and not any(end):
        return x
    width = [(0, 0)] * (x.ndim - len(begin)) + list(zip(begin, end, strict=True))
    return np.pad(x, width, mode="constant", constant_values=value)


def _offset_slices(offset: Sequence[int], strides: Sequence[int], dilations: Sequence[int], out: Sequence[int]):
    """Slices of a padded input that a kernel offset visits for every output position."""
    return tuple(
        slice(o * d, o * d + (n - 1) * s + 1, s) for o, s, d, n in zip(offset, strides, dilations, out, strict=True)
    )


def _windows(
    xp: np.ndarray, kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int], out: Sequence[int]
) -> np.ndarray:
    """A strided view ``[*lead, *out, *kernel]`` of the padded input's windows (no copy)."""
    n = len(kernel)
    axes = tuple(range(xp.ndim - n, xp.ndim))
    dk = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    v = sliding_window_view(xp, dk, axis=axes)
    index: tuple[Any, ...] = (
        Ellipsis,
        *(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, strides, strict=True)),
        *(slice(None, None, d) for d in dilations),
    )
    return v[index]


# --- convolution ------------------------------------------------------------------------------------------------
@op("Conv", inputs=["X", "@weight", "@bias?"], outputs=["Y"])
def conv(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    """N-d convolution (cross-correlation), ONNX semantics.

    ``X [N, C, *in]``, ``weight [M, C/group, *k]``, ``bias [M]`` -> ``Y [N, M, *out]`` with
    ``out = floor((in + pad_begin + pad_end - ((k-1)*dilation + 1)) / stride) + 1``. ``pads`` is
    ``[begin..., end...]``; ``auto_pad`` SAME_UPPER/SAME_LOWER pads so that ``out = ceil(in / stride)``
    (the odd extra at the end / beginning), VALID means no padding.
    """
    what = "Conv"
    _check_input(what, x)
    n = x.ndim - 2
    if weight.ndim != x.ndim:
        raise OpError(f"{what}: weight must be [M, C/group, *kernel] of rank {x.ndim}. Received: {list(weight.shape)}")
    N, C = x.shape[:2]
    M, Cg = weight.shape[:2]
    kernel = list(weight.shape[2:])
    if kernel_shape is not None and list(kernel_shape) != kernel:
        raise OpError(f"{what}: kernel_shape={list(kernel_shape)} differs from the weight's {kernel}")
    if group < 1 or Cg * group != C or M % group:
        raise OpError(
            f"{what}: X has {C} channels and weight {list(weight.shape)} with group={group}; expected "
            f"C == weight.shape[1] * group and M divisible by group"
        )
    if bias is not None and bias.shape != (M,):
        raise OpError(f"{what}: bias expects shape [{M}]. Received: {list(bias.shape)}")
    s = _attr_ints("strides", strides, n, 1, what)
    d = _attr_ints("dilations", dilations, n, 1, what)
    out, pb, pe = _window_geometry(what, x.shape[2:], kernel, s, d, pads, auto_pad)
    ct = compute_dtype(x.dtype)
    xp = _pad(x.astype(ct, copy=False), pb, pe)
    G, Mg, P, K = group, M // group, math.prod(out), math.prod(kernel)
    v = _windows(xp, kernel, s, d, out)  # [N, C, *out, *k]
    v = v.reshape((N, G, Cg, *out, *kernel))
    # cols [G, N, *out, Cg, *k] -> [G, N*P, Cg*K]; weight -> [G, Cg*K, Mg]
    order = (1, 0, *range(3, 3 + n), 2, *range(3 + n, 3 + 2 * n))
    cols = v.transpose(order).reshape(G, N * P, Cg * K)
    wm = weight.astype(ct, copy=False).reshape(G, Mg, Cg * K).transpose(0, 2, 1)
    y = np.matmul(cols, wm)  # [G, N*P, Mg]
    y = y.reshape(G, N, P, Mg).transpose(1, 0, 3, 2).reshape(N, M, *out)
    if bias is not None:
        y = y + bias.astype(ct, copy=False).reshape((M,) + (1,) * n)
    return np.ascontiguousarray(y, dtype=x.dtype)


def _scatter_windows(
    cols: np.ndarray,
    full_shape: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    blocks: Sequence[int],
    origin: Sequence[int] = (),
) -> np.ndarray:
    """The adjoint of :func:`_windows`: sum ``cols [*k, *lead, *blocks]`` into a zero array ``[*lead, *full]``.

    ``origin`` shifts where index 0 of the windowed axis lies inside the result.
    """
    n = len(kernel)
    lead = cols.shape[n : cols.ndim - n]
    origin = list(origin) or [0] * n
    full = np.zeros((*lead, *full_shape), dtype=cols.dtype)
    for offset in itertools.product(*(range(k) for k in kernel)):
        sl = tuple(
            slice(o0 + o * d, o0 + o * d + (b - 1) * s + 1, s)
            for o0, o, s, d, b in zip(origin, offset, strides, dilations, blocks, strict=True)
        )
        where: tuple[Any, ...] = (Ellipsis, *sl)
        full[where] += cols[offset]
    return full


@op("ConvTranspose", inputs=["X", "@weight", "@bias?"], outputs=["Y"])
def conv_transpose(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    output_padding: list[int] | None = None,
    output_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    """Transposed convolution (the gradient of Conv w.r.t. its input), ONNX semantics.

    ``X [N, C, *in]``, ``weight [C, M/group, *k]``, ``bias [M]`` -> ``Y [N, M, *out]`` with
    ``out = stride*(in-1) + output_padding + ((k-1)*dilation + 1) - pad_begin - pad_end``. When ``output_shape``
    is given (or auto_pad is SAME_*, which means ``out = in * stride``), the total padding is derived from it and
    split as SAME_UPPER (``begin = total // 2``) or otherwise ``begin = total - total // 2``.
    """
    what = "ConvTranspose"
    _check_input(what, x)
    n = x.ndim - 2
    if weight.ndim != x.ndim:
        raise OpError(f"{what}: weight must be [C, M/group, *kernel] of rank {x.ndim}. Received: {list(weight.shape)}")
    N, C = x.shape[:2]
    in_shape = list(x.shape[2:])
    kernel = list(weight.shape[2:])
    if kernel_shape is not None and list(kernel_shape) != kernel:
        raise OpError(f"{what}: kernel_shape={list(kernel_shape)} differs from the weight's {kernel}")
    if group < 1 or weight.shape[0] != C or C % group:
        raise OpError(
            f"{what}: X has {C} channels, weight {list(weight.shape)}, group={group}; expected weight.shape[0] == C "
            f"and C divisible by group"
        )
    G, Cg, Mg = group, C // group, weight.shape[1]
    M = Mg * G
    if bias is not None and bias.shape != (M,):
        raise OpError(f"{what}: bias expects shape [{M}]. Received: {list(bias.shape)}")
    if auto_pad not in _AUTO_PADS:
        raise OpError(f"{what}: attribute 'auto_pad' expects one of {list(_AUTO_PADS)}. Received: {auto_pad!r}")
    s = _attr_ints("strides", strides, n, 1, what)
    d = _attr_ints("dilations", dilations, n, 1, what)
    op_ = _attr_ints("output_padding", output_padding, n, 0, what)
    dk = [(k - 1) * di + 1 for k, di in zip(kernel, d, strict=True)]
    natural = [si * (i - 1) + dki for si, i, dki in zip(s, in_shape, dk, strict=True)]
    if output_shape is not None:
        target = list(output_shape)[-n:] if len(output_shape) in (n, n + 2) else None
        if target is None:
            raise OpError(f"{what}: attribute 'output_shape' expects {n} ints. Received: {list(output_shape)}")
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = [i * si for i, si in zip(in_shape, s, strict=True)]
    else:
        target = None
    if target is not None and (pads is None or auto_pad != "NOTSET"):
        begin = []
        for i in range(n):
            total = natural[i] + op_[i] - target[i]
            small = total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else total - small)
        out = target
    else:
        pb, pe = _explicit_pads(what, pads if auto_pad == "NOTSET" else None, n)
        begin = pb
        out = target or [natural[i] + op_[i] - pb[i] - pe[i] for i in range(n)]
    if any(o < 1 for o in out):
        raise OpError(f"{what}: the output would have spatial shape {out}")
    ct = compute_dtype(x.dtype)
    # cols[G, N, P, Mg*K] = X[G, N, P, Cg] @ W[G, 1, Cg, Mg*K]
    P, K = math.prod(in_shape), math.prod(kernel)
    xm = x.astype(ct, copy=False).reshape(N, G, Cg, P).transpose(1, 0, 3, 2)
    wm = weight.astype(ct, copy=False).reshape(G, 1, Cg, Mg * K)
    cols = np.matmul(xm, wm).reshape(G, N, *in_shape, Mg, *kernel)
    # -> [*k, N, G, Mg, *in]
    order = (*range(3 + n, 3 + 2 * n), 1, 0, 2 + n, *range(2, 2 + n))
    cols = np.ascontiguousarray(cols.transpose(order))
    lo = [min(0, b) for b in begin]
    size = [max(nat, b + o) - low for nat, b, o, low in zip(natural, begin, out, lo, strict=True)]
    full = _scatter_windows(cols, size, kernel, s, d, in_shape, origin=[-low for low in lo])
    crop = tuple(slice(b - low, b - low + o) for b, low, o in zip(begin, lo, out, strict=True))
    window: tuple[Any, ...] = (Ellipsis, *crop)
    y = full[window].reshape(N, M, *out)
    if bias is not None:
        y = y + bias.astype(ct, copy=False).reshape((M,) + (1,) * n)
    return np.ascontiguousarray(y, dtype=x.dtype)


@op("Col2Im", inputs=["input", "image_shape", "block_shape"], outputs=["output"])
def col2im(
    x: np.ndarray,
    image_shape: np.ndarray,
    block_shape: np.ndarray,
    *,
    dilations: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    """Rearrange column blocks ``[N, C*prod(block_shape), L]`` into an image ``[N, C, *image_shape]``, summing
    overlapping values (the inverse of im2col / PyTorch's ``fold``)."""
    what = "Col2Im"
    image = [int(v) for v in np.asarray(image_shape).ravel()]
    kernel = [int(v) for v in np.asarray(block_shape).ravel()]
    n = len(image)
    if x.ndim != 3 or len(kernel) != n:
        raise OpError(
            f"{what} expects input [N, C*prod(block_shape), L] and image_shape/block_shape of equal length. "
            f"Received: input {list(x.shape)}, image_shape {image}, block_shape {kernel}"
        )
    s = _attr_ints("strides", strides, n, 1, what)
    d = _attr_ints("dilations", dilations, n, 1, what)
    blocks, pb, pe = _window_geometry(what, image, kernel, s, d, pads, "NOTSET")
    K = math.prod(kernel)
    N, CK, L = x.shape
    if CK % K or math.prod(blocks) != L:
        raise OpError(
            f"{what}: input {list(x.shape)} does not fit block_shape {kernel} and {blocks} blocks "
            f"(expected dim 1 divisible by {K} and L == {math.prod(blocks)})"
        )
    C = CK // K
    ct = compute_dtype(x.dtype)
    cols = x.astype(ct, copy=False).reshape(N, C, *kernel, *blocks)
    order = (*range(2, 2 + n), 0, 1, *range(2 + n, 2 + 2 * n))
    cols = np.ascontiguousarray(cols.transpose(order))
    padded = [i + b + e for i, b, e in zip(image, pb, pe, strict=True)]
    full = _scatter_windows(cols, padded, kernel, s, d, blocks)
    crop = tuple(slice(b, b + i) for b, i in zip(pb, image, strict=True))
    window: tuple[Any, ...] = (Ellipsis, *crop)
    return np.ascontiguousarray(full[window], dtype=x.dtype)


@op("DeformConv", inputs=["X", "@weight", "offset", "@bias?", "mask?"], outputs=["Y"])
def deform_conv(
    x: np.ndarray,
    weight: np.ndarray,
    offset: np.ndarray,
    bias: np.ndarray | None,
    mask: np.ndarray | None,
    *,
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    offset_group: int = 1,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    """Deformable convolution (v1, and v2 with ``mask``), ONNX semantics.

    Kernel tap ``k`` of output position ``o`` samples X at ``o*stride - pad_begin + k*dilation + offset`` by
    (multi)linear interpolation, with zeros outside X. ``offset [N, offset_group * prod(kernel) * n, *out]``
    (per offset group, per tap, one displacement per spatial axis), ``mask [N, offset_group * prod(kernel),
    *out]`` scales each sample (default 1). Channels ``c`` use offset group ``c // (C / offset_group)``.
    """
    what = "DeformConv"
    _check_input(what, x)
    n = x.ndim - 2
    N, C = x.shape[:2]
    M, Cg = weight.shape[:2]
    kernel = list(weight.shape[2:])
    if kernel_shape is not None and list(kernel_shape) != kernel:
        raise OpError(f"{what}: kernel_shape={list(kernel_shape)} differs from the weight's {kernel}")
    if group < 1 or Cg * group != C or M % group or offset_group < 1 or C % offset_group:
        raise OpError(
            f"{what}: X has {C} channels, weight {list(weight.shape)}, group={group}, offset_group={offset_group}; "
            f"expected C == weight.shape[1] * group, M divisible by group and C by offset_group"
        )
    s = _attr_ints("strides", strides, n, 1, what)
    d = _attr_ints("dilations", dilations, n, 1, what)
    out, pb, _ = _window_geometry(what, x.shape[2:], kernel, s, d, pads, "NOTSET")
    K, P, Go = math.prod(kernel), math.prod(out), offset_group
    if offset.shape != (N, Go * K * n, *out):
        raise OpError(f"{what}: offset expects shape {[N, Go * K * n, *out]}. Received: {list(offset.shape)}")
    if mask is not None and mask.shape != (N, Go * K, *out):
        raise OpError(f"{what}: mask expects shape {[N, Go * K, *out]}. Received: {list(mask.shape)}")
    ct = compute_dtype(x.dtype)
    spatial = list(x.shape[2:])
    xf = x.astype(ct, copy=False).reshape(N, Go, C // Go, math.prod(spatial))
    off = offset.astype(ct, copy=False).reshape(N, Go, K, n, P)
    msk = mask.astype(ct, copy=False).reshape(N, Go, K, P) if mask is not None else None
    base = np.stack(
        [
            g.ravel()
            for g in np.meshgrid(*[np.arange(o) * si - b for o, si, b in zip(out, s, pb, strict=True)], indexing="ij")
        ]
    )  # [n, P]
    n_idx = np.arange(N)[:, None, None]
    g_idx = np.arange(Go)[None, :, None]
    cols = np.empty((N, Go, C // Go, K, P), dtype=ct)
    for k_index, tap in enumerate(itertools.product(*(range(k) for k in kernel))):
        pos = base[None, None] + (np.array(tap) * np.array(d))[None, None, :, None] + off[:, :, k_index]  # [N,Go,n,P]
        lo = np.floor(pos)
        frac = pos - lo
        lo = lo.astype(np.int64)
        acc = np.zeros((N, Go, P, C // Go), dtype=ct)
        for corner in itertools.product((0, 1), repeat=n):
            weight_c = np.ones((N, Go, P), dtype=ct)
            flat = np.zeros((N, Go, P), dtype=np.int64)
            valid = np.ones((N, Go, P), dtype=bool)
            for a in range(n):
                c = lo[:, :, a] + corner[a]
                weight_c = weight_c * (frac[:, :, a] if corner[a] else 1 - frac[:, :, a])
                valid &= (c >= 0) & (c < spatial[a])
                flat = flat * spatial[a] + np.clip(c, 0, spatial[a] - 1)
            w_eff = np.where(valid, weight_c, 0)
            acc += xf[n_idx, g_idx, :, flat] * w_eff[..., None]
        if msk is not None:
            acc *= msk[:, :, k_index, :, None]
        cols[:, :, :, k_index, :] = acc.transpose(0, 1, 3, 2)
    G, Mg = group, M // group
    cm = cols.reshape(N, G, Cg * K, P)
    wm = weight.astype(ct, copy=False).reshape(G, Mg, Cg * K)
    y = np.matmul(wm[None], cm).reshape(N, M, *out)
    if bias is not None:
        y = y + bias.astype(ct, copy=False).reshape((M,) + (1,) * n)
    return np.ascontiguousarray(y, dtype=x.dtype)


# --- pooling ----------------------------------------------------------------------------------------------------
def _pool_setup(
    what: str,
    x: np.ndarray,
    kernel_shape: list[int],
    strides: list[int] | None,
    dilations: list[int] | None,
    pads: list[int] | None,
    auto_pad: str,
    ceil_mode: int,
) -> tuple[list[int], list[int], list[int], list[int], list[int], list[int]]:
    _check_input(what, x)
    n = x.ndim - 2
    kernel = _attr_ints("kernel_shape", kernel_shape, n, 1, what)
    s = _attr_ints("strides", strides, n, 1, what)
    d = _attr_ints("dilations", dilations, n, 1, what)
    out, pb, pe = _window_geometry(what, x.shape[2:], kernel, s, d, pads, auto_pad, ceil_mode)
    return kernel, s, d, out, pb, pe


def _lowest(dtype: np.dtype) -> float | int:
    if dtype.kind in "iu":
        return int(np.iinfo(dtype).min)
    return -np.inf


@op("MaxPool", inputs=["X"], outputs=["Y", "Indices?"], out_dtype=("same", "int64"))
def max_pool(
    x: np.ndarray,
    *,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    dilations: list[int] | None = None,
    kernel_shape: list[int],
    pads: list[int] | None = None,
    storage_order: int = 0,
    strides: list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Max over sliding windows (padding never wins). ``Indices`` (int64) are flat indices into X
    (``[N, C, *spatial]`` row-major; with ``storage_order=1`` the spatial axes are column-major)."""
    kernel, s, d, out, pb, pe = _pool_setup("MaxPool", x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    n = len(kernel)
    ct = compute_dtype(x.dtype) if x.dtype.kind == "f" else x.dtype
    xp = _pad(x.astype(ct, copy=False), pb, pe, _lowest(ct))
    # max is separable: reduce one spatial axis at a time, last axis first, so that ties resolve to the first
    # maximum in row-major window order (as PyTorch); per axis keep which kernel offset won
    cur = xp
    won: dict[int, np.ndarray] = {}
    for i in reversed(range(n)):
        ax = 2 + i

        def along(o: int, i: int = i, ax: int = ax, a: np.ndarray = cur) -> np.ndarray:
            sl = [slice(None)] * a.ndim
            sl[ax] = slice(o * d[i], o * d[i] + (out[i] - 1) * s[i] + 1, s[i])
            return a[tuple(sl)]

        best = along(0).copy()
        arg = np.zeros(best.shape, dtype=np.int64)
        better = np.empty(best.shape, dtype=bool)
        for o in range(1, kernel[i]):
            v = along(o)
            np.greater(v, best, out=better)
            np.copyto(arg, o, where=better)
            np.maximum(best, v, out=best)
        if won:  # the offsets chosen on later axes, taken at the winning position along this axis
            shape = [1] * best.ndim
            shape[ax] = out[i]
            src = np.arange(out[i]).reshape(shape) * s[i] + arg * d[i]
            won = {j: np.take_along_axis(a, src, axis=ax) for j, a in won.items()}
        won[i] = arg
        cur = best
    best = cur
    # flat index of the winning element in X
    coords = []
    for i in range(n):
        pos = np.arange(out[i], dtype=np.int64).reshape((out[i],) + (1,) * (n - 1 - i)) * s[i] - pb[i]
        coords.append(pos + won[i] * d[i])
    arg = won[0]
    spatial = x.shape[2:]
    if storage_order:
        flat = np.zeros_like(arg)
        for i in reversed(range(n)):
            flat = flat * spatial[i] + coords[i]
    else:
        flat = np.zeros_like(arg)
        for i in range(n):
            flat = flat * spatial[i] + coords[i]
    nc = np.arange(x.shape[0] * x.shape[1], dtype=np.int64).reshape(x.shape[0], x.shape[1], *([1] * n))
    indices = flat + nc * math.prod(spatial)
    return best.astype(x.dtype, copy=False), indices


def _window_sum(xp: np.ndarray, kernel: list[int], s: list[int], d: list[int], out: list[int]) -> np.ndarray:
    total = np.zeros((*xp.shape[: -len(kernel)], *out), dtype=xp.dtype)
    for offset in itertools.product(*(range(k) for k in kernel)):
        total += xp[(Ellipsis, *_offset_slices(offset, s, d, out))]
    return total


@op("AveragePool", inputs=["X"], outputs=["Y"])
def average_pool(
    x: np.ndarray,
    *,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    count_include_pad: int = 0,
    dilations: list[int] | None = None,
    kernel_shape: list[int],
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    """Mean over sliding windows. The divisor counts the window's elements inside X, plus its explicit padding
    when ``count_include_pad=1``; ceil-mode overhang past the padding is never counted."""
    what = "AveragePool"
    kernel, s, d, out, pb, pe = _pool_setup(what, x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    ct = compute_dtype(x.dtype)
    xp = _pad(x.astype(ct, copy=False), pb, pe)
    total = _window_sum(xp, kernel, s, d, out)
    # the divisor: window sums of a 0/1 line over the counted region, per spatial axis (the count is separable)
    n = len(kernel)
    if auto_pad == "NOTSET":
        explicit_end = _explicit_pads(what, pads, n)[1]
    elif auto_pad == "VALID":
        explicit_end = [0] * n
    else:
        explicit_end = pe  # SAME_* pads (ceil_mode does not apply)
    count = np.ones((1, 1) + (1,) * n, dtype=ct)
    for i in range(n):
        size = x.shape[2 + i]
        lo, hi = (0, pb[i] + size + explicit_end[i]) if count_include_pad else (pb[i], pb[i] + size)
        line = np.zeros(pb[i] + size + pe[i], dtype=ct)
        line[lo:hi] = 1
        axis_count = _window_sum(line, [kernel[i]], [s[i]], [d[i]], [out[i]])
        shape = [1] * (2 + n)
        shape[2 + i] = out[i]
        count = count * axis_count.reshape(shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = total / count
    return np.asarray(y, dtype=x.dtype)


@op("LpPool", inputs=["X"], outputs=["Y"])
def lp_pool(
    x: np.ndarray,
    *,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    dilations: list[int] | None = None,
    kernel_shape: list[int],
    p: int = 2,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    """``(sum over the window of |x|^p) ^ (1/p)``; padding contributes zeros."""
    kernel, s, d, out, pb, pe = _pool_setup("LpPool", x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    ct = compute_dtype(x.dtype)
    xp = _pad(np.abs(x.astype(ct, copy=False)) ** p, pb, pe)
    return np.asarray(_window_sum(xp, kernel, s, d, out) ** (1.0 / p), dtype=x.dtype)


def _global_axes(what: str, x: np.ndarray) -> tuple[int, ...]:
    _check_input(what, x)
    return tuple(range(2, x.ndim))


@op("GlobalAveragePool", inputs=["X"], outputs=["Y"])
def global_average_pool(x: np.ndarray) -> np.ndarray:
    """Mean over every spatial axis: ``[N, C, *spatial] -> [N, C, 1, ...]``."""
    axes = _global_axes("GlobalAveragePool", x)
    return np.asarray(np.mean(x, axis=axes, keepdims=True, dtype=compute_dtype(x.dtype)), dtype=x.dtype)


@op("GlobalMaxPool", inputs=["X"], outputs=["Y"])
def global_max_pool(x: np.ndarray) -> np.ndarray:
    """Max over every spatial axis: ``[N, C, *spatial] -> [N, C, 1, ...]``."""
    axes = _global_axes("GlobalMaxPool", x)
    return np.asarray(np.max(x, axis=axes, keepdims=True), dtype=x.dtype)


@op("GlobalLpPool", inputs=["X"], outputs=["Y"])
def global_lp_pool(x: np.ndarray, *, p: int = 2) -> np.ndarray:
    """``(sum over every spatial axis of |x|^p) ^ (1/p)``, keeping the axes as size 1."""
    axes = _global_axes("GlobalLpPool", x)
    ct = compute_dtype(x.dtype)
    y = np.sum(np.abs(x.astype(ct, copy=False)) ** p, axis=axes, keepdims=True) ** (1.0 / p)
    return np.asarray(y, dtype=x.dtype)


@op("MaxUnpool", inputs=["X", "I", "output_shape?"], outputs=["output"])
def max_unpool(
    x: np.ndarray,
    indices: np.ndarray,
    output_shape: np.ndarray | None,
    *,
    kernel_shape: list[int],
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    """Scatter X into zeros at the flat positions ``I`` (MaxPool's Indices) of a tensor of the inferred shape
    ``(in-1)*stride + kernel - pad_begin - pad_end``; an ``output_shape`` input larger than that is filled by
    zero-padding the inferred result at the end of each axis (as ONNX's reference does)."""
    what = "MaxUnpool"
    _check_input(what, x)
    n = x.ndim - 2
    kernel = _attr_ints("kernel_shape", kernel_shape, n, 1, what)
    s = _attr_ints("strides", strides, n, 1, what)
    pb, pe = _explicit_pads(what, pads, n)
    if indices.shape != x.shape or indices.dtype.kind not in "iu":
        raise OpError(
            f"{what}: I must be integers of X's shape {list(x.shape)}. Received: {indices.dtype}{list(indices.shape)}"
        )
    inferred = [(x.shape[2 + i] - 1) * s[i] - pb[i] - pe[i] + kernel[i] for i in range(n)]
    shape = [*x.shape[:2], *inferred]
    total = math.prod(shape)
    flat = indices.astype(np.int64, copy=False).ravel()
    if flat.size and (flat.min() < 0 or flat.max() >= total):
        raise OpError(f"{what}: indices must lie in [0, {total}) for the output shape {shape}")
    y = np.zeros(total, dtype=x.dtype)
    y[flat] = x.ravel()
    y = y.reshape(shape)
    if output_shape is not None:
        want = [int(v) for v in np.asarray(output_shape).ravel()]
        if len(want) != x.ndim or any(w < i for w, i in zip(want, shape, strict=True)):
            raise OpError(f"{what}: output_shape {want} must have rank {x.ndim} and be at least {shape}")
        y = np.pad(y, [(0, w - i) for w, i in zip(want, shape, strict=True)])
    return y


# --- adaptive pooling (k5 layer ops) ----------------------------------------------------------------------------
def _adaptive_bins(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's bins: ``start = floor(i*size/out)``, ``end = ceil((i+1)*size/out)``; as a padded index table
    ``[out, max_len]`` (padding repeats the bin's last index) and a 0/1 validity mask of the same shape."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    length = end - start
    width = int(length.max())
    j = np.arange(width)
    valid = j[None, :] < length[:, None]
    table = np.minimum(start[:, None] + j[None, :], end[:, None] - 1)
    return table, valid


def _adaptive_setup(what: str, x: np.ndarray, output_size: list[int]) -> list[int]:
    _check_input(what, x)
    n = x.ndim - 2
    if len(output_size) != n or any(o < 1 for o in output_size):
        raise OpError(
            f"{what}: attribute 'output_size' expects {n} positive ints (one per spatial axis). "
            f"Received: output_size={list(output_size)}"
        )
    return list(output_size)


@op(
    "AdaptiveAveragePool",
    inputs=["X"],
    outputs=["Y"],
    decomposes_to="GlobalAveragePool / AveragePool (uniform bins)",
)
def adaptive_average_pool(x: np.ndarray, *, output_size: list[int]) -> np.ndarray:
    """PyTorch's ``adaptive_avg_pool{1,2,3}d``: output bin ``i`` of a spatial axis of size ``in`` averages
    ``[floor(i*in/out), ceil((i+1)*in/out))``. ``Y [N, C, *output_size]``."""
    out = _adaptive_setup("AdaptiveAveragePool", x, output_size)
    ct = compute_dtype(x.dtype)
    y = x.astype(ct, copy=False)
    for i, o in enumerate(out):
        axis = 2 + i
        table, valid = _adaptive_bins(y.shape[axis], o)
        g = np.take(y, table, axis=axis)  # [..., o, width, ...]
        w = (valid / valid.sum(axis=1, keepdims=True)).astype(ct)
        w = w.reshape(w.shape + (1,) * (y.ndim - axis - 1))
        y = np.sum(g * w, axis=axis + 1)
    return np.ascontiguousarray(y, dtype=x.dtype)


@op("AdaptiveMaxPool", inputs=["X"], outputs=["Y"], decomposes_to="GlobalMaxPool / MaxPool (uniform bins)")
def adaptive_max_pool(x: np.ndarray, *, output_size: list[int]) -> np.ndarray:
    """PyTorch's ``adaptive_max_pool{1,2,3}d``: the bins of AdaptiveAveragePool, max per bin.
    ``Y [N, C, *output_size]``."""
    out = _adaptive_setup("AdaptiveMaxPool", x, output_size)
    y = x
    for i, o in enumerate(out):
        axis = 2 + i
        table, _ = _adaptive_bins(y.shape[axis], o)  # padding repeats a member of the bin: harmless for max
        y = np.max(np.take(y, table, axis=axis), axis=axis + 1)
    return np.ascontiguousarray(y, dtype=x.dtype)
