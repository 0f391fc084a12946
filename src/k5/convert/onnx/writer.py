"""Writing ONNX files: atomically, with ONNX external data beyond protobuf's 2 GB, and (for a k5 model) without
holding the weights in memory.

- :func:`write_onnx`: k5 model -> file, each weight streamed from the model into the file (:mod:`.deferred`).
- :func:`save_onnx`: an in-memory ``ModelProto`` -> file, serialized one initializer at a time.

Both write a temporary file beside the target and rename it into place; a data file gets a name of its own per save.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from typing import Any

from k5.convert.onnx.deferred import nbytes, write_external, write_inline, write_proto
from k5.convert.onnx.exporter import build_proto
from k5.errors import SaveError
from k5.format.model import Model

__all__ = ["EXTERNAL_DATA_THRESHOLD", "save_onnx", "write_onnx"]

#: models whose weights exceed this many bytes are written with external data (protobuf stops at 2 GB)
EXTERNAL_DATA_THRESHOLD = 2**31 - 2**24


def save_onnx(proto: Any, path: str | os.PathLike[str], *, external: bool | None = None) -> None:
    """Write ``proto`` to ``path`` atomically; weights go to a data file beside it when they exceed
    :data:`EXTERNAL_DATA_THRESHOLD` (or when ``external`` is True).

    The data file gets a name of its own per save (``<name>.<token>.data``) and is complete before the ``.onnx`` is
    renamed into place, so a kill at any point leaves the old model with its old data, or the new model with its
    new data; the old data file is removed after the switch. To write a k5 model, :func:`write_onnx` does the same
    without holding the weights in memory.
    """
    import onnx

    if external is None:
        external = sum(t.ByteSize() for t in proto.graph.initializer) > EXTERNAL_DATA_THRESHOLD

    def write(tmp: str, location: str) -> None:
        if location:
            copy = onnx.ModelProto()
            copy.CopyFrom(proto)  # saving with external data rewrites the tensors it moves
            onnx.save_model(
                copy, tmp, save_as_external_data=True, all_tensors_to_one_file=True, location=location,
                size_threshold=0,
            )  # fmt: skip
        else:
            with open(tmp, "wb") as f:
                write_proto(proto, f)

    _atomic_save(path, write, external=external)


def write_onnx(
    model: Model,
    path: str | os.PathLike[str],
    *,
    opset: int | None = None,
    external: bool | None = None,
    check: Callable[[str], None] | None = None,
) -> Any:
    """Convert ``model`` and write it to ``path``, as ``save_onnx(to_onnx(model, opset=opset), path)`` does, but
    streaming each weight from the model (a memory-mapped k5 file's weights are read in place) into the file:
    the peak memory is about the largest weight, not the model (see :mod:`k5.convert.onnx.deferred`).

    ``external`` as for :func:`save_onnx`. ``check(tmp_path)``, when given, runs on the complete file (and its data
    file) before it replaces ``path``; an exception it raises leaves ``path`` as it was (e.g. a numerical check in
    onnxruntime). Returns the ModelProto written, with the large weights left out (placeholders marked as external
    data): for reporting its opset and nodes, not for running.
    """
    proto, pending = build_proto(model, opset, defer=True)
    size = sum(nbytes(v) for v in pending.values())
    size += sum(len(t.raw_data) for t in proto.graph.initializer if t.name not in pending)
    if external is None:
        external = size > EXTERNAL_DATA_THRESHOLD
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))

    def write(tmp: str, location: str) -> None:
        with open(tmp, "wb") as f:
            if location:
                with open(os.path.join(folder, location), "wb") as data:
                    write_external(proto, pending, f, data, location)
                    data.flush()
                    os.fsync(data.fileno())
            else:
                write_inline(proto, pending, f)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(tmp)

    _atomic_save(path, write, external=external)
    return proto


def _atomic_save(path: str | os.PathLike[str], write: Callable[[str, str], None], *, external: bool) -> None:
    """``write(tmp, location)`` writes the model to ``tmp`` (and, when ``location`` is set, its data file of that
    name beside it); the result replaces ``path`` atomically and stale data files of the old model are removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SaveError(f"the directory {folder!r} does not exist", where=path)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}")
    old_data = _external_locations(path)
    location = f"{os.path.basename(path)}.{secrets.token_hex(4)}.data" if external else ""
    try:
        write(tmp, location)
        os.replace(tmp, path)
    except BaseException as e:
        if location:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, location))
        if isinstance(e, (OSError, ValueError)):  # disk full, permissions, a model over protobuf's 2 GB limit
            raise SaveError(f"cannot write the ONNX file: {type(e).__name__}: {e}", where=path) from e
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    for stale in old_data - {location}:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, stale))


def _external_locations(path: str) -> set[str]:
    """The data files (plain names beside ``path``) that an existing ONNX file at ``path`` refers to."""
    if not os.path.exists(path):
        return set()
    from k5.convert.onnx.wire import scan

    try:
        old, _ = scan(path)  # the old model's structure, without reading its inline weights
    except Exception:  # noqa: BLE001 - an unreadable old file simply has no data files to clean up
        return set()
    return {
        e.value
        for t in old.graph.initializer
        for e in t.external_data
        if e.key == "location" and os.path.basename(e.value) == e.value
    }
