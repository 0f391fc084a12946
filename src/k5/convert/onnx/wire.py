"""Reading an ONNX file without reading its weights (ONNX -> k5).

``onnx.load`` reads the whole file into memory and parses it into a protobuf that holds a second copy of every
weight, before the importer makes a third (its NumPy arrays). :func:`scan` instead walks the protobuf wire format
of a memory-mapped file down to the top-level initializers (``ModelProto.graph`` -> ``GraphProto.initializer`` ->
``TensorProto.raw_data``), parses everything *except* the large ``raw_data`` fields, and returns where each of them
lies in the file. :func:`skeleton` marks those tensors as ONNX external data pointing into the file itself, so the
importer reads each weight straight into its array when it needs it (:func:`read_external`), as it does for weights
in real external data files.

Anything unusual in the encoding (a field split in several pieces, groups, a length past the end) makes
:func:`scan` give up and parse the file the ordinary way, which also gives the ordinary errors for broken files.
"""

from __future__ import annotations

import math
import mmap
import os
from typing import Any

import numpy as np

from k5.errors import ConversionError

__all__ = ["MIN_SPAN", "SELF", "encode_varint", "read_external", "scan", "skeleton"]

#: raw_data fields of at least this many bytes are left in the file
MIN_SPAN = 1024
#: the external-data location :func:`skeleton` gives weights left in the model file itself (not a file name)
SELF = "k5: the model file itself"


class _UnusualEncodingError(Exception):
    """The encoding is not the plain one this reader walks: parse the file the ordinary way."""


def _varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _UnusualEncodingError
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(buf: Any, start: int, end: int) -> list[tuple[int, int, int, int, int]]:
    """(field number, wire type, field start, value start, value end) of each field in ``buf[start:end]``."""
    out = []
    pos = start
    while pos < end:
        key, value_start = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, value_end = _varint(buf, value_start, end)
        elif wire == 1:
            value_end = value_start + 8
        elif wire == 5:
            value_end = value_start + 4
        elif wire == 2:
            length, value_start = _varint(buf, value_start, end)
            value_end = value_start + length
        else:  # groups (3, 4) are not used by ONNX
            raise _UnusualEncodingError
        if value_end > end or number == 0:
            raise _UnusualEncodingError
        out.append((number, wire, pos, value_start, value_end))
        pos = value_end
    return out


def encode_varint(n: int) -> bytes:
    """``n`` as a protobuf varint (7 bits a byte, low first, high bit = more follows)."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return encode_varint(number << 3 | 2) + encode_varint(len(payload)) + payload


def _numbers() -> tuple[int, int, int]:
    import onnx

    return (
        onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number,
        onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"].number,
        onnx.TensorProto.DESCRIPTOR.fields_by_name["raw_data"].number,
    )


def _strip(buf: Any, size: int) -> tuple[bytes, dict[int, tuple[int, int]]]:
    """The file's bytes without the large raw_data of top-level initializers, and initializer index -> (offset,
    length) of each raw_data left out."""
    graph_no, init_no, raw_no = _numbers()
    top = _fields(buf, 0, size)
    graphs = [f for f in top if f[0] == graph_no]
    if len(graphs) != 1 or graphs[0][1] != 2:
        raise _UnusualEncodingError
    _, _, _, g_start, g_end = graphs[0]
    spans: dict[int, tuple[int, int]] = {}
    graph = bytearray()
    index = 0
    for number, wire, f_start, v_start, v_end in _fields(buf, g_start, g_end):
        if number != init_no or wire != 2:
            graph += buf[f_start:v_end]
            continue
        raws = [f for f in _fields(buf, v_start, v_end) if f[0] == raw_no]
        if len(raws) == 1 and raws[0][1] == 2 and raws[0][4] - raws[0][3] >= MIN_SPAN:
            _, _, r_start, r_value, r_end = raws[0]
            tensor = bytes(buf[v_start:r_start]) + bytes(buf[r_end:v_end])
            spans[index] = (r_value, r_end - r_value)
            graph += _length_delimited(init_no, tensor)
        else:
            graph += buf[f_start:v_end]
        index += 1
    model = bytearray()
    for number, _, f_start, _, v_end in top:
        if number == graph_no:
            model += _length_delimited(graph_no, bytes(graph))
        else:
            model += buf[f_start:v_end]
    return bytes(model), spans


def scan(path: str) -> tuple[Any, dict[int, tuple[int, int]]]:
    """(the ModelProto of the ONNX file at ``path`` without the large raw_data of its top-level initializers,
    initializer index -> (file offset, length) of each one left out). A file this reader cannot walk is parsed
    whole (no spans). Raises ``OSError`` for a file that cannot be read, protobuf's ``DecodeError`` for one that
    does not parse."""
    import onnx

    proto = onnx.ModelProto()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return proto, {}
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            try:
                stripped, spans = _strip(buf, size)
            except _UnusualEncodingError:
                stripped, spans = buf[:], {}
    proto.ParseFromString(stripped)
    return proto, spans


def skeleton(path: str) -> Any:
    """:func:`scan`'s ModelProto with each left-out raw_data marked as external data in the file itself."""
    import onnx

    proto, spans = scan(path)
    for index, (offset, length) in spans.items():
        t = proto.graph.initializer[index]
        t.data_location = onnx.TensorProto.EXTERNAL
        del t.external_data[:]
        t.external_data.add(key="location", value=SELF)
        t.external_data.add(key="offset", value=str(offset))
        t.external_data.add(key="length", value=str(length))
    return proto


