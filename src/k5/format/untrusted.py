"""The trust boundary: every check k5 makes on a file's bytes before (or instead of) letting HDF5 act on them.

A security reviewer can read this file whole. Everything a load reads from HDF5 passes one of these functions:

- :func:`check_signature` / :func:`check_superblock`: the HDF5 signature and the superblock's end-of-file address,
  read with plain file I/O before HDF5 opens the file;
- :func:`get_object` / :func:`check_link`: paths resolved link by link, soft, external and user-defined links
  refused;
- :func:`read_attr`: an attribute's HDF5 type class checked before HDF5 converts its value;
- :func:`check_dataset` / :func:`check_dataset_id`: virtual and external storage, foreign filters, null dataspaces
  and declared sizes beyond what the file can hold refused before anything is allocated;
- :func:`dataset_dtype`: the stored type against the k5 dtype table;
- :func:`read_raw` / :func:`read_text`: string datasets size-checked before they are read;
- :func:`check_version`: the format version.

Every failure is a :class:`~k5.errors.K5Error` subclass. What HDF5 itself parses (object headers, B-trees, heaps)
is contained by :mod:`k5.format.guard`.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
from collections.abc import Callable
from typing import Any

import h5py
import numpy as np

from k5.errors import (
    FormatError,
    HostileSizeError,
    K5Error,
    MissingEntryError,
    MissingWeightError,
    NotK5FileError,
    SchemaError,
    TruncatedFileError,
    UnsafeFileError,
    VersionError,
    WeightMismatchError,
)
from k5.format.dtypes import DTYPES, DType, dtype_of, from_numpy
from k5.format.network import split_version

__all__ = [
    "ALLOWED_FILTERS",
    "HDF5_SIGNATURE",
    "MAX_DEFLATE_RATIO",
    "MAX_TEXT_BYTES",
    "SUPPORTED_MAJOR",
    "check_dataset",
    "check_dataset_id",
    "check_link",
    "check_signature",
    "check_superblock",
    "check_version",
    "dataset_dtype",
    "file_size",
    "get_object",
    "native_h5_type",
    "open_file",
    "read_attr",
    "read_raw",
    "read_text",
    "root_attr",
    "set_progress",
    "step_bytes",
]

SUPPORTED_MAJOR = 1
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Limits for free-text entries (metadata) read from a file.
MAX_TEXT_BYTES = 16 << 20
#: deflate cannot expand data by more than ~1032x; a compressed dataset claiming more is hostile.
MAX_DEFLATE_RATIO = 1100
#: Only these HDF5 filters are portable (and safe: no plugin libraries): deflate (gzip), shuffle, fletcher32.
ALLOWED_FILTERS = {h5py.h5z.FILTER_DEFLATE: "deflate", h5py.h5z.FILTER_SHUFFLE: "shuffle", 3: "fletcher32"}

#: Called at the start of each step that asks HDF5 to parse the file, with the bytes the step may read; set only
#: inside the guard's child process (:func:`k5.format.isolate.guard`), which reports the calls as progress.
_progress: list[Callable[[int], None]] = []


def set_progress(report: Callable[[int], None] | None) -> None:
    """Report every HDF5 step of this process to ``report(bytes)`` (None: stop). For the guard's child only."""
    _progress[:] = [] if report is None else [report]


def step_bytes(nbytes: int = 0) -> None:
    """Report one step that may read ``nbytes`` bytes (to the guard, when this process is its child)."""
    if _progress:
        _progress[0](nbytes)


def _string_bytes(f: h5py.File, ds: h5py.Dataset, size: int) -> int:
    """How many bytes reading a scalar string dataset may copy (for the guard's deadline): a fixed-length string's
    size; for a contiguous variable-length one, the length in its stored descriptor (read with plain file I/O, at
    most the file's size); else 0."""
    if ds.dtype.kind == "S":
        return int(ds.dtype.itemsize)
    with contextlib.suppress(OSError, RuntimeError, ValueError, TypeError):
        offset = ds.id.get_offset()
        if offset is not None:
            return min(size, int.from_bytes(os.pread(f.id.get_vfd_handle(), 4, offset), "little"))
    return 0


def check_signature(path: str) -> int:
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
                    check_superblock(fh, offset, st.st_size)
                    return st.st_size
                offset = 512 if offset == 0 else offset * 2
    except OSError as e:
        raise NotK5FileError(f"cannot read the file: {e.strerror or e}") from None
    raise NotK5FileError(
        "not an HDF5 file (no HDF5 signature); a .k5 file is an HDF5 file"
        + (" (the file is empty)" if st.st_size == 0 else "")
    )


def check_superblock(fh: Any, offset: int, size: int) -> None:
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


def check_link(group: Any, name: bytes, where: str) -> bool:
    """True if ``name`` exists in the group (a low-level GroupID) as a hard link; other links are refused."""
    if not group.links.exists(name):
        return False
    kind = group.links.get_info(name).type
    if kind != h5py.h5l.TYPE_HARD:
        what = _LINK_KINDS.get(kind, "user-defined link")
        raise UnsafeFileError(f"{where}: {name.decode(errors='replace')!r} is a {what}; k5 files use hard links only")
    return True


