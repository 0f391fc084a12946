"""Reading and writing ``.k5`` files (HDF5): :func:`save` and :func:`load`.

The layout is specified in ``docs/spec.md``. Saving writes a temporary file beside the target, one dataset at a
time, and renames it over the target at the end, so an interrupted save leaves any old file intact. Loading is lazy
by default: it reads the network JSON and the metadata, checks every weight's declaration against its dataset, and
reads a weight's bytes only when asked (uncompressed contiguous weights are memory-mapped views of the file).

The reader is defensive: it checks sizes against the file before allocating, refuses links, external and virtual
datasets and non-portable filters, and raises only :class:`~k5.errors.K5Error` subclasses. Each check is a named
function (``_check_*``) so the loader's trust boundary is easy to audit and extend.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as _dt
import hashlib
import math
import mmap
import os
import re
import struct
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import h5py
import numpy as np

from k5.errors import (
    ChecksumError,
    FormatError,
    HostileSizeError,
    K5Error,
    MissingEntryError,
    MissingWeightError,
    NotK5FileError,
    SaveError,
    SchemaError,
    TruncatedFileError,
    UnsafeFileError,
    VersionError,
    WeightMismatchError,
)
from k5.format.dtypes import DTYPES, DType, dtype_of, from_numpy
from k5.format.model import (
    DataSplit,
    Graph,
    Metadata,
    Model,
    Node,
    ValidationPair,
    WeightSpec,
    weight_dtype,
    weight_shape,
)

__all__ = [
    "FORMAT_VERSION",
    "CopyOnWrite",
    "LazyDataset",
    "LazyTensor",
    "check_untrusted",
    "decode_name",
    "encode_name",
    "load",
    "save",
    "validate",
    "verify_checksums",
    "weight_paths",
]

#: The format version this release writes (root attribute ``k5_version``); readers accept any 1.x.
FORMAT_VERSION = "1.0"
SUPPORTED_MAJOR = 1
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Limits for free-text entries (metadata) read from a file.
MAX_TEXT_BYTES = 16 << 20
#: deflate cannot expand data by more than ~1032x; a compressed dataset claiming more is hostile.
MAX_DEFLATE_RATIO = 1100
#: Only these HDF5 filters are portable (and safe: no plugin libraries): deflate (gzip), shuffle, fletcher32.
ALLOWED_FILTERS = {h5py.h5z.FILTER_DEFLATE: "deflate", h5py.h5z.FILTER_SHUFFLE: "shuffle", 3: "fletcher32"}
#: Every allocation of at least this many bytes (so every weight) starts at a multiple of ALIGNMENT bytes.
ALIGNMENT_THRESHOLD = 1
ALIGNMENT = 64
_STRING = h5py.string_dtype("utf-8")
_WRITE_BLOCK = 64 << 20  # bytes per write when copying large data in slices


# --- names -----------------------------------------------------------------------------------------------------
def encode_name(name: str, what: str = "name") -> str:
    """The HDF5 link name of a k5 name: ``%`` -> ``%25``, ``/`` -> ``%2F``, and ``.``/``..`` -> ``%2E``/``%2E%2E``."""
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{what} must be a non-empty string. Received: {name!r}")
    if "\x00" in name:
        raise SchemaError(f"{what} contains a NUL character: {name!r}")
    if name in (".", ".."):
        return "%2E" * len(name)
    return name.replace("%", "%25").replace("/", "%2F")


def decode_name(link: str) -> str:
    """The k5 name of an HDF5 link name (every ``%XX`` becomes the byte 0xXX, as UTF-8)."""
    if "%" not in link:
        return link
    raw = re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), link.encode("utf-8"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"link name {link!r} percent-decodes to invalid UTF-8") from None


def weight_paths(graph: Graph) -> Iterator[tuple[str, Node, str]]:
    """(HDF5 path, node, param) of every weight: ``/model/weights/<node>/<param>``; nested graphs' weights live
    under their owner: ``/model/weights/<owner>/<attr>/<node>/<param>`` (``<attr>[i]`` for lists of graphs)."""
    for path, node in graph.walk():
        parts = [encode_name(p, "node id or attribute name") for p in path]
        parts.append(encode_name(node.id, "node id"))
        prefix = "/model/weights/" + "/".join(parts)
        for param in node.weights:
            yield f"{prefix}/{encode_name(param, f'{node.label}: weight name')}", node, param


# --- lazy values -----------------------------------------------------------------------------------------------
class _Source:
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


def _from_storage(arr: np.ndarray, d: DType) -> np.ndarray:
    """Reinterpret stored bytes as the k5 dtype (bool: nonzero is True)."""
    if d.name == "bool":
        return np.asarray(arr != 0)
    if arr.dtype != d.numpy:
        return arr.view(d.numpy)
    return arr


class LazyTensor:
    """A weight (or validation tensor) in an open k5 file, read on first use.

    Behaves as an array (``np.asarray(t)``); ``.numpy()`` returns a read-only array that is a view of the memory-
    mapped file where possible, ``.read()`` a private copy.
    """

    __slots__ = ("_d", "_offset", "_source", "h5path", "shape", "where")

    def __init__(
        self, source: _Source, h5path: str, d: DType, shape: tuple[int, ...], offset: int | None, where: str
    ) -> None:
        self._source = source
        self.h5path = h5path
        self._d = d
        self.shape = shape
        self._offset = offset
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
        if mm is not None:
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
        return _from_storage(self._stored(), self._d)

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
        stored = np.ascontiguousarray(self._stored())
        return hashlib.sha256(stored.reshape(-1).view(np.uint8)).hexdigest()

    def stored_sha256(self) -> str | None:
        """The checksum recorded in the file, or None."""
        value = _attr(self._source.dataset(self.h5path, self.loc), "sha256", self.loc)
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        return value if isinstance(value, str) else None

    def verify(self) -> bool:
        """Check the stored sha256; False when the file records none, :class:`ChecksumError` when it differs."""
        expected = self.stored_sha256()
        if expected is None:
            return False
        actual = self.sha256()
        if actual != expected.lower():
            raise ChecksumError(f"sha256 mismatch. Expected: {expected}. Received: {actual}", where=self.loc)
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
        self._maps: dict[int, tuple[_Source, mmap.mmap, list[tuple[int, int]]]] = {}

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
        return _from_storage(flat.reshape(t.shape), t._d)


class LazyDataset:
    """Data in an open k5 file (``/training/data``...), read in slices: ``ds[1000:2000]``, ``len(ds)``, arrays."""

    def __init__(self, source: _Source, h5path: str, d: DType, shape: tuple[int, ...], where: str) -> None:
        self._source = source
        self.h5path = h5path
        self._d = d
        self.shape = shape
        self.where = where

    loc = LazyTensor.loc
    dtype = LazyTensor.dtype
    k5_dtype = LazyTensor.k5_dtype
    ndim = LazyTensor.ndim
    size = LazyTensor.size
    nbytes = LazyTensor.nbytes

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    def __getitem__(self, key: Any) -> np.ndarray:
        ds = self._source.dataset(self.h5path, self.loc)
        try:
            return _from_storage(np.asarray(ds[key]), self._d)
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


# --- writing ---------------------------------------------------------------------------------------------------
def _to_storage(value: Any, k5_dtype: str | None, where: str) -> tuple[np.ndarray, DType]:
    """A C-contiguous little-endian array of the storage dtype holding ``value``."""
    arr = np.asarray(value)
    name = from_numpy(arr.dtype, where=where)
    if k5_dtype is not None and name != k5_dtype:
        raise WeightMismatchError(f"declared dtype {k5_dtype} but the value is {name}", where=where)
    d = DTYPES[name]
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")
    if d.name == "bool":
        return arr.view(np.uint8), d
    if not d.native:
        return arr.view(d.storage), d
    return arr.astype(d.storage, copy=False), d


def _write_array(
    group: h5py.Group, name: str, value: Any, *, where: str, k5_dtype: str | None = None, compression: str | None,
    level: int, checksum: bool,
) -> None:  # fmt: skip
    stored, d = _to_storage(value, k5_dtype, where)
    shape = tuple(getattr(value, "shape", stored.shape))
    if stored.shape != shape:
        raise WeightMismatchError(f"declared shape {list(shape)}; the value has {list(stored.shape)}", where=where)
    if compression and stored.ndim and stored.size and stored.nbytes >= 1024:
        ds = group.create_dataset(
            name, data=stored, chunks=True, compression="gzip", compression_opts=level, shuffle=True
        )
    else:
        ds = group.create_dataset(name, shape=stored.shape, dtype=stored.dtype)
        if stored.size:
            ds.write_direct(stored)
    if not d.native:
        ds.attrs["k5_dtype"] = d.name
    if checksum:
        ds.attrs["sha256"] = hashlib.sha256(stored.reshape(-1).view(np.uint8)).hexdigest()


def _write_text(group: h5py.Group, name: str, text: str, where: str) -> None:
    if not isinstance(text, str):
        raise SchemaError(f"{where} must be a string. Received: {type(text).__name__}")
    group.create_dataset(name, data=text, dtype=_STRING)


def _write_data(group: h5py.Group, name: str, value: Any, *, where: str, compression: str | None, level: int) -> None:
    """Write possibly large data in slices: an array-like with ``shape``/``dtype``, or an iterable of batches."""
    kwargs: dict[str, Any] = {"compression": "gzip", "compression_opts": level, "shuffle": True} if compression else {}
    if isinstance(value, (list, tuple)):
        value = np.asarray(value)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        shape = tuple(int(s) for s in value.shape)
        if not shape:
            raise SchemaError(f"{where} must have at least one dimension (rows). Received: a 0-d value")
        first = np.asarray(value[0:0])
        batches: Iterable[Any] = (value[i : i + _rows(shape, first.dtype, _WRITE_BLOCK)] for i in
                                  range(0, shape[0], _rows(shape, first.dtype, _WRITE_BLOCK)))  # fmt: skip
    else:
        batches = iter(value)
        shape = None  # type: ignore[assignment]
    ds: h5py.Dataset | None = None
    d: DType | None = None
    rows = 0
    for batch in batches:
        stored, bd = _to_storage(batch, d.name if d else None, where)
        if stored.ndim == 0:
            raise SchemaError(f"{where}: each batch needs a row axis. Received: a 0-d batch")
        if ds is None:
            d = bd
            total = shape[0] if shape is not None else 0
            ds = group.create_dataset(
                name, shape=(total, *stored.shape[1:]), maxshape=(None, *stored.shape[1:]), dtype=stored.dtype,
                chunks=(min(_rows(stored.shape, stored.dtype, 1 << 20), max(1, total, stored.shape[0])),
                        *stored.shape[1:]), **kwargs,
            )  # fmt: skip
        elif stored.shape[1:] != ds.shape[1:]:
            raise SchemaError(f"{where}: batch shape {list(stored.shape)} does not continue {list(ds.shape)}")
        if shape is None:
            ds.resize(rows + stored.shape[0], axis=0)
        if stored.shape[0]:
            ds[rows : rows + stored.shape[0]] = stored
        rows += stored.shape[0]
    if ds is None:
        if shape is None:
            raise SchemaError(f"{where}: the iterable gave no batches")
        stored, d = _to_storage(np.asarray(value), None, where)
        ds = group.create_dataset(name, data=stored, maxshape=(None, *stored.shape[1:]), chunks=True)
    assert d is not None
    if not d.native:
        ds.attrs["k5_dtype"] = d.name


def _rows(shape: tuple[int, ...], dtype: np.dtype, budget: int) -> int:
    row = max(1, math.prod(shape[1:]) * np.dtype(dtype).itemsize)
    return max(1, budget // row)


def _check_layout_collisions(paths: list[str]) -> None:
    datasets = set(paths)
    for p in paths:
        parent = p.rsplit("/", 1)[0]
        while parent.count("/") > 2:
            if parent in datasets:
                raise SaveError(f"weight {parent!r} and group {p!r} would share an HDF5 name; rename the attribute")
            parent = parent.rsplit("/", 1)[0]


def save(
    model: Model,
    path: str | os.PathLike[str],
    *,
    compression: str | None = None,
    compression_level: int = 4,
    checksums: bool = True,
    check: bool = True,
) -> None:
    """Write ``model`` to ``path`` as a k5 file, atomically.

    ``compression``: None (contiguous datasets, memory-mappable) or ``"gzip"`` (with shuffle; per dataset of at
    least 1 KiB). ``checksums``: store the sha256 of every weight. ``check``: run the graph checks first.
    Any failure raises :class:`SaveError` (the cause chained); the target is then untouched and no temporary
    file is left behind.
    """
    target = os.fspath(path)
    if compression not in (None, "gzip"):
        raise SaveError(f"compression must be None or 'gzip' (portable to any HDF5 reader). Received: {compression!r}")
    if not 0 <= compression_level <= 9:
        raise SaveError(f"compression_level must be 0..9. Received: {compression_level}")
    directory = os.path.dirname(os.path.abspath(target))
    tmp: str | None = None
    try:
        if check:
            from k5.format.checks import check_model

            check_model(model, ops=True, allow_unknown_ops=False)
        from k5.format.network import dumps_network

        text = dumps_network(model)
        entries = list(weight_paths(model.graph))
        _check_layout_collisions([p for p, _, _ in entries])
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".k5tmp", dir=directory)
        os.close(fd)
        os.chmod(tmp, _target_mode(target))
        with h5py.File(
            tmp, "w", libver=("earliest", "v110"), alignment_threshold=ALIGNMENT_THRESHOLD,
            alignment_interval=ALIGNMENT,
        ) as f:  # fmt: skip
            _write_metadata(f, model.metadata)
            _write_text(f.require_group("model"), "network", text, "the network JSON")
            weights = f.require_group("model/weights")
            for h5path, node, param in entries:
                value = node.weights[param]
                where = f"{node.label}: weight {param!r}"
                if isinstance(value, WeightSpec):
                    raise SaveError("has no data (a WeightSpec declaration only)", where=where)
                group_path, name = h5path.rsplit("/", 1)
                group = f.require_group(group_path) if group_path != weights.name else weights
                _write_array(
                    group, name, value, where=where, k5_dtype=weight_dtype(value), compression=compression,
                    level=compression_level, checksum=checksums,
                )  # fmt: skip
                del value
            _write_validation(f, model.validation)
            for split_name, split in (("training", model.training), ("evaluate", model.evaluate)):
                if split is None or (split.data is None and split.labels is None):
                    continue
                group = f.require_group(split_name)
                for part in ("data", "labels"):
                    value = getattr(split, part)
                    if value is not None:
                        _write_data(group, part, value, where=f"/{split_name}/{part}", compression=compression,
                                    level=compression_level)  # fmt: skip
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        tmp = None
        _fsync_dir(directory)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(e, SaveError):
            raise (e.located(target) if not (e.where or "").startswith(target) else e) from e.__cause__
        if isinstance(e, Exception):
            detail = str(e) if isinstance(e, K5Error) else f"{type(e).__name__}: {e}"
            raise SaveError(f"could not save ({detail}); any previous file there is unchanged", where=target) from e
        raise


def _target_mode(target: str) -> int:
    """Permissions for the new file: those of the file it replaces, else the usual ones (0o666 minus umask)."""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_dir(directory: str) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_metadata(f: h5py.File, meta: Metadata) -> None:
    from k5._version import __version__

    f.attrs["k5_version"] = FORMAT_VERSION
    f.attrs["producer"] = meta.producer or f"k5 {__version__}"
    f.attrs["created"] = meta.created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    for key in ("author", "description", "license"):
        text = getattr(meta, key)
        if text:
            _write_text(f, key, text, f"metadata {key!r}")
    if meta.extra:
        group = f.create_group("metadata")
        for key, text in meta.extra.items():
            _write_text(group, encode_name(key, "metadata key"), text, f"metadata {key!r}")


def _write_validation(f: h5py.File, pair: ValidationPair | None) -> None:
    if pair is None:
        return
    group = f.create_group("validate")
    group.attrs["rtol"] = float(pair.rtol)
    group.attrs["atol"] = float(pair.atol)
    for part, values in (("input", pair.inputs), ("output", pair.outputs)):
        sub = group.create_group(part)
        for name, value in values.items():
            where = f"validation {part} {name!r}"
            _write_array(sub, encode_name(name, where), value, where=where, compression=None, level=0, checksum=False)


# --- reading: the trust boundary -------------------------------------------------------------------------------
def _check_signature(path: str) -> int:
    """The file's size; :class:`NotK5FileError` unless it starts with an HDF5 superblock (at 0, 512, 1024...)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NotK5FileError("no such file") from None
    except OSError as e:
        raise NotK5FileError(f"cannot access the file: {e.strerror or e}") from None
    if not os.path.isfile(path):
        raise NotK5FileError("not a regular file")
    try:
        with open(path, "rb") as fh:
            offset = 0
            while offset + 8 <= st.st_size:
                fh.seek(offset)
                if fh.read(8) == HDF5_SIGNATURE:
                    _check_superblock(fh, offset, st.st_size)
                    return st.st_size
                offset = 512 if offset == 0 else offset * 2
    except OSError as e:
        raise NotK5FileError(f"cannot read the file: {e.strerror or e}") from None
    raise NotK5FileError(
        "not an HDF5 file (no HDF5 signature); a .k5 file is an HDF5 file"
        + (" (the file is empty)" if st.st_size == 0 else "")
    )


