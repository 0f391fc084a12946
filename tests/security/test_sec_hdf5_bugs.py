"""Files crafted against the HDF5 C library itself, and how k5 contains them.

HDF5 (1.14 and 2.0) loops forever deserializing a global heap collection whose object walk stops advancing, e.g.
on a free-space object of size 0 (found by tools/fuzz_load.py; the loop is in ``H5HG__cache_heap_deserialize``).
Every variable-length string (the root attributes, the network JSON, sha256 attributes) lives in such a heap. k5
cannot stop a loop inside C code in-process, so every ``k5.load`` first lets HDF5 parse the metadata in a forked
child with a deadline (``k5.format.isolate.guard``) and refuses the file when it loops there;
``load(..., isolate=True)`` also validates the whole file in a separate, limited Python process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _sec_harness import Sandbox
from _sec_models import mlp

import k5
from k5.errors import UnsafeFileError
from k5.format.hdf5 import check_untrusted


def zero_free_space_heap(path: Path) -> Path:
    """Rewrite the free-space object of the file's first global heap collection to size 0."""
    data = bytearray(path.read_bytes())
    start = data.find(b"GCOL")
    assert start >= 0 and data[start + 4] == 1
    end = start + int.from_bytes(data[start + 8 : start + 16], "little")
    p = start + 16
    while p + 16 <= end:
        index = int.from_bytes(data[p : p + 2], "little")
        size = int.from_bytes(data[p + 8 : p + 16], "little")
        if index == 0:
            data[p + 8 : p + 16] = bytes(8)
            out = path.with_name("heap_loop.k5")
            out.write_bytes(bytes(data))
            return out
        p += 16 + (size + 7) // 8 * 8
    raise AssertionError("no free-space object in the global heap")


@pytest.fixture
def heap_loop(tmp_path: Path) -> Path:
    base = tmp_path / "base.k5"
    k5.save(mlp(0), base)
    return zero_free_space_heap(base)


def test_in_process_load_of_a_heap_loop_file_is_refused(heap_loop: Path) -> None:
    """The default load refuses it (the guard); the worker's 5 s limit turns a regression into a failure."""
    with Sandbox(timeout=5.0) as sandbox:
        result = sandbox.check(heap_loop, "load-only")
    assert result["outcome"] == "k5error", result
    with pytest.raises(UnsafeFileError, match="HDF5 library made no progress"):
        k5.load(heap_loop)


def test_isolated_load_refuses_a_heap_loop_file(heap_loop: Path) -> None:
    with pytest.raises(UnsafeFileError, match="HDF5 library made no progress"):
        check_untrusted(heap_loop, timeout=5.0)


def test_the_isolated_child_alone_refuses_a_heap_loop_file(heap_loop: Path) -> None:
    """Without the parent's guard, the child process's time limit still refuses it."""
    from k5.format.isolate import check_untrusted as child_only

    with pytest.raises(UnsafeFileError):
        child_only(heap_loop, timeout=30.0)


def test_isolated_load_passes_good_files_and_reports_k5_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.k5"
    k5.save(mlp(1), good)
    with k5.load(good, isolate=True) as model:
        assert model.metadata.description == "version 1"
    data = bytearray(good.read_bytes())
    with k5.load(good) as model:
        offset = model.graph.node("fc0").weights["weight"]._offset
    data[offset + 5] ^= 0x10
    bad = tmp_path / "bad.k5"
    bad.write_bytes(bytes(data))
    with pytest.raises(k5.errors.ChecksumError, match="fc0"):
        k5.load(bad, isolate=True)
