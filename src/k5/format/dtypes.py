"""The k5 dtype table: names in the network JSON <-> NumPy dtypes <-> how HDF5 stores them.

Types HDF5 has natively are stored as themselves. ``bool`` is stored as ``uint8`` (0/1), ``bfloat16`` as
``uint16`` (the raw bit pattern), the float8 types as ``uint8``, and the sub-byte types (int4, uint4, int2, uint2,
float4_e2m1fn) unpacked, one element per ``uint8`` (the element's bit pattern in the low bits). Such datasets
carry the attribute ``k5_dtype`` naming the k5 type, so a reader that only sees the HDF5 file still knows what the
bytes mean. All data is little-endian.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np
from numpy.typing import DTypeLike

from k5.errors import SchemaError

__all__ = ["DTYPES", "DType", "dtype_of", "from_numpy", "is_native", "storage_dtype", "to_numpy"]


@dataclass(frozen=True)
class DType:
    name: str  # the k5 name, as written in the network JSON
    numpy: np.dtype  # the in-memory NumPy dtype
    storage: np.dtype  # the HDF5 storage dtype (little-endian)

    @property
    def itemsize(self) -> int:
        return self.numpy.itemsize

    @property
    def native(self) -> bool:
        """True when HDF5 stores this type as itself (no ``k5_dtype`` attribute needed)."""
        return self.numpy == self.storage


def _d(name: str, numpy: DTypeLike, storage: DTypeLike | None = None) -> DType:
    np_dtype = np.dtype(numpy)
    return DType(name, np_dtype, np.dtype(storage if storage is not None else np_dtype).newbyteorder("<"))


DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        _d("float16", np.float16),
        _d("bfloat16", ml_dtypes.bfloat16, np.uint16),
        _d("float32", np.float32),
        _d("float64", np.float64),
        _d("float8_e4m3fn", ml_dtypes.float8_e4m3fn, np.uint8),
        _d("float8_e4m3fnuz", ml_dtypes.float8_e4m3fnuz, np.uint8),
        _d("float8_e5m2", ml_dtypes.float8_e5m2, np.uint8),
        _d("float8_e5m2fnuz", ml_dtypes.float8_e5m2fnuz, np.uint8),
        _d("float8_e8m0fnu", ml_dtypes.float8_e8m0fnu, np.uint8),
        _d("float4_e2m1fn", ml_dtypes.float4_e2m1fn, np.uint8),  # unpacked: one element per byte
        _d("int4", ml_dtypes.int4, np.uint8),
        _d("uint4", ml_dtypes.uint4, np.uint8),
        _d("int2", ml_dtypes.int2, np.uint8),
        _d("uint2", ml_dtypes.uint2, np.uint8),
        _d("int8", np.int8),
        _d("int16", np.int16),
        _d("int32", np.int32),
        _d("int64", np.int64),
        _d("uint8", np.uint8),
        _d("uint16", np.uint16),
        _d("uint32", np.uint32),
        _d("uint64", np.uint64),
        _d("bool", np.bool_, np.uint8),
        _d("complex64", np.complex64),
        _d("complex128", np.complex128),
    )
}

_BY_NUMPY: dict[np.dtype, DType] = {d.numpy: d for d in DTYPES.values()}


def dtype_of(name: str, *, where: str | None = None) -> DType:
    """The :class:`DType` called ``name``; a :class:`SchemaError` naming the known types otherwise."""
    try:
        return DTYPES[name]
    except (KeyError, TypeError):
        raise SchemaError(
            f"unknown dtype. Expected one of {', '.join(DTYPES)}. Received: {name!r}", where=where
        ) from None


def from_numpy(dtype: DTypeLike, *, where: str | None = None) -> str:
    """The k5 name of a NumPy dtype (byte order ignored)."""
    np_dtype = np.dtype(dtype)
    if np_dtype.byteorder not in ("=", "|", "<"):
        np_dtype = np_dtype.newbyteorder("=")
    try:
        return _BY_NUMPY[np_dtype].name
    except KeyError:
        raise SchemaError(f"NumPy dtype {np_dtype} has no k5 equivalent", where=where) from None


def to_numpy(name: str) -> np.dtype:
    return dtype_of(name).numpy


def storage_dtype(name: str) -> np.dtype:
    return dtype_of(name).storage


def is_native(name: str) -> bool:
    return dtype_of(name).native
