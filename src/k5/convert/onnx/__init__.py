"""ONNX <-> k5. ``onnx`` (and ``onnxruntime`` for verification) are imported on first use only.

Registers the ``onnx`` file format (``.onnx``) with :mod:`k5.convert.formats`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from k5.convert.formats import FileFormat, register_format
from k5.convert.onnx.exporter import to_onnx
from k5.convert.onnx.importer import from_onnx
from k5.convert.onnx.source import load_onnx
from k5.convert.onnx.verify import onnxruntime_run
from k5.convert.onnx.writer import save_onnx, write_onnx
from k5.format.model import Model

__all__ = ["FORMAT", "from_onnx", "load_onnx", "save_onnx", "to_onnx", "write_onnx"]


def _read(path: str) -> Model:
    return from_onnx(path)


def _write(model: Model, path: str) -> None:
    write_onnx(model, path)


def _run(path: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    return onnxruntime_run(path, inputs)


FORMAT = register_format(
    FileFormat(
        name="onnx",
        extensions=(".onnx",),
        description="ONNX model (protobuf; weights inline or in external data files beside it)",
        read=_read,
        write=_write,
        run=_run,
        extra="onnx",
        requires=("onnx", "onnxruntime"),
    )
)
