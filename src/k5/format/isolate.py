"""Process isolation: validate an untrusted file in a separate, resource-limited process.

:func:`check_untrusted` runs ``python -m k5.format.isolated_child`` with a time and memory limit; a hang, a crash
of the HDF5 C library or a memory blow-up there becomes a :class:`~k5.errors.K5Error` here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import k5.errors as errors
from k5.errors import FormatError, K5Error, UnsafeFileError

__all__ = ["check_untrusted"]

CHILD_MODULE = "k5.format.isolated_child"


def check_untrusted(path: str | os.PathLike[str], *, timeout: float = 120.0, max_memory: int = 4 << 30) -> None:
    """Validate ``path`` (layout, graph, every checksum: :func:`k5.format.reader.validate`) in a limited child.

    The child may use ``max_memory`` bytes beyond its start-up footprint and ``timeout`` seconds. A hang, a crash
    (e.g. a bug in the HDF5 C library's parser: a malformed global heap makes HDF5 2.0 loop forever) or a memory
    blow-up is reported as :class:`UnsafeFileError` / :class:`HostileSizeError` rather than taking the caller down.
    The child's K5Error is re-raised here with the same class.
    """
    name = os.fspath(path)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", CHILD_MODULE, name, str(int(max_memory))],
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
