"""Shared data types of the Keras converter: a layer call read from a Keras config, and the k5 graph builder.

Leaf module: it imports neither Keras nor the converter modules. Layout bookkeeping lives here:

- a Keras tensor is channels-last; k5's layer ops (Conv, pooling, BatchNormalization...) are channels-first;
- every converted value carries a *layout*: ``"k"`` (the Keras order), ``"cf"`` (the Keras tensor with its last
  axis moved to position 1, i.e. NHWC -> NCHW), or ``"flatcf"`` (a Flatten of a ``"cf"`` value: the Keras
  features in channels-first order, which a following Dense folds into its kernel);
- :meth:`Builder.get` returns a value in the layout a converter asks for, inserting one Transpose the first time and
  reusing it afterwards, so a run of channels-first layers pays for one Transpose in and one out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from k5.convert.naming import unique_name
from k5.errors import ConversionError
from k5.format.model import Node

__all__ = ["Builder", "LayerCall", "Val", "to_cf_perm", "to_k_perm"]


def to_cf_perm(rank: int) -> list[int]:
    """The Transpose perm taking a channels-last tensor of ``rank`` to channels-first."""
    return [0, rank - 1, *range(1, rank - 1)]


def to_k_perm(rank: int) -> list[int]:
    """The Transpose perm taking a channels-first tensor back to channels-last."""
    return [0, *range(2, rank), 1]


@dataclass
class Val:
    """A converted Keras tensor: the k5 tensor ``name`` holding it in ``layout``; ``rank`` of the Keras tensor."""

    name: str
    layout: str  # "k", "cf" or "flatcf"
    rank: int | None = None
    flat_shape: tuple[int, ...] = ()  # for "flatcf": the Keras (channels-last) shape without the batch axis
    views: dict[str, str] = field(default_factory=dict)  # layout -> k5 tensor already holding it


@dataclass
class LayerCall:
    """One call of a Keras layer: its class, config, weights (in ``layer.get_weights()`` order) and inputs."""

    class_name: str
    name: str  # node id base: the Keras layer name (a shared layer's later calls get a suffix)
    config: dict[str, Any]
    weights: list[np.ndarray]
    inputs: list[Val]
    in_shapes: list[list[int | None] | None]
    in_dtypes: list[str | None] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    arg_structure: Any = None  # tensor role (e.g. "query") -> index in ``inputs``
    args: list[Any] = field(default_factory=list)  # positional args, tensors as {config.TENSOR: index}

    def where(self) -> str:
        return f"layer {self.name!r} ({self.class_name})"

    def error(self, message: str) -> ConversionError:
        return ConversionError(message, where=self.where())

    def weight(self, i: int, count: int | None = None) -> np.ndarray:
        if count is not None and len(self.weights) != count:
            raise self.error(f"expects {count} weights. Received: {len(self.weights)}")
        if i >= len(self.weights):
            raise self.error(f"expects at least {i + 1} weights. Received: {len(self.weights)}")
        return np.asarray(self.weights[i])


class Builder:
    """Accumulates k5 nodes; hands out unique node ids and tensor names."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.ids: set[str] = set()
        self.names: set[str] = set()
        self._consts: dict[tuple[str, bytes, tuple[int, ...]], str] = {}

    def name(self, base: str) -> str:
        return unique_name(base, self.names)

    def add(
        self,
        op: str,
        inputs: Sequence[str],
        *,
        id: str,
        attrs: dict[str, Any] | None = None,
        weights: dict[str, Any] | None = None,
        n_out: int = 1,
        out: str | None = None,
    ) -> list[str]:
        node_id = unique_name(id, self.ids)
        outs = [self.name(out or node_id if i == 0 else f"{node_id}:{i}") for i in range(n_out)]
        self.nodes.append(Node(node_id, op, list(inputs), outs, dict(attrs or {}), dict(weights or {})))
        return outs

    def add1(self, op: str, inputs: Sequence[str], *, id: str, **kw: Any) -> str:
        return self.add(op, inputs, id=id, **kw)[0]

    def const(self, value: Any, hint: str, *, dtype: Any = None) -> str:
        arr = np.asarray(value, dtype=dtype)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        key = (str(arr.dtype), arr.tobytes(), arr.shape)
        if arr.size <= 16 and key in self._consts:
            return self._consts[key]
        out = self.add1("Constant", [], id=hint, weights={"value": np.array(arr, order="C")})
        if arr.size <= 16:
            self._consts[key] = out
        return out

    def ints(self, values: Sequence[int], hint: str) -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), hint)

    # -- layouts ----------------------------------------------------------------------------------------------
    def get(self, val: Val, layout: str) -> str:
        """``val``'s tensor in ``layout`` ("k" or "cf"), adding (once) the Transposes that produce it."""
        if val.layout == layout or val.rank is None or (val.rank <= 2 and "flatcf" not in (val.layout, layout)):
            return val.name
        if layout in val.views:
            return val.views[layout]
        base = val.name
        if val.layout == "flatcf":
            if layout != "k":
                raise ConversionError(f"tensor {val.name!r}: cannot view a flattened tensor as {layout!r}")
            shape = val.flat_shape
            rank = len(shape) + 1
            cf_shape = [0, shape[-1], *shape[:-1]]
            x = self.add1("Reshape", [val.name, self.ints(cf_shape, f"{base}.cf_shape")], id=f"{base}.unflatten")
            x = self.add1("Transpose", [x], id=f"{base}.to_channels_last", attrs={"perm": to_k_perm(rank)})
            out = self.add1("Flatten", [x], id=f"{base}.flatten", attrs={"axis": 1})
        elif val.layout == "k" and layout == "cf":
            out = self.add1("Transpose", [val.name], id=f"{base}.to_channels_first",
                            attrs={"perm": to_cf_perm(val.rank)})
        elif val.layout == "cf" and layout == "k":
            out = self.add1("Transpose", [val.name], id=f"{base}.to_channels_last",
                            attrs={"perm": to_k_perm(val.rank)})
        else:
            raise ConversionError(f"tensor {val.name!r}: no way from layout {val.layout!r} to {layout!r}")
        val.views[layout] = out
        return out

    def common(self, vals: Sequence[Val]) -> tuple[list[str], str]:
        """The tensors of ``vals`` in one layout (the first's when every value can take it, else "k")."""
        layouts = {v.layout for v in vals if v.rank is None or v.rank > 2 or v.layout == "flatcf"}
        layout = vals[0].layout if len(layouts) <= 1 else "k"
        if layout == "flatcf" and len(layouts) > 1:
            layout = "k"
        if layout == "flatcf":
            shapes = {v.flat_shape for v in vals}
            if len(shapes) > 1:
                layout = "k"
        return [v.name if v.layout == layout else self.get(v, layout) for v in vals], layout


def axis_in(layout: str, axis: int, rank: int) -> int:
    """The axis of a ``layout`` tensor that holds Keras axis ``axis`` of a rank-``rank`` tensor."""
    a = axis % rank
    if layout != "cf" or rank <= 2:
        return a
    return to_cf_perm(rank).index(a)
