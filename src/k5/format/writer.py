"""Writing ``.k5`` files: :func:`save`.

The layout is specified in ``docs/spec.md``. Saving writes a temporary file beside the target, one dataset at a
time, and renames it over the target at the end, so an interrupted save leaves any old file intact.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import tempfile
from collections.abc import Iterable
from typing import Any

import h5py
import numpy as np

from k5._version import __version__
from k5.errors import K5Error, SaveError, SchemaError, WeightMismatchError
from k5.format.checks import check_model
from k5.format.checksums import digest
from k5.format.dtypes import DTYPES, DType, from_numpy
from k5.format.model import Metadata, Model, ValidationPair, WeightSpec, weight_dtype
from k5.format.names import encode_name, weight_paths
from k5.format.network import dumps_network

__all__ = ["ALIGNMENT", "FORMAT_VERSION", "save"]

#: The format version this release writes (root attribute ``k5_version``); readers accept any 1.x.
FORMAT_VERSION = "1.0"
#: Every allocation of at least this many bytes (so every weight) starts at a multiple of ALIGNMENT bytes.
ALIGNMENT_THRESHOLD = 1
ALIGNMENT = 64
_STRING = h5py.string_dtype("utf-8")
_WRITE_BLOCK = 64 << 20  # bytes per write when copying large data in slices


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
        ds.attrs["sha256"] = digest(stored)


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
        shape: tuple[int, ...] | None = tuple(int(s) for s in value.shape)
        if not shape:
            raise SchemaError(f"{where} must have at least one dimension (rows). Received: a 0-d value")
        first = np.asarray(value[0:0])
        batches: Iterable[Any] = (value[i : i + _rows(shape, first.dtype, _WRITE_BLOCK)] for i in
                                  range(0, shape[0], _rows(shape, first.dtype, _WRITE_BLOCK)))  # fmt: skip
    else:
        batches = iter(value)
        shape = None
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
            check_model(model, ops=True, allow_unknown_ops=False)
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
