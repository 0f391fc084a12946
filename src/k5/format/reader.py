"""Reading ``.k5`` files: :func:`load` binds the network JSON's declarations to the file's datasets.

Loading is lazy by default: it reads the network JSON and the metadata, checks every weight's declaration against
its dataset, and reads a weight's bytes only when asked (uncompressed contiguous weights are memory-mapped views of
the file). Every check of the file's bytes is in :mod:`k5.format.untrusted`; every failure is a
:class:`~k5.errors.K5Error` naming the file.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any

import h5py
import numpy as np

from k5.errors import FormatError, K5Error, MissingWeightError, WeightMismatchError
from k5.format import isolate as isolation
from k5.format.checks import check_model
from k5.format.checksums import verify_checksums
from k5.format.dtypes import DTYPES, dtype_of
from k5.format.lazy import FileSource, LazyDataset, LazyTensor
from k5.format.model import DataSplit, Metadata, Model, Node, ValidationPair, WeightSpec
from k5.format.names import decode_name, weight_paths
from k5.format.network import MAX_JSON_BYTES, loads_network
from k5.format.untrusted import (
    check_dataset,
    check_dataset_id,
    check_version,
    dataset_dtype,
    get_object,
    native_h5_type,
    open_file,
    read_attr,
    read_raw,
    read_text,
    root_attr,
    step_bytes,
)

__all__ = ["MAX_EAGER_VALIDATION_BYTES", "check_untrusted", "load", "validate"]

#: Validation pairs up to this size (inputs and outputs together) load as writable NumPy arrays (what
#: ``torch.from_numpy`` and friends accept); larger ones stay lazy (:class:`~k5.format.lazy.LazyTensor`).
MAX_EAGER_VALIDATION_BYTES = 64 << 20


# --- binding declarations to datasets ----------------------------------------------------------------------------
def _bind_weight(source: FileSource, h5path: str, spec: WeightSpec, where: str) -> LazyTensor:
    """A lazy tensor for a declared weight, after checking its dataset against the declaration."""
    assert source.file is not None
    ds = get_object(source.file, h5path, where, source.groups)
    if ds is None:
        raise MissingWeightError(f"declared in the network JSON but {h5path!r} is not in the file", where=where)
    offset, _ = check_dataset(ds, where, source.size)
    d = dtype_of(spec.dtype, where=where)
    stored = dataset_dtype(ds, where)
    if stored.name != d.name:
        raise WeightMismatchError(f"declared dtype {d.name}. Received: {stored.name} in {h5path!r}", where=where)
    if tuple(ds.shape) != tuple(spec.shape):
        raise WeightMismatchError(
            f"declared shape {list(spec.shape)}. Received: {list(ds.shape)} in {h5path!r}", where=where
        )
    return LazyTensor(source, h5path, d, tuple(spec.shape), offset, where)


_WEIGHTS = "/model/weights/"


def _bind_weights(source: FileSource, entries: list[tuple[str, Node, str]]) -> None:
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
        group = get_object(source.file, "model/weights", "the weights group", source.groups)
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
    source: FileSource, gid: Any, links: dict[bytes, int], h5path: str, spec: WeightSpec, where: str
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
        expected = None if has_attr else native_h5_type(spec.dtype)
        if expected is not None and not dsid.get_type().equal(expected):
            return None
    except (KeyError, OSError, RuntimeError, ValueError, TypeError):
        return None
    if has_attr:
        offset, _, shape = check_dataset_id(dsid, where, source.size)
        stored = dataset_dtype(h5py.Dataset(dsid), where)  # the attribute's type is checked before reading it
    elif expected is not None:  # the stored type is exactly the declared native one
        stored = DTYPES[spec.dtype]
        offset, _, shape = check_dataset_id(dsid, where, source.size, stored.storage.itemsize)
    else:
        return None
    if stored.name != spec.dtype or shape != tuple(spec.shape):
        return None
    return LazyTensor(source, h5path, stored, shape, offset, where)


def _bind_array(source: FileSource, ds: Any, where: str) -> LazyTensor:
    offset, _ = check_dataset(ds, where, source.size)
    return LazyTensor(source, ds.name, dataset_dtype(ds, where), tuple(ds.shape), offset, where)


# --- the rest of the file ---------------------------------------------------------------------------------------
def _read_metadata(f: h5py.File) -> Metadata:
    meta = Metadata(producer=root_attr(f, "producer") or "", created=root_attr(f, "created") or "")
    for key in ("author", "description", "license"):
        setattr(meta, key, read_text(f, key, f"metadata {key!r}") or "")
    group = get_object(f, "metadata", "metadata")
    if isinstance(group, h5py.Group):
        for link in group:
            key = decode_name(link)
            meta.extra[key] = read_text(f, f"metadata/{link}", f"metadata {key!r}") or ""
    return meta


def _read_validation(f: h5py.File, source: FileSource, *, eager: bool = True) -> ValidationPair | None:
    group = get_object(f, "validate", "validation pair")
    if group is None:
        return None
    if not isinstance(group, h5py.Group):
        raise FormatError("'/validate' must be a group")
    pair = ValidationPair()
    for tol in ("rtol", "atol"):
        raw = read_attr(group, tol, "'/validate'")
        if raw is not None:
            value = np.asarray(raw)
            number = float(value.reshape(-1)[0]) if value.dtype.kind in "fiu" and value.size == 1 else math.nan
            if not (math.isfinite(number) and number >= 0):
                shown = repr(value.reshape(-1)[:3].tolist()) if value.size else "an empty value"
                raise FormatError(f"'/validate' attribute {tol} must be one finite number >= 0. Received: {shown[:60]}")
            setattr(pair, tol, number)
    for part, target in (("input", pair.inputs), ("output", pair.outputs)):
        sub = get_object(f, f"validate/{part}", f"validation {part}s")
        if sub is None:
            continue
        if not isinstance(sub, h5py.Group):
            raise FormatError(f"'/validate/{part}' must be a group")
        for link in sub:
            name = decode_name(link)
            where = f"validation {part} {name!r}"
            target[name] = _bind_array(source, get_object(f, f"validate/{part}/{link}", where), where)
    values = [*pair.inputs.values(), *pair.outputs.values()]
    if eager and sum(v.nbytes for v in values) <= MAX_EAGER_VALIDATION_BYTES:  # small: plain arrays, as users expect
        for tensors in (pair.inputs, pair.outputs):
            for key, tensor in tensors.items():
                tensors[key] = tensor.read()
    return pair


def _read_split(f: h5py.File, source: FileSource, name: str) -> DataSplit | None:
    group = get_object(f, name, f"/{name}")
    if group is None:
        return None
    if not isinstance(group, h5py.Group):
        raise FormatError(f"'/{name}' must be a group")
    split = DataSplit()
    for part in ("data", "labels"):
        where = f"/{name}/{part}"
        ds = get_object(f, f"{name}/{part}", where)
        if ds is None:
            continue
        check_dataset(ds, where, source.size)
        if not ds.shape:
            raise FormatError(f"{where}: must have a row axis. Received: a scalar")
        setattr(split, part, LazyDataset(source, ds.name, dataset_dtype(ds, where), tuple(ds.shape), where))
    return split


# --- the guard's walk ---------------------------------------------------------------------------------------------
_HDF5_ERRORS = (K5Error, KeyError, OSError, RuntimeError, ValueError, TypeError)


def _touch_tree(source: FileSource, path: str) -> None:
    """Open every object under ``path`` through hard links and ask HDF5 what a load may ask of it: the header and
    layout of each dataset, its ``k5_dtype`` and ``sha256`` attributes and its chunk index (no data is read)."""
    assert source.file is not None
    group = get_object(source.file, path, f"/{path}")
    if not isinstance(group, h5py.Group):
        return
    links: list[bytes] = []

    def collect(name: bytes, info: Any) -> None:
        step_bytes()  # one step per link: a group of many links is one HDF5 call
        if info.type == h5py.h5l.TYPE_HARD:
            links.append(name)

    group.id.links.visit(collect, info=True)
    for name in links:
        where = f"/{path}/{name.decode('utf-8', 'replace')}"
        with contextlib.suppress(*_HDF5_ERRORS):
            oid = h5py.h5o.open(group.id, name)
            if isinstance(oid, h5py.h5d.DatasetID):
                check_dataset_id(oid, where, source.size)
                oid.get_type()
                ds = h5py.Dataset(oid)
                for attr in ("k5_dtype", "sha256"):
                    with contextlib.suppress(*_HDF5_ERRORS):
                        read_attr(ds, attr, where)
                dcpl = oid.get_create_plist()
                if dcpl.get_layout() == h5py.h5d.CHUNKED:
                    chunks = math.prod(-(-n // c) for n, c in zip(ds.shape, dcpl.get_chunk(), strict=False))
                    step_bytes(64 * chunks)  # the chunk index to walk: about one B-tree entry per chunk
                    oid.get_num_chunks()


def _preflight(name: str) -> None:
    """Everything a load (and a later checksum check) asks of the HDF5 library, without the network JSON.

    Run by :func:`k5.format.isolate.guard` in a forked child before :func:`load` does the same in-process: the
    root attributes, the network JSON and metadata strings, every object under ``/model/weights``, ``/validate``,
    ``/training`` and ``/evaluate``. Each part goes on after an error in another, so that whatever the in-process
    load reaches first has been reached here.
    """
    f, _ = open_file(name)
    source = FileSource(f, name, use_mmap=False)
    try:
        steps = [
            lambda: check_version(f),
            lambda: read_raw(f, "model/network", "the network JSON", required=True, max_bytes=MAX_JSON_BYTES),
            lambda: _read_metadata(f),
            lambda: _touch_tree(source, "model/weights"),
            lambda: _read_validation(f, source, eager=False),
            lambda: _touch_tree(source, "validate"),
            lambda: _read_split(f, source, "training"),
            lambda: _read_split(f, source, "evaluate"),
            lambda: _touch_tree(source, "training"),
            lambda: _touch_tree(source, "evaluate"),
        ]
        for step in steps:
            with contextlib.suppress(*_HDF5_ERRORS):
                step()
    finally:
        source.close()


def _guard(name: str) -> None:
    try:
        isolation.guard(_preflight, name)
    except K5Error as e:
        raise (e if (e.where or "").startswith(name) else e.located(name)) from None


def check_untrusted(path: str | os.PathLike[str], *, timeout: float = 120.0, max_memory: int = 4 << 30) -> None:
    """:func:`k5.format.isolate.check_untrusted` (the whole validation in a limited child process), preceded by
    the guard's walk of the metadata (:func:`k5.format.isolate.guard`): a file on which HDF5 loops is refused in
    about a second, before a Python process is even started."""
    name = os.fspath(path)
    _guard(name)
    isolation.check_untrusted(name, timeout=timeout, max_memory=max_memory)


# --- loading -----------------------------------------------------------------------------------------------------
def load(
    path: str | os.PathLike[str],
    *,
    lazy: bool = True,
    verify: bool = False,
    check: bool = True,
    mmap: bool = True,
    isolate: bool = False,
    guard: bool = True,
) -> Model:
    """Open a k5 file.

    ``lazy=True`` (default): read the network JSON and metadata; weights are :class:`LazyTensor` objects read on
    first use (memory-mapped when stored uncompressed), data splits are :class:`LazyDataset` objects read in
    slices. The file stays open until ``model.close()`` (or the ``with`` block ends). ``lazy=False``: read
    everything into NumPy arrays and close the file. ``verify=True``: check every weight's sha256 now (reads all
    weights). ``check``: run the graph and op-schema checks (unknown ops are errors). ``mmap``: allow memory
    mapping. ``isolate=True``: first validate the file in a separate, resource-limited process
    (:func:`check_untrusted`), so that a file crafted against the HDF5 C library (a parser loop or crash) is
    refused instead of hanging or crashing this process; use it for files from strangers. ``guard=True``
    (default): first let the HDF5 library parse the file's metadata in a forked child with a deadline that scales
    with the metadata (:func:`k5.format.isolate.guard`), so that a file on which HDF5 loops is refused within about
    a second (``False`` skips it, for files you trust: it saves a fork and a second metadata walk). Every failure
    is a :class:`~k5.errors.K5Error` naming the file.
    """
    name = os.fspath(path)
    if isolate:
        check_untrusted(name)
    elif guard:
        _guard(name)
    f: h5py.File | None = None
    source: FileSource | None = None
    try:
        f, _ = open_file(name)
        source = FileSource(f, name, use_mmap=mmap)
        check_version(f)
        raw = read_raw(f, "model/network", "the network JSON", required=True, max_bytes=MAX_JSON_BYTES)

        model = loads_network(raw or b"")
        model.path = name
        model.metadata = _read_metadata(f)
        _bind_weights(source, list(weight_paths(model.graph)))
        model.validation = _read_validation(f, source)  # before the checks: its names must match the graph's
        if check:
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