def _check_superblock(fh: Any, offset: int, size: int) -> None:
    """:class:`TruncatedFileError` when the superblock's end-of-file address lies beyond the file's end."""
    fh.seek(offset + 8)
    head = fh.read(64)
    if len(head) < 8:
        raise TruncatedFileError(f"the file ends inside its HDF5 superblock ({size} bytes)")
    version = head[0]
    if version in (0, 1):
        size_of_offsets = head[5]
        fixed = 16 + (4 if version == 1 else 0)  # bytes after the signature before the base address
    elif version in (2, 3):
        size_of_offsets = head[1]
        fixed = 4
    else:
        raise NotK5FileError(f"unknown HDF5 superblock version {version}")
    if size_of_offsets not in (2, 4, 8, 16):
        raise NotK5FileError(f"HDF5 superblock declares {size_of_offsets}-byte offsets")
    fmt = {2: "<H", 4: "<I", 8: "<Q", 16: "<QQ"}[size_of_offsets]
    width = size_of_offsets
    need = fixed + width * 3
    if len(head) < need:
        raise TruncatedFileError(f"the file ends inside its HDF5 superblock ({size} bytes)")
    base = struct.unpack_from(fmt, head, fixed)[0]
    # v0/1: base, free-space, EOF; v2/3: base, superblock extension, EOF
    eof = struct.unpack_from(fmt, head, fixed + 2 * width)[0]
    if base + eof > size and eof != (1 << (8 * min(width, 8))) - 1:
        raise TruncatedFileError(
            f"the file is {size} bytes but its HDF5 superblock says {base + eof}: it was cut short "
            "(an interrupted copy or download?)"
        )


