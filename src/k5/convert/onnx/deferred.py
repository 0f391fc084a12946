"""Writing an ONNX file without holding its weights in memory (k5 -> ONNX).

``to_onnx`` builds a complete ``ModelProto``: every weight is copied into protobuf, and serializing copies it again.
For a file, :func:`k5.convert.onnx.write_onnx` builds the proto with *placeholders* instead: each large weight is a
``TensorProto`` with its name, type and dims, marked as external data (so ONNX shape inference and the opset checks
read the structure without the bytes), and the weight itself stays where it is (a memory-mapped k5 weight, or a
transpose computed when written). The file is then written as protobuf wire format by hand, the small proto
serialized once and each weight streamed from its array into the file (inline, as ``raw_data``), or into a data
file beside it (ONNX external data). Peak memory: the largest weight, not the model.

Protobuf's encoding makes this simple: a message is the concatenation of its fields in any order, and a
length-delimited field is ``key, varint(length), bytes``. So ``ModelProto = <model without graph> + key(graph) +
len + <graph without the deferred initializers> + (key(initializer) + len + <tensor header> + key(raw_data) + len +
<weight bytes>)*``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from k5.convert.onnx.wire import encode_varint
from k5.errors import K5Error
from k5.format.model import as_array, weight_dtype, weight_shape

__all__ = [
    "DEFER_BYTES",
    "PLACEHOLDER",
    "PLAIN_DTYPES",
    "Deferred",
    "deferrable",
    "fill",
    "nbytes",
    "placeholder",
    "transposed",
    "write_external",
    "write_inline",
    "write_proto",
]

#: weights of at least this many bytes are deferred (smaller ones, such as shapes, stay in the proto)
DEFER_BYTES = 1024
#: the external-data location that marks a placeholder (never a file name: it has a colon and a space)
PLACEHOLDER = "k5: deferred weight"
#: dtypes whose raw little-endian bytes are ONNX's raw_data for the same element type
PLAIN_DTYPES = (
    "float32", "float16", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
)  # fmt: skip


class Deferred:
    """A weight value read when needed: ``source`` (array, lazy tensor), transposed (2-D) when ``transpose``."""

    __slots__ = ("source", "transpose")

    def __init__(self, source: Any, *, transpose: bool = False) -> None:
        self.source = source
        self.transpose = transpose

    @property
    def shape(self) -> tuple[int, ...]:
        shape = weight_shape(self.source)
        return shape[::-1] if self.transpose else shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(getattr(self.source, "dtype", None) or np.asarray(self.source).dtype)

    @property
    def k5_dtype(self) -> str:
        return weight_dtype(self.source)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = as_array(self.source)
        arr = np.ascontiguousarray(arr.T if self.transpose else arr)
        return arr if dtype is None else arr.astype(dtype)


def transposed(value: Any) -> Deferred:
    """``value.T`` (C order), computed when read."""
    return Deferred(value, transpose=True)


def nbytes(value: Any) -> int:
    """The byte size of a weight value (array, lazy tensor, :class:`Deferred`) without reading it."""
    if isinstance(value, Deferred):
        return value.nbytes
    shape = weight_shape(value)
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(getattr(value, "dtype", None) or "u1").itemsize


def deferrable(value: Any) -> bool:
    """Whether ``value`` may be written as a placeholder: a plain dtype and at least :data:`DEFER_BYTES`."""
    try:
        return weight_dtype(value) in PLAIN_DTYPES and nbytes(value) >= DEFER_BYTES
    except (K5Error, TypeError, ValueError):  # an unusual value (no dtype, a declaration only): the ordinary way
        return False


def placeholder(value: Any, name: str) -> Any:
    """A TensorProto with ``value``'s name, type and dims, marked as external data at :data:`PLACEHOLDER`."""
    import onnx

    from k5.convert.onnx.tables import K5_TO_ONNX_DTYPE

    t = onnx.TensorProto()
    t.name = name
    t.data_type = K5_TO_ONNX_DTYPE[weight_dtype(value)]
    t.dims.extend(int(d) for d in (value.shape if isinstance(value, Deferred) else weight_shape(value)))
    t.data_location = onnx.TensorProto.EXTERNAL
    t.external_data.add(key="location", value=PLACEHOLDER)
    return t


def _little_endian(value: Any) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(value))
    order = arr.dtype.byteorder
    if order == ">" or (order == "=" and sys.byteorder == "big"):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr


def _placeholders(proto: Any, pending: dict[str, Any]) -> Iterator[Any]:
    for t in proto.graph.initializer:
        if t.name in pending and t.data_location == t.EXTERNAL and t.external_data[0].value == PLACEHOLDER:
            yield t


def _clear_external(t: Any) -> None:
    t.ClearField("data_location")
    del t.external_data[:]


