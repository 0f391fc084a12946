"""torch dtype <-> k5 dtype name, and zero-copy tensor <-> NumPy conversion (bfloat16 and float8 included)."""

from __future__ import annotations

from typing import Any

import numpy as np

from k5.errors import ConversionError
from k5.format.dtypes import DTYPES

__all__ = ["from_numpy", "k5_dtype", "to_numpy", "torch_dtype"]

_NAMES = {
    "float16": "float16", "bfloat16": "bfloat16", "float32": "float32", "float64": "float64",
    "float8_e4m3fn": "float8_e4m3fn", "float8_e4m3fnuz": "float8_e4m3fnuz", "float8_e5m2": "float8_e5m2",
    "float8_e5m2fnuz": "float8_e5m2fnuz", "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64", "bool": "bool",
    "complex64": "complex64", "complex128": "complex128",
}  # fmt: skip

# k5 types NumPy keeps in ml_dtypes (torch.from_numpy cannot take them): moved as raw bits of this width
_BITS = {1: "uint8", 2: "uint16"}


def k5_dtype(dtype: Any, *, where: str = "") -> str:
    """The k5 name of a ``torch.dtype``."""
    name = str(dtype).removeprefix("torch.")
    try:
        return _NAMES[name]
    except KeyError:
        raise ConversionError(f"torch dtype {dtype} has no k5 equivalent", where=where or None) from None


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def to_numpy(t: Any) -> np.ndarray:
    """A CPU, detached copy-free view of tensor ``t`` as a NumPy array of the matching k5 dtype."""
    import torch

    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    name = k5_dtype(t.dtype)
    want = DTYPES[name].numpy
    if want.kind == "V" or want.type.__module__.startswith("ml_dtypes"):
        raw = getattr(torch, _BITS[want.itemsize])
        return t.contiguous().view(raw).numpy().view(want)
    return t.resolve_conj().resolve_neg().numpy()


def from_numpy(a: Any) -> Any:
    """A torch tensor sharing memory with array ``a`` where possible (read-only arrays are copied)."""
    import torch

    a = np.asarray(a)
    if not a.flags.writeable or not a.flags.c_contiguous:
        a = np.array(a, copy=True, order="C")
    if a.dtype.type.__module__.startswith("ml_dtypes"):
        raw = getattr(np, _BITS[a.dtype.itemsize])
        name = next(n for n, d in DTYPES.items() if d.numpy == a.dtype)
        return torch.from_numpy(a.view(raw)).view(getattr(torch, name))
    return torch.from_numpy(a)
