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
    "from_torch7",
    "load",
    "run",
    "save",
    "save_torch",
    "to_keras",
    "to_onnx",
    "to_tensorflow",
    "to_tflite",
    "to_torch",
    "to_torch7",
]

# name -> (module that defines it, the pip extra its framework comes from); imported on first access so that
# `import k5` stays light
_LAZY: dict[str, tuple[str, str | None]] = {
    "save": ("k5.format.hdf5", None),
    "load": ("k5.format.hdf5", None),
    "run": ("k5.runtime.interpreter", None),
    "from_onnx": ("k5.convert.onnx", "onnx"),
    "to_onnx": ("k5.convert.onnx", "onnx"),
    "from_torch": ("k5.convert.torch", "torch"),
    "to_torch": ("k5.convert.torch", "torch"),
    "save_torch": ("k5.convert.torch", "torch"),
    "from_torch7": ("k5.convert.torch7", None),
    "to_torch7": ("k5.convert.torch7", None),
    "from_keras": ("k5.convert.keras", "keras"),
    "to_keras": ("k5.convert.keras", "keras"),
    "to_tensorflow": ("k5.convert.keras", "tensorflow"),
    "to_tflite": ("k5.convert.keras", "tensorflow"),
}

if TYPE_CHECKING:  # pragma: no cover
    from k5.format.hdf5 import load, save
    from k5.runtime.interpreter import run


def __getattr__(name: str) -> Any:
    entry = _LAZY.get(name)
    if entry is None or name not in __all__:  # from_keras before k5.convert.keras exists
        raise AttributeError(f"module 'k5' has no attribute {name!r}")
    module, extra = entry
    import importlib

    if extra is None:
        value = getattr(importlib.import_module(module), name)
    else:
        from k5.convert import framework_missing, requires_extra

        try:
            converter = importlib.import_module(module)
        except ImportError as e:  # a converter that imports its framework eagerly: name the extra all the same
            err = framework_missing(e, extra, f"k5.{name}")
            if err is None:
                raise
            raise err from e
        value = requires_extra(extra)(getattr(converter, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
