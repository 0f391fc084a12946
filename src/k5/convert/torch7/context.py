"""The state of one ``.t7`` -> k5 conversion (leaf module shared by the driver and the module converters)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from k5.convert.naming import unique_name
from k5.convert.torch7.reader import T7Object, T7Storage
from k5.convert.torch7.tables import IMPORTERS, nn_name
from k5.errors import ConversionError
from k5.format.model import Node

__all__ = ["ExportContext", "ImportContext", "Value", "children", "module_error"]

Value = str | list["Value"]  # a k5 tensor name, or a Lua table of values

_ID_BAD = re.compile(r"[^A-Za-z0-9_.\-]")


def module_error(path: str, mod: T7Object, message: str) -> ConversionError:
    return ConversionError(message, where=f"module {path or '(root)'} ({mod.class_name})")


class ImportContext:
    """Emitted nodes, unique ids/names, and the rank of every tensor (Lua's modules decide batch mode by rank)."""

    def __init__(self, dtype: str = "float32") -> None:
        self.nodes: list[Node] = []
        self.ids: set[str] = set()
        self.names: set[str] = set()
        self.rank: dict[str, int | None] = {}
        self.dtype = np.dtype(dtype)

    # -- emitting ----------------------------------------------------------------------------------------------
    def add(
        self,
        op: str,
        inputs: Sequence[str],
        node_id: str,
        *,
        attrs: Mapping[str, Any] | None = None,
        weights: Mapping[str, Any] | None = None,
        rank: int | Literal["same"] | None = "same",
    ) -> str:
        """Emit one node with one output (named like its id); ``rank`` of the output defaults to the first input's."""
        nid = unique_name(_ID_BAD.sub("_", node_id) or "node", self.ids)
        out = unique_name(nid, self.names)
        self.nodes.append(Node(nid, op, list(inputs), [out], dict(attrs or {}), dict(weights or {})))
        if rank == "same":
            self.rank[out] = self.rank.get(inputs[0]) if inputs else None
        else:
            self.rank[out] = rank
        return out

    def const(self, value: Any, node_id: str, dtype: Any = None) -> str:
        arr = np.asarray(value, dtype=dtype)
        return self.add("Constant", [], node_id, weights={"value": arr}, rank=arr.ndim)

    def weight(self, mod: T7Object, key: str, path: str, *, required: bool = True) -> np.ndarray | None:
        """A tensor field of ``mod`` as an array of the model's float dtype (None when absent and optional)."""
        value = mod.get(key)
        if isinstance(value, T7Storage):
            value = value.data
        if not isinstance(value, np.ndarray) or value.size == 0:
            if required:
                raise module_error(path, mod, f"has no tensor {key!r}")
            return None
        return np.ascontiguousarray(value, dtype=self.dtype)

    # -- walking the module tree -------------------------------------------------------------------------------
    def module(self, mod: Any, path: str, x: Value) -> Value:
        if not isinstance(mod, T7Object):
            raise ConversionError(f"expected an nn module. Received: {type(mod).__name__}", where=f"module {path}")
        name = nn_name(mod.class_name)
        fn = IMPORTERS.get(name) if name is not None else None
        if fn is None:  # the driver lists every unsupported module before converting; this is a safety net
            raise module_error(path, mod, "is not supported")
        result: Value = fn(self, mod, path, x)
        return result

    def tensor(self, x: Value, path: str, mod: T7Object) -> str:
        if not isinstance(x, str):
            raise module_error(path, mod, f"expects a tensor input. Received: a table of {len(x)} values")
        return x

    def table(self, x: Value, path: str, mod: T7Object) -> list[Value]:
        if isinstance(x, str):
            raise module_error(path, mod, "expects a table of inputs. Received: one tensor")
        return x


def children(mod: T7Object) -> list[Any]:
    """A container's ``modules`` in order (Lua arrays are 1-based tables)."""
    table = mod.get("modules")
    if table is None:
        return []
    values = table.array() if hasattr(table, "array") else None
    if values is None:
        raise ConversionError(f"{mod.class_name}: 'modules' is not a Lua array")
    return values


class ExportContext:
    """What layout converters need to know about a k5 graph: constant values and every tensor's shape."""

    def __init__(self, consts: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]) -> None:
        self.consts = consts
        self.shapes = shapes

    def shape(self, name: str, node: Node) -> tuple[int, ...]:
        if name not in self.shapes:
            raise ConversionError(f"the shape of {name!r} is unknown", where=node.label)
        return self.shapes[name]

    def const(self, node: Node, i: int, what: str) -> np.ndarray | None:
        """The value of input ``i`` when a ``Constant`` node computes it; None when the input is omitted."""
        if i >= len(node.inputs) or not node.inputs[i]:
            return None
        name = node.inputs[i]
        if name not in self.consts:
            raise ConversionError(f"input {what!r} must be a constant for Torch7. Received: tensor {name!r}",
                                  where=node.label)  # fmt: skip
        return self.consts[name]