_LINK_KINDS = {h5py.h5l.TYPE_SOFT: "soft link", h5py.h5l.TYPE_EXTERNAL: "external link"}


def _check_link(group: Any, name: bytes, where: str) -> bool:
    """True if ``name`` exists in the group (a low-level GroupID) as a hard link; other links are refused."""
    if not group.links.exists(name):
        return False
    kind = group.links.get_info(name).type
    if kind != h5py.h5l.TYPE_HARD:
        what = _LINK_KINDS.get(kind, "user-defined link")
        raise UnsafeFileError(f"{where}: {name.decode(errors='replace')!r} is a {what}; k5 files use hard links only")
    return True


def _get(f: h5py.File, path: str, where: str, cache: dict[str, Any] | None = None) -> Any:
    """The object at ``path`` (None if absent), refusing soft, external and user-defined links on the way.

    ``cache`` remembers groups already checked (a load passes one, so /model/weights is checked once).
    """
    cache = {} if cache is None else cache
    loc = cache.get("")
    if loc is None:
        loc = cache[""] = f["/"].id
    prefix = ""
    try:
        for part in path.strip("/").split("/"):
            key = f"{prefix}/{part}"
            hit = cache.get(key)
            if hit is None:
                if not isinstance(loc, h5py.h5g.GroupID):
                    raise FormatError(f"{where}: {prefix!r} is a dataset, expected a group")
                name = part.encode("utf-8")
                if not _check_link(loc, name, where):
                    return None
                hit = h5py.h5o.open(loc, name)
                if isinstance(hit, h5py.h5g.GroupID):
                    cache[key] = hit
            loc, prefix = hit, key
    except K5Error:
        raise
    except (KeyError, OSError, RuntimeError, ValueError, TypeError) as e:
        raise FormatError(f"{where}: cannot open {path!r}: {e}") from None
    if isinstance(loc, h5py.h5d.DatasetID):
        return h5py.Dataset(loc)
    if isinstance(loc, h5py.h5g.GroupID):
        return h5py.Group(loc)
    raise FormatError(f"{where}: {path!r} is neither a group nor a dataset")


