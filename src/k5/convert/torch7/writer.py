"""Write objects the way Lua Torch7's ``torch.save`` lays them out (binary, little-endian, 8-byte longs by default).

Python values map onto Torch7 records: ``None`` -> nil, ``bool`` -> boolean, ``int``/``float`` -> number (a
double), ``str`` -> string, ``dict`` (and :class:`T7Table`) -> table, :class:`T7Object` -> a torch object (``V 1``
and its class name, then its field table), :class:`T7Storage` -> a storage, a NumPy array -> a contiguous
``torch.*Tensor`` with its own storage. An object met twice (the same Python object) is written once and referenced
after, as Torch does, so shared tensors stay shared. Object indices count from 1 in the order objects are first met.

The file is written atomically: to a temporary file beside the target, renamed over it when complete.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from k5.convert.torch7.reader import (
    TYPE_BOOLEAN,
    TYPE_NIL,
    TYPE_NUMBER,
    TYPE_STRING,
    TYPE_TABLE,
    TYPE_TORCH,
    T7Object,
    T7Storage,
)
from k5.errors import ConversionError, SaveError

__all__ = ["CLASS_OF_DTYPE", "t7_bytes", "write_t7"]

#: NumPy dtype -> Torch7 tensor kind (the ``Float`` of ``torch.FloatTensor``)
CLASS_OF_DTYPE: dict[str, str] = {
    "float64": "Double", "float32": "Float", "float16": "Half", "uint8": "Byte", "int8": "Char", "int16": "Short",
    "int32": "Int", "int64": "Long", "bool": "Byte",
}  # fmt: skip

_STORAGE_DTYPE = {"Double": "<f8", "Float": "<f4", "Half": "<f2", "Byte": "u1", "Char": "i1", "Short": "<i2",
                  "Int": "<i4", "Long": "<i8"}  # fmt: skip


class _Writer:
    def __init__(self, *, long_size: int) -> None:
        self.out: list[bytes] = []
        self.long_size = long_size
        self.index: dict[int, int] = {}  # id(python object) -> torch object index
        self.keep: list[Any] = []  # keeps ids stable while writing

    def int32(self, v: int) -> None:
        self.out.append(struct.pack("<i", v))

    def longs(self, values: list[int]) -> None:
        self.out.append(struct.pack(f"<{len(values)}{'q' if self.long_size == 8 else 'i'}", *values))

    def double(self, v: float) -> None:
        self.out.append(struct.pack("<d", v))

    def string(self, s: str) -> None:
        raw = s.encode("utf-8")
        self.int32(len(raw))
        self.out.append(raw)

    def _ref(self, obj: Any) -> tuple[int, bool]:
        """(index, already written)."""
        key = id(obj)
        if key in self.index:
            return self.index[key], True
        self.keep.append(obj)
        self.index[key] = len(self.index) + 1
        return self.index[key], False

    def write(self, obj: Any, depth: int = 0) -> None:
        if depth > 200:
            raise ConversionError("objects nest deeper than 200 levels; Torch7 files this deep are refused")
        if obj is None:
            self.int32(TYPE_NIL)
        elif isinstance(obj, bool | np.bool_):
            self.int32(TYPE_BOOLEAN)
            self.int32(1 if obj else 0)
        elif isinstance(obj, int | float | np.integer | np.floating):
            self.int32(TYPE_NUMBER)
            self.double(float(obj))
        elif isinstance(obj, str):
            self.int32(TYPE_STRING)
            self.string(obj)
        elif isinstance(obj, Mapping):
            self.int32(TYPE_TABLE)
            index, seen = self._ref(obj)
            self.int32(index)
            if seen:
                return
            self.int32(len(obj))
            for k, v in obj.items():
                self.write(k, depth + 1)
                self.write(v, depth + 1)
        elif isinstance(obj, T7Object):
            self.int32(TYPE_TORCH)
            index, seen = self._ref(obj)
            self.int32(index)
            if seen:
                return
            self.string(f"V {obj.version or 1}")
            self.string(obj.class_name)
            self.write(obj.fields, depth + 1)
        elif isinstance(obj, T7Storage):
            self.int32(TYPE_TORCH)
            index, seen = self._ref(obj)
            self.int32(index)
            if seen:
                return
            self.string("V 1")
            self.string(obj.class_name)
            self._storage_body(obj)
        elif isinstance(obj, np.ndarray):
            self._tensor(obj)
        else:
            raise ConversionError(f"cannot write a {type(obj).__name__} into a Torch7 file")

    def _storage_body(self, storage: T7Storage) -> None:
        kind = storage.class_name[len("torch.") : -len("Storage")]
        if kind not in _STORAGE_DTYPE:
            raise ConversionError(f"cannot write a {storage.class_name}")
        data = np.ascontiguousarray(storage.data).reshape(-1)
        self.longs([int(data.size)])
        if kind == "Long" and self.long_size == 4:
            self.out.append(data.astype("<i4").tobytes())
        else:
            self.out.append(data.astype(_STORAGE_DTYPE[kind]).tobytes())

    def _tensor(self, arr: np.ndarray) -> None:
        kind = CLASS_OF_DTYPE.get(arr.dtype.name)
        if kind is None:
            raise ConversionError(f"cannot write a {arr.dtype} array as a Torch7 tensor")
        self.int32(TYPE_TORCH)
        index, seen = self._ref(arr)
        self.int32(index)
        if seen:
            return
        self.string("V 1")
        self.string(f"torch.{kind}Tensor")
        shape = [int(d) for d in arr.shape] if arr.size else []  # Torch's empty tensor has no dimensions
        self.int32(len(shape))
        strides, step = [0] * len(shape), 1
        for i in range(len(shape) - 1, -1, -1):
            strides[i] = step
            step *= shape[i]
        self.longs(shape)
        self.longs(strides)
        self.longs([1])
        if arr.size == 0:
            self.int32(TYPE_NIL)
            return
        # the storage is a separate torch object with its own index
        self.write(T7Storage(f"torch.{kind}Storage", arr.reshape(-1)))


def t7_bytes(obj: Any, *, long_size: int = 8) -> bytes:
    """The bytes ``torch.save`` would write for ``obj`` (binary mode)."""
    if long_size not in (4, 8):
        raise ValueError(f"long_size must be 4 or 8. Received: {long_size}")
    w = _Writer(long_size=long_size)
    w.write(obj)
    return b"".join(w.out)


def write_t7(obj: Any, path: str | os.PathLike[str], *, long_size: int = 8) -> None:
    """Write ``obj`` to ``path`` atomically (a temporary file beside it, renamed over it when complete)."""
    path = os.fspath(path)
    data = t7_bytes(obj, long_size=long_size)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".k5-", suffix=".t7.tmp", dir=folder)
    except OSError as e:
        raise SaveError(f"cannot create a file in {folder!r}: {e.strerror or e}", where=path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise SaveError(f"cannot write the file: {e.strerror or e}", where=path) from None
        raise