def _inside(base_dir: str, location: str, where: str) -> str:
    """The path of an external data file, refused unless it is a relative path inside ``base_dir``."""
    if not location or os.path.isabs(location) or os.path.splitdrive(location)[0]:
        raise ConversionError(f"external data location {location!r} must be a relative path", where=where)
    base = os.path.realpath(base_dir)
    full = os.path.realpath(os.path.join(base, location))
    if os.path.commonpath([base, full]) != base:
        raise ConversionError(f"external data location {location!r} points outside the model's folder", where=where)
    if not os.path.isfile(full):
        raise ConversionError(f"external data file {location!r} not found beside the model", where=where)
    return full


def read_external(tensor: Any, model_path: str, numpy_dtype: np.dtype[Any] | None) -> Any:
    """The data of an external-data TensorProto of the model at ``model_path``: an array of ``numpy_dtype`` read
    straight from the file (a plain dtype, little-endian bytes), else the bytes (the caller decodes them)."""
    where = f"tensor {tensor.name!r}"
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    folder = os.path.dirname(os.path.abspath(model_path))
    full = model_path if location == SELF else _inside(folder, location, where)
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise ConversionError(f"external data offset/length are not integers: {info}", where=where) from None
    dims = [int(d) for d in tensor.dims]
    if any(d < 0 for d in dims):
        raise ConversionError(f"negative dimension in dims {dims}", where=where)
    count = math.prod(dims)
    file_size = os.path.getsize(full)
    if numpy_dtype is not None:
        need = count * numpy_dtype.itemsize
        if (length is not None and length != need) or offset < 0 or offset + need > file_size:
            raise ConversionError(
                f"external data holds {length if length is not None else file_size - offset} bytes at offset "
                f"{offset} of {info.get('location')!r} (file size {file_size}); dims {list(tensor.dims)} need {need}",
                where=where,
            )
        arr = np.fromfile(full, dtype=numpy_dtype.newbyteorder("<"), count=count, offset=offset)
        if arr.dtype != numpy_dtype:  # a big-endian machine
            arr = arr.astype(numpy_dtype)
        return arr.reshape(dims)
    if offset < 0 or (length is not None and offset + length > file_size):
        raise ConversionError(f"external data lies outside {info.get('location')!r}", where=where)
    with open(full, "rb") as f:
        f.seek(offset)
        return f.read(length if length is not None else -1)
