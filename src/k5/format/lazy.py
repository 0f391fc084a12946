"""Lazy values of an open k5 file: :class:`LazyTensor` (a weight or validation tensor, memory-mapped where possible),
:class:`LazyDataset` (training/evaluation data read in slices) and :class:`CopyOnWrite` (private writable views)."""

from __future__ import annotations

import bisect
import contextlib
import math
import mmap
import os
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from k5.errors import FormatError, HostileSizeError
from k5.format.checksums import check_digest, digest
from k5.format.dtypes import DType
from k5.format.untrusted import read_attr

__all__ = ["CopyOnWrite", "FileSource", "LazyDataset", "LazyTensor", "from_storage"]


class FileSource:
    """The open file behind a loaded model's lazy values, and its memory map."""

    def __init__(self, file: h5py.File, path: str, *, use_mmap: bool) -> None:
        self.file: h5py.File | None = file
        self.path = path
        self.size = os.fstat(file.id.get_vfd_handle()).st_size
        self.groups: dict[str, Any] = {}  # groups already checked by _get
        self.mm: mmap.mmap | None = None
        if use_mmap and self.size > 0 and file.userblock_size == 0:
            with contextlib.suppress(OSError, ValueError, TypeError):
                self.mm = mmap.mmap(file.id.get_vfd_handle(), 0, access=mmap.ACCESS_READ)

    def dataset(self, h5path: str, where: str) -> h5py.Dataset:
        if self.file is None:
            raise FormatError("the model's file was closed (Model.close()); load it again to read", where=where)
        return self.file[h5path]

    def close(self) -> None:
        if self.mm is not None:
            with contextlib.suppress(BufferError):  # arrays still view the map: released when the last one goes
                self.mm.close()
            self.mm = None
        self.groups.clear()
        if self.file is not None:
            with contextlib.suppress(Exception):
                self.file.close()
            self.file = None


def from_storage(arr: np.ndarray, d: DType) -> np.ndarray:
    """Reinterpret stored bytes as the k5 dtype (bool: nonzero is True)."""
    if d.name == "bool":
        return np.asarray(arr != 0)
    if arr.dtype != d.numpy:
        return arr.view(d.numpy)
    return arr


class _Stored:
    """What a lazy tensor and a lazy dataset share: a dataset of an open file, its k5 dtype and shape."""

    __slots__ = ("_d", "_source", "h5path", "shape", "where")

    def __init__(self, source: FileSource, h5path: str, d: DType, shape: tuple[int, ...], where: str) -> None:
        self._source = source
        self.h5path = h5path
        self._d = d
        self.shape = shape
        self.where = where

    @property
    def loc(self) -> str:
        """How errors name this value: ``file.k5: node 'fc' (Linear): weight 'bias'``."""
        return f"{self._source.path}: {self.where}"

    @property
    def dtype(self) -> np.dtype:
        return self._d.numpy

    @property
    def k5_dtype(self) -> str:
        return self._d.name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self._d.itemsize


