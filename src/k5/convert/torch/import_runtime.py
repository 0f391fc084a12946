"""The run-time helpers of modules built by :func:`k5.convert.torch.to_torch`.

The generated ``torch.fx.GraphModule`` calls these functions where one k5 (ONNX-semantics) op needs more than one
torch call. They use torch only (imported on first call) and know nothing of k5's graph or of the builders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "AnyRankBatchNorm", "k5_adaptive_pool", "k5_cast", "k5_causal_mask", "k5_clip", "k5_constant_of_shape",
    "k5_conv", "k5_conv_transpose", "k5_div", "k5_embedding", "k5_expand", "k5_flatten", "k5_gather", "k5_gemm",
    "k5_global_pool", "k5_hard_sigmoid", "k5_layer_norm", "k5_layer_state", "k5_mha", "k5_mha_mask", "k5_mod",
    "k5_numel", "k5_pad", "k5_pool", "k5_range", "k5_reduce", "k5_reshape", "k5_resize", "k5_reverse_dims",
    "k5_rnn", "k5_rnn_folded", "k5_rnn_out", "k5_shape", "k5_slice", "k5_slice_dyn", "k5_split", "k5_squeeze",
    "k5_unsqueeze", "torch_pads",
]  # fmt: skip


def k5_reshape(x: Any, shape: Any, allowzero: int = 0) -> Any:
    shape = shape.tolist() if hasattr(shape, "tolist") else list(shape)
    if not allowzero:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def k5_flatten(x: Any, axis: int) -> Any:
    axis = axis % x.dim() if x.dim() else 0
    lead = 1
    for d in x.shape[:axis]:
        lead = lead * d
    return x.reshape(lead, -1)


def k5_unsqueeze(x: Any, axes: list[int]) -> Any:
    rank = x.dim() + len(axes)
    for a in sorted(a % rank for a in axes):
        x = x.unsqueeze(a)
    return x


def k5_squeeze(x: Any, axes: list[int] | None) -> Any:
    if axes is None:
        return x.squeeze()
    return x.squeeze(tuple(a % x.dim() for a in axes))


def k5_shape(x: Any, start: int = 0, end: int | None = None) -> Any:
    import torch

    return torch.tensor(list(x.shape)[start:end], dtype=torch.int64)


def k5_gather(x: Any, idx: Any, axis: int) -> Any:
    import torch

    axis = axis % x.dim()
    if not isinstance(idx, torch.Tensor):
        idx = torch.tensor(idx, dtype=torch.int64)
    size = x.shape[axis]
    idx = torch.where(idx < 0, idx + size, idx)
    if idx.dim() == 0:
        return x.select(axis, idx)
    flat = x.index_select(axis, idx.reshape(-1))
    return flat.reshape(list(x.shape[:axis]) + list(idx.shape) + list(x.shape[axis + 1 :]))


def k5_gather_elements(x: Any, index: Any, axis: int) -> Any:
    """ONNX GatherElements: ``torch.gather`` with negative indices counted from the end."""
    import torch

    index = index.long()
    return torch.gather(x, axis, torch.where(index < 0, index + x.shape[axis], index))


def k5_gather_nd(x: Any, index: Any) -> Any:
    """ONNX GatherND (``batch_dims=0``): the last axis of ``index`` addresses the leading axes of ``x``."""
    index = index.long()
    cols = tuple(index[..., i] for i in range(index.shape[-1]))
    return x[tuple(c + (c < 0).long() * x.shape[i] for i, c in enumerate(cols))]


def k5_slice(x: Any, starts: list[int], ends: list[int], axes: list[int] | None, steps: list[int] | None) -> Any:
    rank = x.dim()
    axes = list(range(len(starts))) if axes is None else [a % rank for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * rank
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        size = x.shape[a]
        if st > 0:
            s = max(0, min(size, s + size if s < 0 else s))
            e = max(0, min(size, e + size if e < 0 else e))
            index[a] = slice(s, e, st)
        else:
            raise ValueError("Slice with a negative step")
    return x[tuple(index)]


def k5_expand(x: Any, shape: list[int]) -> Any:
    import torch

    return x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(int(s) for s in shape)))


def k5_constant_of_shape(shape: list[int], value: Any) -> Any:
    import torch

    return torch.full([int(s) for s in shape], value.reshape(-1)[0].item(), dtype=value.dtype)


def k5_div(a: Any, b: Any) -> Any:
    import torch

    if not a.is_floating_point() and not b.is_floating_point():
        return torch.div(a, b, rounding_mode="trunc")
    return a / b


def k5_mod(a: Any, b: Any, fmod: int = 0) -> Any:
    import torch

    return torch.fmod(a, b) if fmod else torch.remainder(a, b)


def k5_gemm(a: Any, b: Any, c: Any, alpha: float, beta: float, trans_a: int, trans_b: int) -> Any:
    a = a.t() if trans_a else a
    b = b.t() if trans_b else b
    y = (a @ b) * alpha if alpha != 1.0 else a @ b
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


def k5_layer_norm(x: Any, scale: Any, bias: Any, axis: int, eps: float) -> Any:
    axis = axis % x.dim()
    dims = list(range(axis, x.dim()))
    import torch

    xf = x.float() if x.dtype == torch.float16 else x
    mean = xf.mean(dim=dims, keepdim=True)
    var = ((xf - mean) ** 2).mean(dim=dims, keepdim=True)
    y = ((xf - mean) / (var + eps).sqrt()).to(x.dtype) * scale
    return y + bias if bias is not None else y


def k5_global_pool(x: Any, kind: str) -> Any:
    dims = tuple(range(2, x.dim()))
    return x.mean(dim=dims, keepdim=True) if kind == "avg" else x.amax(dim=dims, keepdim=True)


def k5_conv(x: Any, w: Any, b: Any, strides: list[int], pads: list[int], dilations: list[int], group: int) -> Any:
    import torch.nn.functional as nnf

    nd = w.dim() - 2
    if pads[:nd] != pads[nd:]:
        x = nnf.pad(x, torch_pads(pads, nd))
        pads = [0] * (2 * nd)
    fn = (nnf.conv1d, nnf.conv2d, nnf.conv3d)[nd - 1]
    return fn(x, w, b, strides, pads[:nd], dilations, group)


def k5_conv_transpose(
    x: Any, w: Any, b: Any, strides: list[int], pads: list[int], out_pad: list[int], dilations: list[int], group: int
) -> Any:
    import torch.nn.functional as nnf

    nd = w.dim() - 2
    fn = (nnf.conv_transpose1d, nnf.conv_transpose2d, nnf.conv_transpose3d)[nd - 1]
    return fn(x, w, b, strides, pads[:nd], out_pad, group, dilations)


def k5_pad(x: Any, pads: list[int], value: Any, mode: str, axes: list[int] | None) -> Any:
    import torch.nn.functional as nnf

    rank = x.dim()
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    n = len(axes)
    full_b, full_e = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        full_b[a], full_e[a] = int(pads[i]), int(pads[n + i])
    first = next((a for a in range(rank) if full_b[a] or full_e[a]), rank)
    nd = rank - first
    tp = torch_pads([*full_b[first:], *full_e[first:]], nd) if nd else []
    torch_mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}[mode]
    if torch_mode == "constant":
        v = float(value.reshape(-1)[0]) if value is not None and hasattr(value, "reshape") else (value or 0.0)
        return nnf.pad(x, tp, value=v)
    return nnf.pad(x, tp, mode=torch_mode)


def k5_pool(
    x: Any, kind: str, kernel: list[int], strides: list[int], pads: list[int], dilations: list[int], ceil: int,
    count_include_pad: int,
) -> Any:  # fmt: skip
    import torch.nn.functional as nnf

    nd = len(kernel)
    if pads[:nd] != pads[nd:]:
        value = float("-inf") if kind == "max" else 0.0
        x = nnf.pad(x, torch_pads(pads, nd), value=value)
        pads = [0] * (2 * nd)
    if kind == "max":
        max_pool: Callable[..., Any] = (nnf.max_pool1d, nnf.max_pool2d, nnf.max_pool3d)[nd - 1]
        return max_pool(x, kernel, strides, pads[:nd], dilations, ceil_mode=bool(ceil))
    avg_pool: Callable[..., Any] = (nnf.avg_pool1d, nnf.avg_pool2d, nnf.avg_pool3d)[nd - 1]
    return avg_pool(x, kernel, strides, pads[:nd], ceil_mode=bool(ceil), count_include_pad=bool(count_include_pad))


def k5_adaptive_pool(x: Any, kind: str, size: list[int]) -> Any:
    import torch.nn.functional as nnf

    nd = len(size)
    pool: Callable[..., Any] = (  # picked by rank: called with an output size of that rank
        (nnf.adaptive_avg_pool1d, nnf.adaptive_avg_pool2d, nnf.adaptive_avg_pool3d)
        if kind == "avg"
        else (nnf.adaptive_max_pool1d, nnf.adaptive_max_pool2d, nnf.adaptive_max_pool3d)
    )[nd - 1]
    return pool(x, size)


def k5_mha_mask(mask: Any, q: Any, k: Any, heads: int) -> Any:
    """A k5 attention mask (broadcastable to [N, heads, Lq, Lk]) in the form nn.MultiheadAttention takes."""
    n, lq, lk = q.shape[0], q.shape[1], k.shape[1]
    if mask.dim() <= 2:
        return mask.expand(lq, lk) if mask.shape != (lq, lk) else mask
    return mask.expand(n, heads, lq, lk).reshape(n * heads, lq, lk)


def k5_causal_mask(q: Any, k: Any) -> Any:
    import torch

    lq, lk = q.shape[1], k.shape[1]
    return torch.ones(lq, lk, dtype=torch.bool, device=q.device).triu(lk - lq + 1)


def k5_mha(mha: Any, q: Any, k: Any, v: Any, mask: Any, kpm: Any, heads: int, causal: int) -> Any:
    if causal:
        mask = k5_causal_mask(q, k)
    elif mask is not None:
        mask = k5_mha_mask(mask, q, k, heads)
    return mha(q, k, v, key_padding_mask=kpm, attn_mask=mask, need_weights=False, is_causal=bool(causal))[0]


def k5_cast(x: Any, dtype: Any) -> Any:
    return x.to(dtype)


def k5_range(start: Any, limit: Any, delta: Any) -> Any:
    import torch

    dtype = start.dtype if hasattr(start, "dtype") else None
    s, e, d = (v.item() if hasattr(v, "item") else v for v in (start, limit, delta))
    return torch.arange(s, e, d, dtype=dtype)


def k5_split(x: Any, sizes: list[int] | None, axis: int, num: int) -> Any:
    if sizes is None:
        size = x.shape[axis]
        chunk = -(-size // num)
        return x.split(chunk, dim=axis)
    return x.split([int(s) for s in sizes], dim=axis)


def k5_resize(x: Any, sizes: list[int] | None, scales: list[float] | None, mode: str, align: bool | None) -> Any:
    import torch.nn.functional as nnf

    kwargs: dict[str, Any] = {}
    if sizes is not None:
        kwargs["size"] = [int(s) for s in sizes[2:]]
    else:
        kwargs["scale_factor"] = [float(s) for s in (scales or [])[2:]]
    nd = x.dim() - 2
    if mode == "nearest":
        return nnf.interpolate(x, mode="nearest", **kwargs)
    torch_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]
    return nnf.interpolate(x, mode=torch_mode, align_corners=align, **kwargs)


def k5_reduce(x: Any, kind: str, axes: list[int] | None, keep: int) -> Any:
    import torch

    dims = tuple(range(x.dim())) if not axes else tuple(axes)
    if kind == "mean":
        return x.mean(dim=dims, keepdim=bool(keep))
    if kind == "sum":
        return x.sum(dim=dims, keepdim=bool(keep))
    if kind == "max":
        return x.amax(dim=dims, keepdim=bool(keep))
    if kind == "min":
        return x.amin(dim=dims, keepdim=bool(keep))
    out = x
    for d in sorted((d % x.dim() for d in dims), reverse=True):
        out = torch.prod(out, dim=d, keepdim=bool(keep))
    return out


def k5_embedding(idx: Any, w: Any) -> Any:
    import torch.nn.functional as nnf

    return nnf.embedding(idx, w)


def k5_clip(x: Any, lo: Any, hi: Any) -> Any:
    import torch

    return torch.clamp(x, lo, hi)


def k5_hard_sigmoid(x: Any, alpha: float, beta: float) -> Any:
    return (x * alpha + beta).clamp(0.0, 1.0)


def k5_rnn_out(y: Any, layout: int, n_dir: int) -> Any:
    """torch's [T, B, D*H] (or [B, T, D*H]) -> ONNX Y [T, D, B, H] (or [B, T, D, H])."""
    h = y.shape[-1] // n_dir
    if layout == 0:
        return y.reshape(y.shape[0], y.shape[1], n_dir, h).transpose(1, 2)
    return y.reshape(y.shape[0], y.shape[1], n_dir, h)


