"""The in-memory object model of a k5 file. No I/O here.

A :class:`Model` holds a :class:`Graph` of :class:`Node` objects. A node owns its weights (``node.weights``, a dict
from parameter name to an array: a NumPy array, or a lazy tensor that reads from the file on first use). Nested
graphs (the bodies of ``If``/``Loop``/``Scan``) are attribute values of type :class:`Graph`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from k5.errors import MissingWeightError
from k5.format.dtypes import dtype_of, from_numpy

__all__ = [
    "DEFAULT_DOMAIN",
    "ArrayLike",
    "DataSplit",
    "Dim",
    "Graph",
    "Metadata",
    "Model",
    "Node",
    "Shape",
    "TensorInfo",
    "ValidationPair",
    "WeightSpec",
    "as_array",
    "weight_dtype",
    "weight_shape",
]

DEFAULT_DOMAIN = "k5"

Dim = int | str  # a fixed size, or a symbol such as "batch"
Shape = list[Dim] | None  # None: rank unknown


@dataclass
class TensorInfo:
    """A named value with a dtype (k5 name) and a possibly symbolic shape.

    ``kind`` is "tensor" (the usual case), "sequence" (a list of tensors of ``dtype``/``shape``), "optional"
    (a tensor that may be absent, ``None``) or "optional_sequence" (a sequence that may be absent).
    """

    name: str
    dtype: str | None = None
    shape: Shape = None
    kind: str = "tensor"

    def __post_init__(self) -> None:
        if self.dtype is not None:
            dtype_of(self.dtype, where=f"tensor {self.name!r}")
        if self.shape is not None:
            self.shape = list(self.shape)


@runtime_checkable
class ArrayLike(Protocol):
    """What a weight value must offer: NumPy arrays and k5's lazy tensors both do."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype: ...

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray: ...


@dataclass(frozen=True)
class WeightSpec:
    """A weight declared in the network JSON (dtype and shape) whose data is not attached."""

    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * dtype_of(self.dtype).itemsize


def weight_dtype(value: Any) -> str:
    """The k5 dtype name of a weight value (array, lazy tensor or :class:`WeightSpec`)."""
    if isinstance(value, WeightSpec):
        return value.dtype
    k5_dtype = getattr(value, "k5_dtype", None)
    if isinstance(k5_dtype, str):
        return k5_dtype
    return from_numpy(np.asarray(value).dtype if not hasattr(value, "dtype") else value.dtype)


def weight_shape(value: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in (value.shape if hasattr(value, "shape") else np.shape(value)))


def as_array(value: Any) -> np.ndarray:
    """Materialise a weight value as a NumPy array (reads a lazy tensor)."""
    if isinstance(value, WeightSpec):
        raise MissingWeightError("has no data attached (a WeightSpec declaration only)")
    return np.asarray(value)


@dataclass
class Node:
    """One op application.

    ``inputs`` name tensors (``""`` marks an omitted optional input). An input the op schema marks as a parameter
    (e.g. Conv's ``weight``) may instead be owned by the node: then it is absent from ``inputs`` and present in
    ``weights`` under the parameter's name.
    """

    id: str
    op: str
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)
    domain: str = DEFAULT_DOMAIN
    doc: str = ""

    @property
    def label(self) -> str:
        """How errors name this node: ``node 'conv1' (Conv)``."""
        op = self.op if self.domain == DEFAULT_DOMAIN else f"{self.domain}.{self.op}"
        return f"node {self.id!r} ({op})"

    def subgraphs(self) -> Iterator[tuple[str, Graph]]:
        """(attribute name, graph) for every nested graph held in the attributes."""
        for name, value in self.attrs.items():
            if isinstance(value, Graph):
                yield name, value
            elif isinstance(value, list):
                for i, g in enumerate(value):
                    if isinstance(g, Graph):
                        yield f"{name}[{i}]", g


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)
    value_info: list[TensorInfo] = field(default_factory=list)  # optional: known intermediate shapes
    name: str = ""

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def walk(self) -> Iterator[tuple[tuple[str, ...], Node]]:
        """Every node, nested graphs included, with the path of (owner id, attr name) pairs leading to it."""
        for n in self.nodes:
            yield (), n
            for attr, sub in n.subgraphs():
                for path, m in sub.walk():
                    yield (n.id, attr, *path), m

    def infos(self) -> dict[str, TensorInfo]:
        """Everything known about named values: inputs, outputs, value_info."""
        out: dict[str, TensorInfo] = {}
        for t in (*self.value_info, *self.inputs, *self.outputs):
            out.setdefault(t.name, t)
        return out


@dataclass
class Metadata:
    author: str = ""
    description: str = ""
    license: str = ""
    producer: str = ""
    created: str = ""  # ISO 8601
    extra: dict[str, str] = field(default_factory=dict)  # free-form key/values


@dataclass
class ValidationPair:
    """A reference input per graph input and the outputs the producing framework computed for it."""

    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    rtol: float = 1e-4
    atol: float = 1e-5


@dataclass
class DataSplit:
    """Optional training or evaluation data (``data`` and ``labels``), possibly large and read in slices."""

    data: Any = None
    labels: Any = None


@dataclass
class Model:
    graph: Graph
    opset: dict[str, int] = field(default_factory=lambda: {DEFAULT_DOMAIN: 1})
    metadata: Metadata = field(default_factory=Metadata)
    validation: ValidationPair | None = None
    training: DataSplit | None = None
    evaluate: DataSplit | None = None
    path: str | None = None  # the file this model was loaded from, if any
    _source: Any = field(default=None, repr=False, compare=False)  # open file backing lazy weights

    # -- convenience --------------------------------------------------------------------------------------------
    @property
    def nodes(self) -> list[Node]:
        return self.graph.nodes

    def weights(self) -> dict[str, Any]:
        """All weights of the top-level graph and nested graphs, keyed ``<node>/<param>`` (nested: full path)."""
        out: dict[str, Any] = {}
        for path, node in self.graph.walk():
            prefix = "/".join((*path, node.id))
            for name, value in node.weights.items():
                out[f"{prefix}/{name}"] = value
        return out

    def num_parameters(self) -> int:
        return sum(int(np.prod(weight_shape(v), dtype=np.int64)) for v in self.weights().values())

    def close(self) -> None:
        """Release the file behind lazy weights; weights not yet read become unreadable."""
        if self._source is not None:
            self._source.close()
            self._source = None

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def input_names(self) -> list[str]:
        return [t.name for t in self.graph.inputs]

    def output_names(self) -> list[str]:
        return [t.name for t in self.graph.outputs]