def fill(proto: Any, pending: dict[str, Any]) -> None:
    """Put every deferred weight's bytes into its placeholder (a complete, in-memory ModelProto)."""
    for t in _placeholders(proto, pending):
        _clear_external(t)
        t.raw_data = _little_endian(pending[t.name]).tobytes()


def _key(message: Any, field: str) -> bytes:
    number = message.DESCRIPTOR.fields_by_name[field].number
    return encode_varint(number << 3 | 2)  # wire type 2: length-delimited


def _stream(f: IO[bytes], value: Any, length: int, where: str) -> None:
    arr = _little_endian(value)
    if arr.nbytes != length:
        raise ValueError(f"weight {where!r} has {arr.nbytes} bytes, {length} were declared")
    if arr.nbytes:
        f.write(arr.reshape(-1).view(np.uint8).data)
    del arr


def write_inline(proto: Any, pending: dict[str, Any], f: IO[bytes]) -> None:
    """Serialize ``proto`` to ``f`` with each placeholder's weight streamed in as its ``raw_data``."""
    import onnx

    deferred = list(_placeholders(proto, pending))
    names = {t.name for t in deferred}
    graph = onnx.GraphProto()
    graph.CopyFrom(proto.graph)
    kept = [t for t in graph.initializer if t.name not in names]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    rest = onnx.ModelProto()
    rest.CopyFrom(proto)
    rest.ClearField("graph")
    key_init, key_raw = _key(onnx.GraphProto, "initializer"), _key(onnx.TensorProto, "raw_data")
    entries = []
    for t in deferred:
        header = onnx.TensorProto()
        header.CopyFrom(t)
        _clear_external(header)
        head = header.SerializeToString()
        length = nbytes(pending[t.name])
        tensor_len = len(head) + len(key_raw) + len(encode_varint(length)) + length
        entries.append((t.name, head, length, tensor_len))
    graph_bytes = graph.SerializeToString()
    graph_len = len(graph_bytes) + sum(len(key_init) + len(encode_varint(n)) + n for _, _, _, n in entries)
    f.write(rest.SerializeToString())
    f.write(_key(onnx.ModelProto, "graph") + encode_varint(graph_len))
    f.write(graph_bytes)
    for name, head, length, tensor_len in entries:
        f.write(key_init + encode_varint(tensor_len) + head + key_raw + encode_varint(length))
        _stream(f, pending[name], length, name)


def write_external(proto: Any, pending: dict[str, Any], f: IO[bytes], data: IO[bytes], location: str) -> None:
    """Stream each placeholder's weight into ``data`` (ONNX external data at ``location``, beside the model file),
    point the placeholder at it, then serialize the (now small) ``proto`` to ``f``."""
    for t in _placeholders(proto, pending):
        length = nbytes(pending[t.name])
        offset = data.tell()
        _stream(data, pending[t.name], length, t.name)
        del t.external_data[:]
        t.external_data.add(key="location", value=location)
        t.external_data.add(key="offset", value=str(offset))
        t.external_data.add(key="length", value=str(length))
    f.write(proto.SerializeToString())


def _copy_except(src: Any, dst: Any, skip: str) -> None:
    """Copy every set field of message ``src`` into ``dst`` but ``skip`` (without copying ``skip``'s contents)."""
    for field, value in src.ListFields():
        if field.name == skip:
            continue
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == 3  # LABEL_REPEATED
        if repeated:
            getattr(dst, field.name).extend(value)
        elif field.type == field.TYPE_MESSAGE:
            getattr(dst, field.name).CopyFrom(value)
        else:
            setattr(dst, field.name, value)


def write_proto(proto: Any, f: IO[bytes]) -> None:
    """Serialize a complete ``proto`` to ``f`` one top-level initializer at a time, so that no serialized copy of
    the whole model is made (``SerializeToString`` would double the memory)."""
    import onnx

    rest = onnx.ModelProto()
    _copy_except(proto, rest, "graph")
    graph = onnx.GraphProto()
    _copy_except(proto.graph, graph, "initializer")
    key_init, key_raw = _key(onnx.GraphProto, "initializer"), _key(onnx.TensorProto, "raw_data")
    sizes = [t.ByteSize() for t in proto.graph.initializer]
    graph_len = graph.ByteSize() + sum(len(key_init) + len(encode_varint(n)) + n for n in sizes)
    f.write(rest.SerializeToString())
    f.write(_key(onnx.ModelProto, "graph") + encode_varint(graph_len))
    f.write(graph.SerializeToString())
    for t, size in zip(proto.graph.initializer, sizes, strict=True):
        f.write(key_init + encode_varint(size))
        if not t.HasField("raw_data"):
            f.write(t.SerializeToString())
            continue
        header = onnx.TensorProto()
        _copy_except(t, header, "raw_data")
        f.write(header.SerializeToString())
        data = t.raw_data
        f.write(key_raw + encode_varint(len(data)))
        f.write(data)
        del data
