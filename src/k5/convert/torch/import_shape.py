"""to_torch builders of shape and indexing ops: reshape, transpose, concat, slice, gather, pad..."""

from __future__ import annotations

from typing import Any

from k5.convert.torch.import_context import Attrs, Builder, ConstValue, unsupported
from k5.convert.torch.import_runtime import (
    k5_constant_of_shape,
    k5_expand,
    k5_flatten,
    k5_gather,
    k5_gather_elements,
    k5_gather_nd,
    k5_numel,
    k5_pad,
    k5_range,
    k5_reshape,
    k5_reverse_dims,
    k5_shape,
    k5_slice,
    k5_slice_dyn,
    k5_split,
    k5_squeeze,
    k5_unsqueeze,
)
from k5.convert.torch.registry import register_builder
from k5.format.model import Node

__all__: list[str] = []


@register_builder("Reshape", how="Tensor.reshape")
def reshape(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    shape = b.static(ins[1])
    return b.call(k5_reshape, ins[0], shape if shape is not None else ins[1], attrs["allowzero"])


@register_builder("Flatten", how="Tensor.reshape")
def flatten(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(k5_flatten, ins[0], attrs["axis"])


@register_builder("Transpose", how="Tensor.permute")
def transpose(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    perm = attrs["perm"]
    if perm is None:
        return b.call(k5_reverse_dims, ins[0])
    return b.call(torch.permute, ins[0], list(perm))


@register_builder("Unsqueeze", how="Tensor.unsqueeze")
def unsqueeze(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    axes = b.static(ins[1]) if len(ins) > 1 else None
    if axes is None:
        raise unsupported(node, "Unsqueeze with run-time axes")
    return b.call(k5_unsqueeze, ins[0], axes)


@register_builder("Squeeze", how="Tensor.squeeze")
def squeeze(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    axes = b.static(ins[1]) if len(ins) > 1 and ins[1] is not None else None
    if len(ins) > 1 and ins[1] is not None and axes is None:
        raise unsupported(node, "Squeeze with run-time axes")
    return b.call(k5_squeeze, ins[0], axes)


@register_builder("Concat", how="torch.cat")
def concat(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    return b.call(torch.cat, [x for x in ins if x is not None], attrs["axis"])


@register_builder("Split", how="Tensor.split")
def split(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    sizes = b.static(ins[1]) if len(ins) > 1 and ins[1] is not None else None
    num = attrs["num_outputs"] if attrs["num_outputs"] is not None else len(node.outputs)
    out = b.call(k5_split, ins[0], sizes, attrs["axis"], num)
    return [b.item(out, i) for i in range(len(node.outputs))]


@register_builder("Slice", how="indexing")
def slice_(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    starts, ends = b.static(ins[1]), b.static(ins[2])
    axes = b.static(ins[3]) if len(ins) > 3 else None
    steps = b.static(ins[4]) if len(ins) > 4 else None
    if starts is None or ends is None or (len(ins) > 3 and ins[3] is not None and axes is None):
        return b.call(k5_slice_dyn, *ins[:5])
    if steps is not None and any(s < 0 for s in steps):
        raise unsupported(node, "Slice with a negative step")
    return b.call(k5_slice, ins[0], starts, ends, axes, steps)


@register_builder("Gather", how="index_select")
def gather(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(k5_gather, ins[0], ins[1], attrs["axis"])


@register_builder("Shape", how="Tensor.shape")
def shape(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(k5_shape, ins[0], attrs["start"], attrs["end"])


@register_builder("Size", how="Tensor.numel")
def size(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(k5_numel, ins[0])


@register_builder("Expand", how="Tensor.expand")
def expand(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    shape = b.static(ins[1])
    return b.call(k5_expand, ins[0], shape if shape is not None else ins[1])


@register_builder("ConstantOfShape", how="torch.full")
def constant_of_shape(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    from k5.convert.torch.dtypes import from_numpy
    from k5.format.model import as_array

    value = from_numpy(as_array(node.weights["value"])) if "value" in node.weights else torch.zeros(1)
    shape = b.static(ins[0])
    return b.call(k5_constant_of_shape, shape if shape is not None else ins[0], ConstValue(value, node.id + ".value"))


@register_builder("Range", how="torch.arange")
def range_(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(k5_range, *ins[:3])


@register_builder("Trilu", how="torch.triu / tril")
def trilu(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    k = b.static(ins[1]) if len(ins) > 1 and ins[1] is not None else [0]
    if k is None:
        raise unsupported(node, "Trilu with a run-time k")
    fn = torch.triu if attrs["upper"] else torch.tril
    return b.call(fn, ins[0], int(k[0]))


@register_builder("Pad", how="nnf.pad")
def pad(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    pads = b.static(ins[1])
    axes = b.static(ins[3]) if len(ins) > 3 else None
    if pads is None:
        raise unsupported(node, "Pad with run-time pads")
    value = ins[2] if len(ins) > 2 else None
    if isinstance(value, ConstValue):
        value = float(value.value.reshape(-1)[0])
    return b.call(k5_pad, ins[0], pads, value, attrs["mode"], axes)


@register_builder("DepthToSpace", how="nnf.pixel_shuffle")
def depth_to_space(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch.nn.functional as nnf

    if attrs["mode"] != "CRD":
        raise unsupported(node, "DepthToSpace mode DCR")
    return b.call(nnf.pixel_shuffle, ins[0], attrs["blocksize"])


@register_builder("GatherElements", how="torch.gather")
def gather_elements(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    return b.call(k5_gather_elements, ins[0], ins[1], int(attrs["axis"]))


@register_builder("GatherND", how="Tensor.__getitem__")
def gather_nd(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    if int(attrs["batch_dims"]) != 0:
        raise unsupported(node, "GatherND with batch_dims != 0")
    return b.call(k5_gather_nd, ins[0], ins[1])
