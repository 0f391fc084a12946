"""Lua Torch7 ``.t7`` -> k5: read the file with the safe reader, then map the ``nn`` module tree onto k5 nodes.

Phases: read (:func:`~k5.convert.torch7.reader.read_t7`), find the root module, list every unsupported module at
once (and refuse a module that contains itself), guess the input rank when no ``input_shape`` is given, convert
module by module (:mod:`.import_modules`), and wrap the nodes in a :class:`Model`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

from k5.convert.torch7.context import ImportContext, Value, children
from k5.convert.torch7.reader import T7Object, T7Table, read_t7
from k5.convert.torch7.tables import IMPORTERS, nn_name
from k5.errors import ConversionError, K5Error, UnsupportedOpsError
from k5.format.model import Graph, Metadata, Model, TensorInfo

__all__ = ["find_root", "from_torch7", "t7_to_model"]

# leaf modules whose input is a batch of vectors ([N, features]); others are taken to see [N, C, H, W] images
_VECTOR_INPUT = {"Linear", "BatchNormalization", "View", "Reshape", "Normalize", "SoftMax", "LogSoftMax"}


def find_root(obj: Any) -> T7Object:
    """The module in a ``.t7`` file: the saved object itself, or the ``model``/``net`` entry of a saved table."""
    if isinstance(obj, T7Object):
        return obj
    if isinstance(obj, T7Table):
        for key in ("model", "net", "network", "module"):
            if isinstance(obj.get(key), T7Object):
                return obj[key]
    raise ConversionError(f"the file holds a {type(obj).__name__}, not an nn module (nor a table with a 'model')")


def _check_tree(root: T7Object) -> list[str]:
    """Leaf class names in depth-first order; raises listing every unsupported class, or on a module cycle."""
    unsupported: Counter[str] = Counter()
    leaves: list[str] = []
    stack: list[tuple[Any, str, frozenset[int]]] = [(root, "(root)", frozenset())]
    visited = 0
    while stack:
        mod, path, above = stack.pop()
        visited += 1
        if visited > 1_000_000:
            raise ConversionError("the module tree has more than a million modules")
        if not isinstance(mod, T7Object):
            raise ConversionError(f"module {path} is a {type(mod).__name__}, not an nn module")
        if id(mod) in above:
            raise ConversionError(f"module {path} ({mod.class_name}) contains itself (a reference cycle)")
        name = nn_name(mod.class_name)
        if name is None or name not in IMPORTERS:
            unsupported[mod.class_name] += 1
            continue
        kids = children(mod)
        if not kids:
            leaves.append(name)
        inner = above | {id(mod)}
        for i in range(len(kids), 0, -1):
            stack.append((kids[i - 1], f"{path if path != '(root)' else ''}.{i}".lstrip("."), inner))
    if unsupported:
        raise UnsupportedOpsError("Torch7", dict(unsupported))
    return leaves


def _guess_shape(leaves: list[str]) -> list[int | str]:
    first = leaves[0] if leaves else "SpatialConvolution"
    return ["batch", "features"] if first in _VECTOR_INPUT else ["batch", "channels", "height", "width"]


def _flatten(value: Value) -> list[str]:
    return [value] if isinstance(value, str) else [t for v in value for t in _flatten(v)]


def t7_to_model(
    obj: Any,
    *,
    input_shape: Sequence[int | str] | None = None,
    input_name: str = "input",
    dtype: str = "float32",
) -> Model:
    """A k5 model from a parsed ``.t7`` object (see :func:`from_torch7`)."""
    root = find_root(obj)
    leaves = _check_tree(root)
    shape = list(input_shape) if input_shape is not None else _guess_shape(leaves)
    cx = ImportContext(dtype)
    cx.names.add(input_name)
    cx.rank[input_name] = len(shape)
    outputs = _flatten(cx.module(root, "", input_name))
    infos = []
    for i, out in enumerate(outputs):
        if out == input_name or out in outputs[:i]:  # a graph output must be produced by a node of its own
            out = cx.add("Identity", [out], f"output_{i}")
        infos.append(TensorInfo(out, dtype))
    graph = Graph(cx.nodes, [TensorInfo(input_name, dtype, shape)], infos)
    return Model(graph, metadata=Metadata(producer="Lua Torch7 (.t7) via k5.from_torch7"))


def from_torch7(
    path: str | os.PathLike[str],
    *,
    input_shape: Sequence[int | str] | None = None,
    input_name: str = "input",
    dtype: str = "float32",
    ascii: bool | None = None,
    long_size: int | None = None,
) -> Model:
    """Read a Lua Torch7 network (``torch.save`` file, binary or ASCII) into a k5 model.

    ``input_shape``: the input's shape (symbolic dims allowed); by default ``[batch, features]`` when the first
    layer takes vectors, else ``[batch, channels, height, width]``. Weights become ``dtype`` (Lua nets are often
    saved as DoubleTensors). Unsupported modules are listed all at once in an :class:`UnsupportedOpsError`.
    """
    where = os.path.basename(os.fspath(path))
    obj = read_t7(path, ascii=ascii, long_size=long_size)
    try:
        model = t7_to_model(obj, input_shape=input_shape, input_name=input_name, dtype=dtype)
    except K5Error as e:
        raise e.located(where) from None
    model.metadata.extra["source"] = where
    return model
