"""k5: one portable HDF5 file for trained neural networks.

Importing k5 loads NumPy and h5py only; framework converters import their framework on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from k5._version import __version__
from k5.errors import K5Error
from k5.format.model import DataSplit, Graph, Metadata, Model, Node, TensorInfo, ValidationPair

__all__ = [
    "DataSplit",
    "Graph",
    "K5Error",
    "Metadata",
    "Model",
    "Node",
    "TensorInfo",
    "ValidationPair",
    "__version__",
    "from_keras",
    "from_onnx",
    "from_torch",
    "load",
    "run",
    "save",
    "save_torch",
    "to_keras",
    "to_onnx",
    "to_torch",
]

# name -> module that defines it; imported on first access so `import k5` stays light
_LAZY = {
    "save": "k5.format.hdf5",
    "load": "k5.format.hdf5",
    "run": "k5.runtime.interpreter",
    "from_onnx": "k5.convert.onnx",
    "to_onnx": "k5.convert.onnx",
    "from_torch": "k5.convert.torch",
    "to_torch": "k5.convert.torch",
    "save_torch": "k5.convert.torch",
    "from_keras": "k5.convert.keras",
    "to_keras": "k5.convert.keras",
}

if TYPE_CHECKING:  # pragma: no cover
    from k5.format.hdf5 import load, save
    from k5.runtime.interpreter import run


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'k5' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