#: HDF5 type classes an attribute read by k5 may have. Others (variable-length sequences, references, compound,
#: opaque, enum, array, bitfield, time) are refused before HDF5 converts the value: converting a crafted
#: variable-length sequence crashes HDF5 2.0 (a segfault in H5VL_blob_put found by tools/fuzz_load.py).
_ATTR_CLASSES = {h5py.h5t.STRING: "string", h5py.h5t.INTEGER: "integer", h5py.h5t.FLOAT: "float"}


def _attr(owner: Any, name: str, where: str) -> Any:
    """The value of attribute ``name`` of an h5py object (None if absent), its HDF5 type checked before reading."""
    try:
        if name not in owner.attrs:
            return None
        type_class = owner.attrs.get_id(name).get_type().get_class()
    except (KeyError, OSError, RuntimeError, ValueError, TypeError) as e:
        raise FormatError(f"{where}: cannot read attribute {name!r}: {e}") from None
    if type_class not in _ATTR_CLASSES:
        raise FormatError(
            f"{where}: attribute {name!r} must be a string or a number. Received: HDF5 type class {type_class}"
        )
    try:
        return owner.attrs[name]
    except (KeyError, OSError, RuntimeError, ValueError, TypeError) as e:
        raise FormatError(f"{where}: cannot read attribute {name!r}: {e}") from None


