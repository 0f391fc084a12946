"""to_torch builders of reductions, pooling and resampling."""

from __future__ import annotations

from typing import Any

from k5.convert.torch.import_context import Attrs, Builder, unsupported
from k5.convert.torch.import_runtime import k5_adaptive_pool, k5_global_pool, k5_pool, k5_reduce, k5_resize
from k5.convert.torch.registry import register_builder
from k5.format.model import Node

__all__: list[str] = []


@register_builder(
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", how="torch.mean / sum / amax / amin / prod"
)
def reduce(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    kind = node.op[len("Reduce") :].lower()
    axes = b.static(ins[1]) if len(ins) > 1 and ins[1] is not None else None
    if len(ins) > 1 and ins[1] is not None and axes is None:
        raise unsupported(node, f"{node.op} with run-time axes")
    if not axes and attrs["noop_with_empty_axes"]:
        return ins[0]
    return b.call(k5_reduce, ins[0], kind, axes, attrs["keepdims"])


@register_builder("ArgMax", "ArgMin", how="torch.argmax / argmin")
def argmax(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    if attrs["select_last_index"]:
        raise unsupported(node, "select_last_index=1")
    fn = torch.argmax if node.op == "ArgMax" else torch.argmin
    return b.call(fn, ins[0], attrs["axis"], bool(attrs["keepdims"]))


@register_builder("CumSum", how="torch.cumsum")
def cumsum(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    axis = b.static(ins[1])
    if axis is None or attrs["exclusive"] or attrs["reverse"]:
        raise unsupported(node, "CumSum with run-time axis, exclusive or reverse")
    return b.call(torch.cumsum, ins[0], int(axis[0]))


def _pool_attrs(node: Node, attrs: Attrs) -> tuple[list[int], list[int], list[int], list[int], int]:
    if attrs["auto_pad"] not in ("NOTSET", "VALID"):
        raise unsupported(node, f"auto_pad={attrs['auto_pad']!r}")
    kernel: list[int] = attrs["kernel_shape"]
    nd = len(kernel)  # absent strides/pads/dilations: one per spatial axis of the kernel
    strides, pads, dil = attrs["strides"] or [1] * nd, attrs["pads"] or [0] * (2 * nd), attrs["dilations"] or [1] * nd
    return kernel, strides, pads, dil, attrs["ceil_mode"]


@register_builder("MaxPool", how="nnf.max_pool1d/2d/3d")
def max_pool(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise unsupported(node, "MaxPool's Indices output")
    kernel, strides, pads, dil, ceil = _pool_attrs(node, attrs)
    return b.call(k5_pool, ins[0], "max", kernel, strides, pads, dil, ceil, 0)


@register_builder("AveragePool", how="nnf.avg_pool1d/2d/3d")
def avg_pool(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    kernel, strides, pads, dil, ceil = _pool_attrs(node, attrs)
    nd = len(kernel)
    cip = attrs["count_include_pad"]
    if pads[:nd] != pads[nd:] and not cip:
        raise unsupported(node, "AveragePool with asymmetric pads and count_include_pad=0")
    if any(d != 1 for d in dil):
        raise unsupported(node, "AveragePool with dilations")
    return b.call(k5_pool, ins[0], "avg", kernel, strides, pads, dil, ceil, cip)


@register_builder("GlobalAveragePool", "GlobalMaxPool", how="Tensor.mean / amax")
def global_pool(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(k5_global_pool, ins[0], "avg" if node.op == "GlobalAveragePool" else "max")


@register_builder("AdaptiveAveragePool", "AdaptiveMaxPool", how="nnf.adaptive_avg_pool / adaptive_max_pool")
def adaptive_pool(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    kind = "avg" if node.op == "AdaptiveAveragePool" else "max"
    return b.call(k5_adaptive_pool, ins[0], kind, attrs["output_size"])


@register_builder("Resize", how="nnf.interpolate")
def resize(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    mode, ctm, nearest = attrs["mode"], attrs["coordinate_transformation_mode"], attrs["nearest_mode"]
    scales = b.static(ins[2]) if len(ins) > 2 and ins[2] is not None else None
    sizes = b.static(ins[3]) if len(ins) > 3 and ins[3] is not None else None
    if scales is None and sizes is None:
        raise unsupported(node, "Resize with run-time scales/sizes")
    if mode == "nearest" and (ctm != "asymmetric" or nearest != "floor"):
        raise unsupported(node, f"Resize nearest with {ctm}/{nearest}")
    if mode == "linear" and ctm not in ("pytorch_half_pixel", "half_pixel", "align_corners"):
        raise unsupported(node, f"Resize linear with {ctm}")
    if mode not in ("nearest", "linear"):
        raise unsupported(node, f"Resize mode {mode!r}")
    align = (ctm == "align_corners") if mode == "linear" else None
    return b.call(k5_resize, ins[0], sizes, [float(s) for s in scales] if scales else None, mode, align)
