"""The ``.onnx`` file format in the format registry: read with :func:`from_onnx`, write with :func:`to_onnx` +
:func:`save_onnx`, run with onnxruntime (the oracle of a conversion's verification).

The reader treats the file as untrusted: a missing, empty or unparsable file, or a protobuf that is no model, is a
:class:`~k5.errors.ConversionError` naming the file, never a protobuf traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from k5.convert import require
from k5.convert.formats import FileFormat, register_format
from k5.errors import ConversionError, K5Error, SaveError
from k5.format.model import Model

__all__ = ["ONNX_FORMAT"]


def read_onnx(path: str) -> Model:
    onnx = require("onnx", "onnx", purpose="reading .onnx files")
    from k5.convert.onnx.importer import from_onnx

    if not os.path.isfile(path):
        raise ConversionError("no such file", where=path)
    if os.path.getsize(path) == 0:
        raise ConversionError("the file is empty; expected an ONNX model (a protobuf ModelProto)", where=path)
    try:
        proto = onnx.load(path)
    except Exception as e:
        raise ConversionError(f"not a readable ONNX model ({type(e).__name__}: {e})", where=path) from e
    if not proto.HasField("graph") or not proto.graph.output:
        raise ConversionError("not an ONNX model: it has no graph with outputs", where=path)
    try:
        return from_onnx(proto)
    except K5Error as e:
        raise (e if (e.where or "").startswith(path) else e.located(path)) from None
    except Exception as e:
        raise ConversionError(f"cannot convert ({type(e).__name__}: {e})", where=path) from e


def write_onnx(model: Model, path: str, *, opset: int | None = None) -> None:
    require("onnx", "onnx", purpose="writing .onnx files")
    from k5.convert.onnx.exporter import save_onnx, to_onnx

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SaveError(f"the directory {folder!r} does not exist", where=path)
    proto = to_onnx(model, opset=opset)
    try:
        save_onnx(proto, path)
    except OSError as e:
        raise SaveError(f"cannot write the file ({e.strerror or e})", where=path) from e


def run_onnx(path: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    require("onnxruntime", "onnx", purpose="running .onnx files")
    from k5.convert.onnx.verify import onnxruntime_run

    return onnxruntime_run(path, inputs)


ONNX_FORMAT = register_format(
    FileFormat(
        name="onnx",
        extensions=(".onnx",),
        description="ONNX model (protobuf; weights inline or in an external data file)",
        read=read_onnx,
        write=write_onnx,
        run=run_onnx,
        runtime="onnxruntime",
        extra="onnx",
        requires=("onnx", "onnxruntime"),
        write_options=("opset",),
    )
)
