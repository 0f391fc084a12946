"""ONNX <-> k5. ``onnx`` (and ``onnxruntime`` for verification) are imported on first use only."""

from k5.convert.onnx.exporter import save_onnx, to_onnx
from k5.convert.onnx.format import ONNX_FORMAT as ONNX_FORMAT  # registers .onnx in k5.convert.formats
from k5.convert.onnx.importer import from_onnx

__all__ = ["from_onnx", "save_onnx", "to_onnx"]
