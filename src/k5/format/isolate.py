"""Process isolation: what the HDF5 C library does with a file's bytes happens, first, in another process.

- :func:`guard` (every :func:`k5.load` by default): a forked child asks HDF5 for everything a load will (every
  object header, attribute, string and chunk index the load reaches, but no weight bytes), reporting each step in
  shared memory. The parent kills it when a step makes no progress for ``GUARD_IDLE_CPU`` seconds of the child's
  CPU time (a parser loop, such as HDF5's on a malformed global heap) or when the whole walk overruns a budget
  proportional to the metadata (steps and bytes); a crash of the child is reported too. Only then does the load
  run in this process, over structures now known to terminate. Its cost scales with the metadata, not the weights.
- :func:`check_untrusted` (``k5 validate``, ``load(isolate=True)``): the whole validation, checksums included, in
  ``python -m k5.format.isolated_child`` with a time and memory limit.

A hang, a crash of the HDF5 C library or a memory blow-up there becomes a :class:`~k5.errors.K5Error` here.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import mmap
import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable

import h5py

import k5.errors as errors
from k5.errors import FormatError, K5Error, UnsafeFileError
from k5.format.untrusted import set_progress

__all__ = ["GUARD_IDLE_CPU", "check_untrusted", "guard"]

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


#: CPU seconds one HDF5 step (open an object, read an attribute...) may take in the guard's child, plus
#: ``GUARD_BYTE_CPU`` per byte the step announces (a long string, a large chunk index).
GUARD_IDLE_CPU = 0.1
#: Wall-clock seconds without a step before the child counts as stuck even when it burns no CPU.
GUARD_IDLE_WALL = 10.0
#: CPU seconds for the whole walk: a base, plus an allowance per step and per byte of text read.
GUARD_BASE_CPU = 1.0
GUARD_STEP_CPU = 1e-3
GUARD_BYTE_CPU = 1e-8
#: fork() is safe to use here on Linux (on macOS, system frameworks may not survive it; Windows has none).
GUARD_AVAILABLE = sys.platform.startswith("linux") and hasattr(os, "fork")
#: prctl(PR_SET_PDEATHSIG) from the C library, so a guard child dies with its parent (looked up at import time)
_PR_SET_PDEATHSIG = 1
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True) if GUARD_AVAILABLE else None
except OSError:  # pragma: no cover - no C library to load
    _LIBC = None
_SHARED = struct.Struct("<QQQ")  # steps, bytes announced in all, bytes announced by the current step


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def guard(work: Callable[[str], object], path: str) -> None:
    """Run ``work(path)`` in a forked child first; :class:`UnsafeFileError` when HDF5 loops or crashes there.

    ``work`` asks HDF5 for what the caller is about to (its exceptions are ignored: the caller meets them again
    in-process). Steps are reported by the trust-boundary functions (:func:`k5.format.untrusted.set_progress`).
    The child is killed when one step takes more than ``GUARD_IDLE_CPU`` CPU seconds (or ``GUARD_IDLE_WALL``
    seconds of wall time), or when the walk overruns ``GUARD_BASE_CPU`` + ``GUARD_STEP_CPU`` per step +
    ``GUARD_BYTE_CPU`` per byte. Without fork (not Linux), nothing is checked.
    """
    if not GUARD_AVAILABLE:
        return
    shared = mmap.mmap(-1, _SHARED.size)
    r, w = os.pipe()
    # h5py serialises every HDF5 call with one lock; holding it across fork() means no other thread of this
    # process is inside HDF5 at that moment, so the child cannot inherit a lock nobody will release.
    parent = os.getpid()
    with h5py._objects.phil:
        try:
            pid = os.fork()
        except OSError:  # no process to spare (EAGAIN, a sandbox): load unguarded rather than not at all
            os.close(r)
            os.close(w)
            shared.close()
            return
        if pid == 0:  # the child: never returns
            try:
                gc.disable()  # a full collection of the parent's objects is no HDF5 step: it must not count
                # a parent killed while HDF5 loops here (SIGKILL, no finally) must not leave this process spinning
                if _LIBC is not None:
                    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                if os.getppid() != parent:  # the parent died before prctl
                    os._exit(0)
                os.close(r)
                counts = [0, 0]

                def report(nbytes: int) -> None:
                    counts[0] += 1
                    counts[1] += nbytes
                    _SHARED.pack_into(shared, 0, counts[0], counts[1], nbytes)

                set_progress(report)
                with contextlib.suppress(BaseException):  # the parent meets the same error in-process
                    work(path)
                os.write(w, b"d")  # done: the parent goes on without waiting for this process's teardown
            finally:
                os._exit(0)
    os.close(w)
    finished = False
    try:
        finished = _watch(pid, r, shared, path)
    finally:
        os.close(r)
        shared.close()
        with contextlib.suppress(ChildProcessError):
            if not finished and os.waitpid(pid, os.WNOHANG) == (0, 0):  # interrupted: it must not outlive us
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            elif finished:
                _EXITING.append(pid)
        _reap()


#: guard children that reported done and are exiting (tearing down a copy of a large process takes a while);
#: reaped without waiting at the next guard call
_EXITING: list[int] = []


def _reap() -> None:
    for pid in list(_EXITING):
        try:
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                continue
        except ChildProcessError:
            pass
        _EXITING.remove(pid)


def _watch(pid: int, r: int, shared: mmap.mmap, path: str) -> bool:
    """Watch the child until it reports done (True) or exits (False); kill it and raise when it is stuck."""
    last_steps = -1
    start_cpu = idle_cpu = 0.0
    idle_wall = time.monotonic()
    while True:
        ready, _, _ = select.select([r], [], [], 0.01)  # the pipe's end of file wakes us when the child exits
        if ready and os.read(r, 1) == b"d":
            return True
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.WIFSIGNALED(status):
                sig = signal.Signals(os.WTERMSIG(status)).name
                raise UnsafeFileError(
                    f"the HDF5 library crashed ({sig}) parsing its metadata in a guard process; refused", where=path
                )
            return False
        steps, nbytes, step = _SHARED.unpack_from(shared, 0)
        cpu = _cpu_seconds(pid)
        now = time.monotonic()
        if cpu is None:
            cpu = start_cpu + (now - idle_wall)  # no /proc: count wall time as CPU time
        if steps != last_steps:
            last_steps, idle_cpu, idle_wall = steps, cpu, now
        budget = GUARD_BASE_CPU + steps * GUARD_STEP_CPU + nbytes * GUARD_BYTE_CPU
        allowed = GUARD_IDLE_CPU + step * GUARD_BYTE_CPU
        if cpu - idle_cpu > allowed or now - idle_wall > GUARD_IDLE_WALL or cpu > budget:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            what = "made no progress for" if cpu <= budget else "overran its budget of"
            raise UnsafeFileError(
                f"the HDF5 library {what} {min(cpu - idle_cpu, budget):.2f} s of CPU parsing its metadata (step "
                f"{steps}; a file crafted against the HDF5 library can make it loop); refused",
                where=path,
            )
