"""ONNX <-> k5. ``onnx`` (and ``onnxruntime`` for verification) are imported on first use only.

Registers the ``onnx`` file format (``.onnx``) with :mod:`k5.convert.formats` (see :mod:`.format`).
"""

from __future__ import annotations

from k5.convert.onnx.exporter import to_onnx
from k5.convert.onnx.format import ONNX_FORMAT as ONNX_FORMAT  # registers .onnx in k5.convert.formats
from k5.convert.onnx.importer import from_onnx
from k5.convert.onnx.source import load_onnx
from k5.convert.onnx.writer import save_onnx, write_onnx

__all__ = ["ONNX_FORMAT", "from_onnx", "load_onnx", "save_onnx", "to_onnx", "write_onnx"]