def k5_rnn(mod: Any, x: Any, h0: Any, c0: Any, layout: int, n_dir: int, kind: str) -> Any:
    if layout == 1:
        h0 = h0.transpose(0, 1).contiguous() if h0 is not None else None
        c0 = c0.transpose(0, 1).contiguous() if c0 is not None else None
    if kind == "LSTM":
        state = (h0, c0) if h0 is not None or c0 is not None else None
        if state is not None and (h0 is None or c0 is None):
            ref = h0 if h0 is not None else c0
            state = (
                h0 if h0 is not None else ref.new_zeros(ref.shape),
                c0 if c0 is not None else ref.new_zeros(ref.shape),
            )
        y, (h, c) = mod(x, state)
    else:
        y, h = mod(x, h0)
        c = None
    y = k5_rnn_out(y, layout, n_dir)
    if layout == 1:
        h = h.transpose(0, 1)
        c = c.transpose(0, 1) if c is not None else None
    return y, h, c


def k5_rnn_folded(mod: Any, x: Any, h0: Any, c0: Any, layout: int, n_dir: int, kind: str) -> Any:
    """Run a multi-layer module; returns Y (ONNX form of the last layer) and the torch-form h_n, c_n."""
    if kind == "LSTM":
        state = (h0, c0) if h0 is not None else None
        y, (h, c) = mod(x, state)
    else:
        y, h = mod(x, h0)
        c = None
    return k5_rnn_out(y, layout, n_dir), h, c


