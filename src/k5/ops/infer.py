"""Static dtypes of a graph's values, from each op's declared output dtype rule (``@op(..., out_dtype=...)``).

Used where a graph is not run: the ONNX exporter (which needs a mask's dtype to choose how to write it) and
``k5 inspect`` (the dtype of every node output). A value whose dtype no rule can tell (the outputs of control flow,
an op of a custom domain) is left out.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np

from k5.errors import K5Error
from k5.format.dtypes import from_numpy
from k5.format.model import Graph, Node, weight_dtype
from k5.ops.registry import find_schema

__all__ = ["infer_dtypes", "node_output_dtypes", "value_dtype"]


def value_dtype(value: Any) -> str | None:
    """The k5 dtype name of a runtime value: an array's, a sequence's elements' (None when empty or absent)."""
    if isinstance(value, list):
        return value_dtype(value[0]) if value else None
    if isinstance(value, (np.ndarray, np.generic)):
        try:
            return from_numpy(value.dtype)
        except K5Error:  # a NumPy dtype outside k5 (strings, objects) has no k5 name
            return None
    return None


def node_output_dtypes(node: Node, known: Mapping[str, str], version: int | None = None) -> list[str | None]:
    """The dtype of each output of ``node`` from its op's rule, given the dtypes ``known`` by value name."""
    schema = find_schema(node.op, node.domain, version)
    if schema is None:
        return [None] * len(node.outputs)
    dtypes: list[str | None] = []
    for i in range(max(len(schema.inputs), len(node.inputs))):
        name = node.inputs[i] if i < len(node.inputs) else ""
        spec = schema.inputs[min(i, len(schema.inputs) - 1)] if schema.inputs else None
        if name:
            dtypes.append(known.get(name))
        elif spec is not None and spec.param and spec.name in node.weights and not spec.variadic:
            dtypes.append(weight_dtype(node.weights[spec.name]))
        else:
            dtypes.append(None)
    return schema.output_dtypes(dtypes, node.attrs, len(node.outputs))


def infer_dtypes(graph: Graph, known: Mapping[str, str] | None = None) -> dict[str, str]:
    """Value name -> dtype for every value of ``graph`` (nested graphs included) that declarations or rules give.

    A dtype declared in a graph (its inputs, outputs, value_info) is kept as declared; ``known`` gives the dtypes
    of values from outside (an enclosing graph's).
    """
    found: dict[str, str] = {}
    _walk(graph, ChainMap(found, dict(known or {})), found)
    return found


def _walk(graph: Graph, scope: MutableMapping[str, str], out: dict[str, str]) -> None:
    declared = {name: info.dtype for name, info in graph.infos().items() if info.dtype}
    out.update(declared)
    scope.update(declared)
    for node in graph.nodes:
        for name, dtype in zip(node.outputs, node_output_dtypes(node, scope), strict=False):
            if name and dtype and name not in declared:
                out[name] = dtype
                scope[name] = dtype
        for _, sub in node.subgraphs():
            _walk(sub, ChainMap({}, scope), out)
