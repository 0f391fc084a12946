"""k5 op -> PyTorch builders that the ``transformers`` zoo needs beyond :mod:`.import_ops`.

Same contract as :mod:`.import_ops`: a builder is ``fn(b, node, ins) -> output value(s)``, registered in
:data:`~k5.convert.torch.registry.IMPORTERS`; attribute values are read from the op registry's defaults when absent.
"""

from __future__ import annotations

from typing import Any

from k5.convert.torch.registry import IMPORTERS
from k5.format.model import Node
from k5.ops import find_schema

__all__: list[str] = []


def _attr(node: Node, name: str) -> Any:
    """Attribute ``name`` of ``node``, or the default its op declares in the registry."""
    if name in node.attrs:
        return node.attrs[name]
    schema = find_schema(node.op, "k5")
    assert schema is not None, node.op
    return schema.attrs[name].default


def _k5_gather_elements(x: Any, index: Any, axis: int) -> Any:
    """ONNX GatherElements: ``torch.gather`` with negative indices counted from the end."""
    import torch

    index = index.long()
    return torch.gather(x, axis, torch.where(index < 0, index + x.shape[axis], index))


@IMPORTERS.register("GatherElements", produces=["torch.gather"])
def gather_elements(b: Any, node: Node, ins: list[Any]) -> Any:
    return b.call(_k5_gather_elements, ins[0], ins[1], int(_attr(node, "axis")))


def _k5_gather_nd(x: Any, index: Any) -> Any:
    """ONNX GatherND (``batch_dims=0``): the last axis of ``index`` addresses the leading axes of ``x``."""
    index = index.long()
    k = index.shape[-1]
    cols = tuple(index[..., i] for i in range(k))
    return x[tuple(c + (c < 0).long() * x.shape[i] for i, c in enumerate(cols))]


@IMPORTERS.register("GatherND", produces=["Tensor.__getitem__"])
def gather_nd(b: Any, node: Node, ins: list[Any]) -> Any:
    from k5.errors import ConversionError

    if int(_attr(node, "batch_dims")) != 0:
        raise ConversionError("GatherND with batch_dims != 0 is not supported by to_torch", where=node.label)
    return b.call(_k5_gather_nd, ins[0], ins[1])


@IMPORTERS.register("BitwiseAnd", "BitwiseOr", "BitwiseXor", produces=["torch.bitwise_and / or / xor"])
def bitwise(b: Any, node: Node, ins: list[Any]) -> Any:
    import torch

    fn = {"BitwiseAnd": torch.bitwise_and, "BitwiseOr": torch.bitwise_or, "BitwiseXor": torch.bitwise_xor}[node.op]
    return b.call(fn, ins[0], ins[1])