def k5_layer_state(s: Any, layer: int, n_dir: int, layout: int) -> Any:
    out = s.narrow(0, layer * n_dir, n_dir)
    return out.transpose(0, 1) if layout == 1 else out


def k5_reverse_dims(x: Any) -> Any:
    return x.permute(*reversed(range(x.dim())))


def k5_slice_dyn(x: Any, starts: Any, ends: Any, axes: Any = None, steps: Any = None) -> Any:
    def lst(v: Any) -> Any:
        return None if v is None else [int(s) for s in (v.tolist() if hasattr(v, "tolist") else v)]

    return k5_slice(x, lst(starts), lst(ends), lst(axes), lst(steps))


def k5_numel(x: Any) -> Any:
    import torch

    return torch.tensor(x.numel(), dtype=torch.int64)


def torch_pads(pads: list[int], nd: int) -> list[int]:
    """ONNX [b1..bn, e1..en] over the last nd axes -> torch's nnf.pad order (last axis first)."""
    out: list[int] = []
    for i in reversed(range(nd)):
        out += [int(pads[i]), int(pads[nd + i])]
    return out


class AnyRankBatchNorm:
    """Factory of a BatchNorm that accepts any input rank >= 2 (k5's BatchNormalization is rank-agnostic)."""

    cls: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls.cls is None:
            import torch

            class BatchNorm(torch.nn.modules.batchnorm._BatchNorm):
                """``nn.BatchNorm1d/2d/3d`` without the input-rank check."""

                def _check_input_dim(self, input: Any) -> None:
                    if input.dim() < 2:
                        raise ValueError(f"expected an input of rank >= 2 (got {input.dim()})")

            BatchNorm.__module__ = __name__
            BatchNorm.__qualname__ = "BatchNorm"  # from_torch converts it like nn.BatchNorm2d
            cls.cls = BatchNorm
        return cls.cls
