"""Reading an ONNX source (a path, bytes or a ``ModelProto``) with every failure a named :class:`K5Error`.

``onnx.load`` lets a missing file, random bytes or a truncated file escape as ``FileNotFoundError`` or protobuf's
``DecodeError``, picks a text parser from the file's extension, and accepts an empty file as an empty model. Here
the bytes are always parsed as binary protobuf, and a model is refused unless it has an IR version, a graph, at
least one node and at least one output.
"""

from __future__ import annotations

import os
from typing import Any

from k5.errors import ConversionError

__all__ = ["Source", "check_onnx_model", "load_onnx", "open_onnx"]

#: what :func:`load_onnx` accepts
Source = Any  # onnx.ModelProto | bytes | bytearray | memoryview | str | os.PathLike[str]


def _check_path(path: str) -> None:
    if not os.path.exists(path):
        raise ConversionError("no such file", where=path)
    if os.path.isdir(path):
        raise ConversionError("is a directory, not an ONNX file", where=path)


def _read(path: str) -> bytes:
    _check_path(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConversionError(f"cannot read the file: {e.strerror or e}", where=path) from e


def _parse(data: bytes | bytearray | memoryview, where: str) -> Any:
    import onnx
    from google.protobuf.message import DecodeError

    if len(data) == 0:
        raise ConversionError("empty (0 bytes): not an ONNX model", where=where)
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise _not_onnx(e, where) from e
    return proto


def _not_onnx(e: Exception, where: str) -> ConversionError:
    return ConversionError(
        f"not an ONNX model: the bytes do not parse as a protobuf ModelProto (random, text or truncated?): {e}",
        where=where,
    )


def check_onnx_model(proto: Any, where: str = "ONNX model") -> None:
    """Refuse what is not a model: no IR version, no graph, a graph without nodes or without outputs."""
    if proto.ir_version <= 0:
        raise ConversionError("not an ONNX model: no IR version (an empty or foreign protobuf message)", where=where)
    if not proto.HasField("graph"):
        raise ConversionError("not an ONNX model: it has no graph", where=where)
    if len(proto.graph.node) == 0:
        raise ConversionError("the ONNX graph is empty (no nodes): nothing to convert", where=where)
    if len(proto.graph.output) == 0:
        raise ConversionError("the ONNX graph has no outputs: a model computes at least one", where=where)


def load_onnx(source: Source, *, load_external_data: bool = True) -> Any:
    """An ``onnx.ModelProto`` from a path, bytes or a ModelProto, checked by :func:`check_onnx_model`.

    A path's external data (weights in files beside it) is loaded unless ``load_external_data`` is False.
    """
    import onnx

    base_dir = ""
    if isinstance(source, onnx.ModelProto):
        proto, where = source, "ONNX model"
    elif isinstance(source, (bytes, bytearray, memoryview)):
        where = "ONNX bytes"
        proto = _parse(source, where)
    elif isinstance(source, (str, os.PathLike)):
        where = os.fspath(source)
        proto = _parse(_read(where), where)
        base_dir = os.path.dirname(os.path.abspath(where))
    else:
        raise ConversionError(
            f"expected an ONNX ModelProto, bytes or a path. Received: {type(source).__name__}", where="from_onnx"
        )
    check_onnx_model(proto, where)
    if base_dir and load_external_data:
        from onnx.external_data_helper import load_external_data_for_model

        try:
            load_external_data_for_model(proto, base_dir)
        except Exception as e:  # onnx raises OSError, ValueError or its own ValidationError
            raise ConversionError(f"cannot load the external data: {type(e).__name__}: {e}", where=where) from e
    return proto


def open_onnx(source: Source) -> tuple[Any, str | None]:
    """(ModelProto, the model file's path or None) for the importer, checked like :func:`load_onnx`.

    A path is read without its large weights (:func:`k5.convert.onnx.wire.skeleton`): they are left in the file,
    marked as external data, with real external data files, for the importer to read one at a time. Bytes and
    ModelProtos are used as they are (their external data, if any, must be loaded already).
    """
    if not isinstance(source, (str, os.PathLike)):
        return load_onnx(source), None
    from google.protobuf.message import DecodeError

    from k5.convert.onnx.wire import skeleton

    where = os.fspath(source)
    _check_path(where)
    if os.path.getsize(where) == 0:
        raise ConversionError("empty (0 bytes): not an ONNX model", where=where)
    try:
        proto = skeleton(where)
    except OSError as e:
        raise ConversionError(f"cannot read the file: {e.strerror or e}", where=where) from e
    except (DecodeError, ValueError, RuntimeError) as e:
        raise _not_onnx(e, where) from e
    check_onnx_model(proto, where)
    return proto, where