def _check_dataset(ds: Any, where: str, file_size: int) -> tuple[int | None, int]:
    """(contiguous data offset or None, stored bytes); refuses virtual/external data, foreign filters, shape bombs."""
    if not isinstance(ds, h5py.Dataset):
        raise FormatError(f"{where}: expected a dataset, found a {type(ds).__name__}")
    offset, nbytes, _ = _check_dataset_id(ds.id, where, file_size)
    return offset, nbytes


def _check_dataset_id(
    dsid: Any, where: str, file_size: int, itemsize: int | None = None
) -> tuple[int | None, int, tuple[int, ...]]:
    """:func:`_check_dataset` on a low-level ``DatasetID``: (offset or None, stored bytes, shape).

    ``itemsize``: the element size when the caller already checked the HDF5 type (saves converting it to NumPy).
    The low-level calls cost a fraction of h5py's high-level properties; a load runs this once per weight.
    """
    try:
        dcpl = dsid.get_create_plist()
        layout = dcpl.get_layout()
        if layout == h5py.h5d.VIRTUAL:
            raise UnsafeFileError(f"{where}: is a virtual dataset (it would read other files)")
        if dcpl.get_external_count() > 0:
            raise UnsafeFileError(f"{where}: stores its data in external files")
        filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
        shape = dsid.get_space().get_simple_extent_dims()  # None: a null dataspace
        if itemsize is None:
            itemsize = dsid.dtype.itemsize
    except K5Error:
        raise
    except (OSError, RuntimeError, ValueError, TypeError) as e:
        raise FormatError(f"{where}: cannot read the dataset's header: {e}") from None
    bad = [c for c in filters if c not in ALLOWED_FILTERS]
    if bad:
        raise UnsafeFileError(f"{where}: uses HDF5 filter(s) {bad}; k5 files may use only deflate (gzip) and shuffle")
    if shape is None:
        raise FormatError(f"{where}: has a null dataspace")
    nbytes = math.prod(shape) * itemsize
    limit = file_size * (MAX_DEFLATE_RATIO if h5py.h5z.FILTER_DEFLATE in filters else 1)
    if nbytes > limit:
        raise HostileSizeError(
            f"{where}: shape {list(shape)} needs {nbytes} bytes, more than the {file_size}-byte file can hold"
        )
    offset = None
    if layout == h5py.h5d.CONTIGUOUS and nbytes:
        offset = dsid.get_offset()
        if offset is None:
            raise MissingWeightError(f"{where}: the dataset has no data written")
        if offset + nbytes > file_size:
            raise TruncatedFileError(f"{where}: data ends at byte {offset + nbytes}, beyond the {file_size}-byte file")
    return (offset if not filters else None), nbytes, tuple(shape)


def _dataset_dtype(ds: h5py.Dataset, where: str) -> DType:
    """The k5 dtype of a dataset: its ``k5_dtype`` attribute, else its native HDF5 type."""
    attr = _attr(ds, "k5_dtype", where)
    if isinstance(attr, bytes):
        attr = attr.decode("utf-8", "replace")
    if attr is not None:
        d = dtype_of(str(attr), where=where)
        if ds.dtype != d.storage:
            raise WeightMismatchError(f"k5_dtype {d.name} is stored as {d.storage}. Received: {ds.dtype}", where=where)
        return d
    try:
        name = from_numpy(ds.dtype, where=where)
    except SchemaError:
        raise WeightMismatchError(f"HDF5 type {ds.dtype} is not a k5 dtype", where=where) from None
    d = DTYPES[name]
    if ds.dtype != d.storage:
        raise WeightMismatchError(f"must be stored little-endian ({d.storage}). Received: {ds.dtype}", where=where)
    return d


def _bind_weight(source: _Source, h5path: str, spec: WeightSpec, where: str) -> LazyTensor:
    """A lazy tensor for a declared weight, after checking its dataset against the declaration."""
    assert source.file is not None
    ds = _get(source.file, h5path, where, source.groups)
    if ds is None:
        raise MissingWeightError(f"declared in the network JSON but {h5path!r} is not in the file", where=where)
    offset, _ = _check_dataset(ds, where, source.size)
    d = dtype_of(spec.dtype, where=where)
    stored = _dataset_dtype(ds, where)
    if stored.name != d.name:
        raise WeightMismatchError(f"declared dtype {d.name}. Received: {stored.name} in {h5path!r}", where=where)
    if tuple(ds.shape) != tuple(spec.shape):
        raise WeightMismatchError(
            f"declared shape {list(spec.shape)}. Received: {list(ds.shape)} in {h5path!r}", where=where
        )
    return LazyTensor(source, h5path, d, tuple(spec.shape), offset, where)


_WEIGHTS = "/model/weights/"