def get_object(f: h5py.File, path: str, where: str, cache: dict[str, Any] | None = None) -> Any:
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
                step_bytes()
                if not isinstance(loc, h5py.h5g.GroupID):
                    raise FormatError(f"{where}: {prefix!r} is a dataset, expected a group")
                name = part.encode("utf-8")
                if not check_link(loc, name, where):
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


def read_attr(owner: Any, name: str, where: str) -> Any:
    """The value of attribute ``name`` of an h5py object (None if absent), its HDF5 type checked before reading."""
    step_bytes()
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


def check_dataset(ds: Any, where: str, file_size: int) -> tuple[int | None, int]:
    """(contiguous data offset or None, stored bytes); refuses virtual/external data, foreign filters, shape bombs."""
    if not isinstance(ds, h5py.Dataset):
        raise FormatError(f"{where}: expected a dataset, found a {type(ds).__name__}")
    offset, nbytes, _ = check_dataset_id(ds.id, where, file_size)
    return offset, nbytes


def check_dataset_id(
    dsid: Any, where: str, file_size: int, itemsize: int | None = None
) -> tuple[int | None, int, tuple[int, ...]]:
    """:func:`check_dataset` on a low-level ``DatasetID``: (offset or None, stored bytes, shape).

    ``itemsize``: the element size when the caller already checked the HDF5 type (saves converting it to NumPy).
    The low-level calls cost a fraction of h5py's high-level properties; a load runs this once per weight.
    """
    step_bytes()
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


def dataset_dtype(ds: h5py.Dataset, where: str) -> DType:
    """The k5 dtype of a dataset: its ``k5_dtype`` attribute, else its native HDF5 type."""
    attr = read_attr(ds, "k5_dtype", where)
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


_H5_TYPES: dict[str, Any] = {}


def native_h5_type(name: str) -> Any:
    """The HDF5 type h5py writes for a native k5 dtype (``float32`` -> IEEE_F32LE), or None (not native/unknown)."""
    t = _H5_TYPES.get(name)
    if t is None:
        d = DTYPES.get(name)
        if d is None or not d.native:
            return None
        t = _H5_TYPES[name] = h5py.h5t.py_create(d.storage)
    return t


def file_size(f: h5py.File) -> int:
    try:
        return os.fstat(f.id.get_vfd_handle()).st_size
    except (OSError, ValueError, TypeError, RuntimeError) as e:
        raise FormatError(f"cannot stat the open file: {e}") from None


def read_raw(
    f: h5py.File, path: str, where: str, *, required: bool = False, max_bytes: int = MAX_TEXT_BYTES
) -> bytes | None:
    """The bytes of a scalar string dataset (None if absent, :class:`MissingEntryError` if ``required``).

    Like every dataset, it is refused when virtual or stored in external files (which would read other files),
    and a fixed-length string larger than ``max_bytes`` or than the file is refused before it is allocated.
    """
    ds = get_object(f, path, where)
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
    size = file_size(f)
    check_dataset(ds, where, size)
    step_bytes(_string_bytes(f, ds, size) if _progress else 0)
    try:
        raw = ds[()] if ds.shape == () else ds[0]
    except (OSError, RuntimeError, ValueError) as e:
        raise FormatError(f"{where}: cannot read '/{path}': {e}") from None
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    return bytes(raw)


def read_text(f: h5py.File, path: str, where: str) -> str | None:
    raw = read_raw(f, path, where)
    if raw is None:
        return None
    if len(raw) > MAX_TEXT_BYTES:
        raise HostileSizeError(f"{where}: '/{path}' is {len(raw)} bytes; the limit is {MAX_TEXT_BYTES}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"{where}: '/{path}' is not valid UTF-8 (byte {e.start})") from None


def root_attr(f: h5py.File, name: str) -> str | None:
    value = read_attr(f, name, "root group")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
        value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return None if value is None else str(value)


def check_version(f: h5py.File) -> None:
    version = root_attr(f, "k5_version")
    if version is None:
        raise NotK5FileError("an HDF5 file, but not a k5 file (no root attribute 'k5_version')")
    parts = split_version(version)
    if parts is None:
        raise FormatError(f"root attribute k5_version must look like MAJOR.MINOR. Received: {version!r}")
    if parts[0] > SUPPORTED_MAJOR:
        raise VersionError(f"the file is k5 format {version}; this reader supports {SUPPORTED_MAJOR}.x (upgrade k5)")
    if parts[0] < 1:
        raise VersionError(f"k5 format {version} was never released")


def open_file(path: str) -> tuple[h5py.File, int]:
    size = check_signature(path)
    try:
        f = h5py.File(path, "r", locking=False)
    except OSError as e:
        text = str(e)
        if "truncated" in text.lower() or "eof" in text.lower():
            raise TruncatedFileError(f"HDF5 cannot open it: {text}") from None
        raise NotK5FileError(f"HDF5 cannot open it: {text}") from None
    return f, size
