"""The ``.onnx`` file format in the format registry: read with :func:`~.importer.from_onnx` (weights read straight
from the file), write with :func:`~.writer.write_onnx` (weights streamed from the model), run with onnxruntime (the
oracle of a conversion's verification).

The reader treats the file as untrusted: a missing, empty or unparsable file, or a protobuf that is no model, is a
:class:`~k5.errors.ConversionError` naming the file (:mod:`.source`), never a protobuf traceback.
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


def _read(path: str) -> Model:
    require("onnx", "onnx", purpose="reading .onnx files")
    from k5.convert.onnx.importer import from_onnx

    try:
        return from_onnx(path)
    except K5Error as e:
        raise (e if (e.where or "").startswith(path) else e.located(path)) from None
    except Exception as e:
        raise ConversionError(f"cannot convert ({type(e).__name__}: {e})", where=path) from e


def _write(model: Model, path: str, *, opset: int | None = None) -> None:
    require("onnx", "onnx", purpose="writing .onnx files")
    from k5.convert.onnx.writer import write_onnx

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SaveError(f"the directory {folder!r} does not exist", where=path)
    try:
        write_onnx(model, path, opset=opset)
    except OSError as e:
        raise SaveError(f"cannot write the file ({e.strerror or e})", where=path) from e


def _run(path: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    require("onnxruntime", "onnx", purpose="running .onnx files")
    from k5.convert.onnx.verify import onnxruntime_run

    return onnxruntime_run(path, inputs)


ONNX_FORMAT = register_format(
    FileFormat(
        name="onnx",
        extensions=(".onnx",),
        description="ONNX model (protobuf; weights inline or in an external data file)",
        read=_read,
        write=_write,
        run=_run,
        runtime="onnxruntime",
        extra="onnx",
        requires=("onnx", "onnxruntime"),
        write_options=("opset",),
    )
)