def _bind_weights(source: _Source, entries: list[tuple[str, Node, str]]) -> None:
    """Bind every declared weight (``weight_paths`` entries) to a lazy tensor, checked as :func:`_bind_weight` does.

    The fast path: one walk of ``/model/weights`` lists every link and its kind (``H5Lvisit`` does not follow soft
    or external links), then each weight's dataset is opened through hard links only and checked with low-level
    calls. Anything unusual (a missing or non-hard link, a group where a dataset should be, a ``k5_dtype``
    mismatch...) goes through :func:`_bind_weight`, which raises the precise error.
    """
    assert source.file is not None
    links: dict[bytes, int] = {}
    gid: Any = None
    if entries:
        group = _get(source.file, "model/weights", "the weights group", source.groups)
        if isinstance(group, h5py.Group):
            gid = group.id
            try:
                gid.links.visit(lambda name, info: links.__setitem__(name, info.type), info=True)
            except (OSError, RuntimeError, ValueError, TypeError, KeyError):
                links.clear()  # the slow path names the problem
    for h5path, node, param in entries:
        where = f"{node.label}: weight {param!r}"
        spec = node.weights[param]
        tensor = _bind_fast(source, gid, links, h5path, spec, where) if links else None
        node.weights[param] = tensor if tensor is not None else _bind_weight(source, h5path, spec, where)


def _bind_fast(
    source: _Source, gid: Any, links: dict[bytes, int], h5path: str, spec: WeightSpec, where: str
) -> LazyTensor | None:
    """A lazy tensor for a weight whose path is all hard links and whose dataset matches its declaration; None
    when anything differs (the caller then takes the slow path, which raises the precise error)."""
    if not h5path.startswith(_WEIGHTS):
        return None
    try:
        rel = h5path[len(_WEIGHTS) :].encode("utf-8")
    except UnicodeEncodeError:
        return None
    end = rel.find(b"/")
    while end != -1:
        if links.get(rel[:end]) != h5py.h5l.TYPE_HARD:
            return None
        end = rel.find(b"/", end + 1)
    if links.get(rel) != h5py.h5l.TYPE_HARD:
        return None
    try:
        dsid = h5py.h5d.open(gid, rel)  # a group (or anything else) raises: the slow path names it
        has_attr = h5py.h5a.exists(dsid, b"k5_dtype")
        expected = None if has_attr else _native_h5_type(spec.dtype)
        if expected is not None and not dsid.get_type().equal(expected):
            return None
    except (KeyError, OSError, RuntimeError, ValueError, TypeError):
        return None
    if has_attr:
        offset, _, shape = _check_dataset_id(dsid, where, source.size)
        stored = _dataset_dtype(h5py.Dataset(dsid), where)  # the attribute's type is checked before reading it
    elif expected is not None:  # the stored type is exactly the declared native one
        stored = DTYPES[spec.dtype]
        offset, _, shape = _check_dataset_id(dsid, where, source.size, stored.storage.itemsize)
    else:
        return None
    if stored.name != spec.dtype or shape != tuple(spec.shape):
        return None
    return LazyTensor(source, h5path, stored, shape, offset, where)


_H5_TYPES: dict[str, Any] = {}


def _native_h5_type(name: str) -> Any:
    """The HDF5 type h5py writes for a native k5 dtype (``float32`` -> IEEE_F32LE), or None (not native/unknown)."""
    t = _H5_TYPES.get(name)
    if t is None:
        d = DTYPES.get(name)
        if d is None or not d.native:
            return None
        t = _H5_TYPES[name] = h5py.h5t.py_create(d.storage)
    return t


def _bind_array(source: _Source, ds: Any, where: str) -> LazyTensor:
    offset, _ = _check_dataset(ds, where, source.size)
    return LazyTensor(source, ds.name, _dataset_dtype(ds, where), tuple(ds.shape), offset, where)


def _file_size(f: h5py.File) -> int:
    try:
        return os.fstat(f.id.get_vfd_handle()).st_size
    except (OSError, ValueError, TypeError, RuntimeError) as e:
        raise FormatError(f"cannot stat the open file: {e}") from None


def _read_raw(
    f: h5py.File, path: str, where: str, *, required: bool = False, max_bytes: int = MAX_TEXT_BYTES
) -> bytes | None:
    """The bytes of a scalar string dataset (None if absent, :class:`MissingEntryError` if ``required``).

    Like every dataset, it is refused when virtual or stored in external files (which would read other files),
    and a fixed-length string larger than ``max_bytes`` or than the file is refused before it is allocated.
    """
    ds = _get(f, path, where)
    if ds is None:
        if required:
            raise MissingEntryError(f"{where}: '/{path}' is missing")
        return None
    if not isinstance(ds, h5py.Dataset):
        raise FormatError(f"{where}: '/{path}' must be a string dataset, found a group")
    if ds.dtype.kind not in "OS" or (ds.dtype.kind == "O" and h5py.check_string_dtype(ds.dtype) is None):
        raise FormatError(f"{where}: '/{path}' must be a UTF-8 string dataset. Received: {ds.dtype}")
    if ds.shape not in ((), (1,)):
        raise FormatError(f"{where}: '/{path}' must be a scalar string. Received: shape {list(ds.shape or [])}")
    if ds.dtype.kind == "S" and ds.dtype.itemsize > max_bytes:
        raise HostileSizeError(f"{where}: '/{path}' declares {ds.dtype.itemsize} bytes; the limit is {max_bytes}")
    _check_dataset(ds, where, _file_size(f))
    try:
        raw = ds[()] if ds.shape == () else ds[0]
    except (OSError, RuntimeError, ValueError) as e:
        raise FormatError(f"{where}: cannot read '/{path}': {e}") from None
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    return bytes(raw)