class LazyTensor(_Stored):
    """A weight (or validation tensor) in an open k5 file, read on first use.

    Behaves as an array (``np.asarray(t)``); ``.numpy()`` returns a read-only array that is a view of the memory-
    mapped file where possible, ``.read()`` a private copy.
    """

    __slots__ = ("_offset",)

    def __init__(
        self, source: FileSource, h5path: str, d: DType, shape: tuple[int, ...], offset: int | None, where: str
    ) -> None:
        super().__init__(source, h5path, d, shape, where)
        self._offset = offset

    @property
    def mapped(self) -> bool:
        """True when reading returns a view of the memory-mapped file (no copy)."""
        return self._mappable() is not None

    def _mappable(self) -> mmap.mmap | None:
        mm = self._source.mm
        if mm is None or self._offset is None or self._offset % self._d.storage.itemsize:
            return None
        return mm

    def _stored(self) -> np.ndarray:
        """The stored (little-endian storage dtype) values; a read-only view of the map when possible."""
        storage = self._d.storage
        if self.size == 0:
            return np.zeros(self.shape, storage)
        mm = self._mappable()
        if mm is not None and self._offset is not None:
            if self._source.file is None:
                raise FormatError("the model's file was closed (Model.close()); load it again to read", where=self.loc)
            flat = np.frombuffer(mm, dtype=storage, count=self.size, offset=self._offset)
            return flat.reshape(self.shape)
        ds = self._source.dataset(self.h5path, self.loc)
        try:
            out = np.empty(self.shape, storage)
            ds.read_direct(out)
        except MemoryError:
            raise HostileSizeError(f"cannot allocate {self.nbytes} bytes to read it", where=self.loc) from None
        except (OSError, ValueError, RuntimeError) as e:
            raise FormatError(f"could not read the dataset: {e}", where=self.loc) from e
        return out

    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (read-only view of the file when memory-mapped)."""
        return from_storage(self._stored(), self._d)

    def read(self) -> np.ndarray:
        """A private, writable copy of the values."""
        return np.array(self.numpy(), copy=True)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self.numpy()
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            return arr.astype(dtype)
        return np.array(arr, copy=True) if copy else arr

    def sha256(self) -> str:
        """sha256 (hex) of the stored little-endian C-order bytes."""
        return digest(self._stored())

    def stored_sha256(self) -> str | None:
        """The checksum recorded in the file, or None."""
        value = read_attr(self._source.dataset(self.h5path, self.loc), "sha256", self.loc)
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        return value if isinstance(value, str) else None

    def verify(self) -> bool:
        """Check the stored sha256; False when the file records none, :class:`ChecksumError` when it differs."""
        expected = self.stored_sha256()
        if expected is None:
            return False
        check_digest(expected, self.sha256(), self.loc)
        return True

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyTensor({self.h5path!r}, {self.k5_dtype}{list(self.shape)})"


class CopyOnWrite:
    """Private, writable arrays of lazily loaded weights that share the file's pages until they are written.

    An instance maps each file once more, privately (``mmap.ACCESS_COPY``: ``MAP_PRIVATE``); :meth:`array` returns
    a view of that map. No byte is copied until a page is written, a write copies only that page into this
    process's memory, and nothing ever reaches the file: the file, and the read-only maps behind
    :meth:`LazyTensor.numpy` (what :func:`k5.run` reads), keep their bytes. Arrays handed out by one instance never
    overlap (a dataset reached twice is copied the second time); arrays from two instances are independent, so use
    one instance per hand-off (``k5.to_torch`` does). Values that cannot be mapped (compressed, ``bool``, a model
    loaded with ``mmap=False`` or already closed) are copied; other values are returned as ``np.asarray`` gives them.
    """

    def __init__(self) -> None:
        self._maps: dict[int, tuple[FileSource, mmap.mmap, list[tuple[int, int]]]] = {}

    def array(self, value: Any) -> np.ndarray:
        """A writable array of ``value`` (a lazy tensor: a copy-on-write view where possible)."""
        if not isinstance(value, LazyTensor):
            return np.asarray(value)
        t = value
        src = t._source
        if t.size == 0 or t._d.name == "bool" or t._mappable() is None or src.file is None:
            return t.read()
        entry = self._maps.get(id(src))
        if entry is None:
            try:
                mm = mmap.mmap(src.file.id.get_vfd_handle(), 0, access=mmap.ACCESS_COPY)
            except (OSError, ValueError, TypeError):
                return t.read()
            entry = self._maps[id(src)] = (src, mm, [])
        _, mm, taken = entry
        assert t._offset is not None
        start, end = t._offset, t._offset + t.nbytes
        i = bisect.bisect_left(taken, (start, end))
        if (i > 0 and taken[i - 1][1] > start) or (i < len(taken) and taken[i][0] < end):
            return t.read()  # overlaps an array already handed out: a private copy, so they cannot alias
        taken.insert(i, (start, end))
        flat = np.frombuffer(mm, dtype=t._d.storage, count=t.size, offset=start)
        return from_storage(flat.reshape(t.shape), t._d)


class LazyDataset(_Stored):
    """Data in an open k5 file (``/training/data``...), read in slices: ``ds[1000:2000]``, ``len(ds)``, arrays."""

    __slots__ = ()

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    def __getitem__(self, key: Any) -> np.ndarray:
        ds = self._source.dataset(self.h5path, self.loc)
        try:
            return from_storage(np.asarray(ds[key]), self._d)
        except MemoryError:
            raise HostileSizeError(f"cannot allocate memory to read {key!r} of it", where=self.loc) from None
        except (OSError, RuntimeError) as e:
            raise FormatError(f"could not read the dataset: {e}", where=self.loc) from e

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[()]
        return arr.astype(dtype) if dtype is not None and np.dtype(dtype) != arr.dtype else arr

    def numpy(self) -> np.ndarray:
        return self[()]

    def batches(self, size: int) -> Iterator[np.ndarray]:
        """Successive slices of ``size`` rows."""
        for start in range(0, len(self), size):
            yield self[start : start + size]

    def __repr__(self) -> str:
        return f"LazyDataset({self.h5path!r}, {self.k5_dtype}{list(self.shape)})"