def _read_text(f: h5py.File, path: str, where: str) -> str | None:
    raw = _read_raw(f, path, where)
    if raw is None:
        return None
    if len(raw) > MAX_TEXT_BYTES:
        raise HostileSizeError(f"{where}: '/{path}' is {len(raw)} bytes; the limit is {MAX_TEXT_BYTES}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"{where}: '/{path}' is not valid UTF-8 (byte {e.start})") from None


def _root_attr(f: h5py.File, name: str) -> str | None:
    value = _attr(f, name, "root group")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
        value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return None if value is None else str(value)


def _check_version(f: h5py.File) -> None:
    version = _root_attr(f, "k5_version")
    if version is None:
        raise NotK5FileError("an HDF5 file, but not a k5 file (no root attribute 'k5_version')")
    m = re.fullmatch(r"(\d+)\.(\d+)", version)
    if not m:
        raise FormatError(f"root attribute k5_version must look like MAJOR.MINOR. Received: {version!r}")
    if int(m.group(1)) > SUPPORTED_MAJOR:
        raise VersionError(f"the file is k5 format {version}; this reader supports {SUPPORTED_MAJOR}.x (upgrade k5)")
    if int(m.group(1)) < 1:
        raise VersionError(f"k5 format {version} was never released")


def _open(path: str) -> tuple[h5py.File, int]:
    size = _check_signature(path)
    try:
        f = h5py.File(path, "r", locking=False)
    except OSError as e:
        text = str(e)
        if "truncated" in text.lower() or "eof" in text.lower():
            raise TruncatedFileError(f"HDF5 cannot open it: {text}") from None
        raise NotK5FileError(f"HDF5 cannot open it: {text}") from None
    return f, size


def _read_metadata(f: h5py.File) -> Metadata:
    meta = Metadata(producer=_root_attr(f, "producer") or "", created=_root_attr(f, "created") or "")
    for key in ("author", "description", "license"):
        setattr(meta, key, _read_text(f, key, f"metadata {key!r}") or "")
    group = _get(f, "metadata", "metadata")
    if isinstance(group, h5py.Group):
        for link in group:
            key = decode_name(link)
            meta.extra[key] = _read_text(f, f"metadata/{link}", f"metadata {key!r}") or ""
    return meta


def _read_validation(f: h5py.File, source: _Source) -> ValidationPair | None:
    group = _get(f, "validate", "validation pair")
    if group is None:
        return None
    if not isinstance(group, h5py.Group):
        raise FormatError("'/validate' must be a group")
    pair = ValidationPair()
    for tol in ("rtol", "atol"):
        raw = _attr(group, tol, "'/validate'")
        if raw is not None:
            value = np.asarray(raw)
            number = float(value.reshape(-1)[0]) if value.dtype.kind in "fiu" and value.size == 1 else math.nan
            if not (math.isfinite(number) and number >= 0):
                shown = repr(value.reshape(-1)[:3].tolist()) if value.size else "an empty value"
                raise FormatError(f"'/validate' attribute {tol} must be one finite number >= 0. Received: {shown[:60]}")
            setattr(pair, tol, number)
    for part, target in (("input", pair.inputs), ("output", pair.outputs)):
        sub = _get(f, f"validate/{part}", f"validation {part}s")
        if sub is None:
            continue
        if not isinstance(sub, h5py.Group):
            raise FormatError(f"'/validate/{part}' must be a group")
        for link in sub:
            name = decode_name(link)
            where = f"validation {part} {name!r}"
            target[name] = _bind_array(source, _get(f, f"validate/{part}/{link}", where), where)
    return pair


def _read_split(f: h5py.File, source: _Source, name: str) -> DataSplit | None:
    group = _get(f, name, f"/{name}")
    if group is None:
        return None
    if not isinstance(group, h5py.Group):
        raise FormatError(f"'/{name}' must be a group")
    split = DataSplit()
    for part in ("data", "labels"):
        where = f"/{name}/{part}"
        ds = _get(f, f"{name}/{part}", where)
        if ds is None:
            continue
        _check_dataset(ds, where, source.size)
        if not ds.shape:
            raise FormatError(f"{where}: must have a row axis. Received: a scalar")
        setattr(split, part, LazyDataset(source, ds.name, _dataset_dtype(ds, where), tuple(ds.shape), where))
    return split


def load(
    path: str | os.PathLike[str],
    *,
    lazy: bool = True,
    verify: bool = False,
    check: bool = True,
    mmap: bool = True,
    isolate: bool = False,
) -> Model:
    """Open a k5 file.

    ``lazy=True`` (default): read the network JSON and metadata; weights are :class:`LazyTensor` objects read on
    first use (memory-mapped when stored uncompressed), data splits are :class:`LazyDataset` objects read in
    slices. The file stays open until ``model.close()`` (or the ``with`` block ends). ``lazy=False``: read
    everything into NumPy arrays and close the file. ``verify=True``: check every weight's sha256 now (reads all
    weights). ``check``: run the graph and op-schema checks (unknown ops are errors). ``mmap``: allow memory
    mapping. ``isolate=True``: first validate the file in a separate, resource-limited process
    (:func:`check_untrusted`), so that a file crafted against the HDF5 C library (a parser loop or crash) is
    refused instead of hanging or crashing this process; use it for files from strangers. Every failure is a
    :class:`~k5.errors.K5Error` naming the file.
    """
    name = os.fspath(path)
    if isolate:
        check_untrusted(name)
    f: h5py.File | None = None
    source: _Source | None = None
    try:
        f, _ = _open(name)
        source = _Source(f, name, use_mmap=mmap)
        _check_version(f)
        from k5.format.network import MAX_JSON_BYTES, loads_network

        raw = _read_raw(f, "model/network", "the network JSON", required=True, max_bytes=MAX_JSON_BYTES)

        model = loads_network(raw or b"")
        model.path = name
        model.metadata = _read_metadata(f)
        _bind_weights(source, list(weight_paths(model.graph)))
        model.validation = _read_validation(f, source)  # before the checks: its names must match the graph's
        if check:
            from k5.format.checks import check_model

            check_model(model, ops=True, allow_unknown_ops=False)
        model.training = _read_split(f, source, "training")
        model.evaluate = _read_split(f, source, "evaluate")
        if verify:
            verify_checksums(model, require=False)
        if not lazy:
            _materialise(model)
            source.close()
        else:
            model._source = source
        return model
    except K5Error as e:
        if source is not None:
            source.close()
        elif f is not None:
            f.close()
        raise (e if (e.where or "").startswith(name) else e.located(name)) from None
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, UnicodeError) as e:
        if source is not None:
            source.close()
        elif f is not None:
            f.close()
        raise FormatError(f"cannot read the file: {type(e).__name__}: {e}", where=name) from e


def validate(path: str | os.PathLike[str]) -> None:
    """Raise the first problem of a k5 file: layout, schema, graph, op schemas, weight declarations, checksums.

    (``k5 validate`` also re-runs the validation pair.)
    """
    with load(path, check=True, verify=True):
        pass


_ISOLATED_CHILD = """
import json, os, resource, sys
from k5.errors import K5Error
from k5.format.hdf5 import validate
path, budget = sys.argv[1], int(sys.argv[2])
with open("/proc/self/status") as f:
    vm = next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:")), 0)
if vm:
    resource.setrlimit(resource.RLIMIT_AS, (vm + budget, vm + budget))
try:
    validate(path)
    out = {"ok": True}
except K5Error as e:
    out = {"error": type(e).__name__, "message": e.message, "where": e.where}
except MemoryError:
    out = {"error": "HostileSizeError", "message": f"validating it needs more than {budget} bytes of memory"}
sys.stdout.write(json.dumps(out))
"""


def check_untrusted(path: str | os.PathLike[str], *, timeout: float = 120.0, max_memory: int = 4 << 30) -> None:
    """Validate ``path`` (as :func:`validate`: layout, graph, every checksum) in a child process with limits.

    The child may use ``max_memory`` bytes beyond its start-up footprint and ``timeout`` seconds. A hang, a crash
    (e.g. a bug in the HDF5 C library's parser: a malformed global heap makes HDF5 2.0 loop forever) or a memory
    blow-up is reported as :class:`UnsafeFileError` / :class:`HostileSizeError` rather than taking the caller down.
    The child's K5Error is re-raised here with the same class.
    """
    import json
    import signal
    import subprocess
    import sys

    import k5.errors as errors

    name = os.fspath(path)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _ISOLATED_CHILD, name, str(int(max_memory))],
            capture_output=True, text=True, timeout=timeout, env=env, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise UnsafeFileError(
            f"validating it took more than {timeout:g} s in an isolated process (a file crafted against the HDF5 "
            "library can make it loop); refused",
            where=name,
        ) from None
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        raise UnsafeFileError(f"the HDF5 library crashed ({sig}) reading it in an isolated process", where=name)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise UnsafeFileError(
            f"the isolated validation failed (exit status {proc.returncode}): {proc.stderr.strip()[-300:]}", where=name
        ) from None
    if result.get("ok"):
        return
    cls = getattr(errors, str(result.get("error")), None)
    if not (isinstance(cls, type) and issubclass(cls, K5Error)) or cls is errors.UnsupportedOpsError:
        cls = FormatError
    inner = result.get("where") or ""
    raise cls(str(result.get("message")), where=inner if inner.startswith(name) else f"{name}: {inner}".rstrip(": "))


def _materialise(model: Model) -> None:
    for _, node in model.graph.walk():
        for param, value in node.weights.items():
            if isinstance(value, LazyTensor):
                node.weights[param] = value.read()
    if model.validation is not None:
        for values in (model.validation.inputs, model.validation.outputs):
            for k, v in values.items():
                values[k] = v.read() if isinstance(v, LazyTensor) else v
    for split in (model.training, model.evaluate):
        if split is not None:
            for part in ("data", "labels"):
                value = getattr(split, part)
                if isinstance(value, LazyDataset):
                    setattr(split, part, value.numpy())


def verify_checksums(model: Model, *, require: bool = False) -> tuple[int, list[str]]:
    """Check the stored sha256 of every lazily loaded weight.

    Returns (number verified, keys of weights without a checksum); raises :class:`ChecksumError` naming the first
    weight whose bytes differ (and, with ``require=True``, :class:`ChecksumError` when one has no checksum).
    """
    verified, unchecked = 0, []
    for key, value in model.weights().items():
        if not isinstance(value, LazyTensor):
            unchecked.append(key)
            continue
        if value.verify():
            verified += 1
        else:
            if require:
                raise ChecksumError("has no sha256 attribute", where=value.loc)
            unchecked.append(key)
    return verified, unchecked


_ = (weight_shape, WeightSpec)
