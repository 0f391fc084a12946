"""The malicious corpus (corpus.py): every file ends in a K5Error, never another exception, a crash or a hang.

Each file is loaded in a sandboxed worker process (address space capped at 1 GiB above its baseline, 20 s per file),
so a large allocation shows up as a MemoryError and a hang or a segfault as a failed case rather than a lost run.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _sec_harness import BAD, Sandbox, summarize
from corpus import Case, generate

import k5.errors as errors

pytest.importorskip("k5.format.hdf5", reason="the HDF5 reader (k5.format.hdf5) has not landed yet")

#: corpus cases that currently fail (name -> the bug); empty once fixed (regression tests: test_sec_regressions.py)
KNOWN: dict[str, str] = {}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    return generate(tmp_path_factory.mktemp("malicious"))


@pytest.fixture(scope="module")
def outcomes(corpus: list[Case]) -> dict[str, dict[str, Any]]:
    with Sandbox(mem_mb=1024, timeout=20.0) as sandbox:
        return {case.name: sandbox.check(case.path, case.mode) for case in corpus}


def test_corpus_covers_every_slot(corpus: list[Case]) -> None:
    slots = Counter(c.slot for c in corpus)
    print("corpus:", len(corpus), "files;", dict(sorted(slots.items())))
    assert len(corpus) >= 400
    for slot in ("truncation", "bitflip", "wrong-type", "huge-shape", "json-depth", "non-utf8", "unknown-dtype",
                 "external", "names", "checksum", "graph", "attr-type", "version"):  # fmt: skip
        assert slots[slot] > 0, f"no corpus case attacks {slot!r}"


def test_no_crash_hang_or_foreign_exception(corpus: list[Case], outcomes: dict[str, dict[str, Any]]) -> None:
    """The issue's bar: each file produces a K5Error subclass (or, for possibly harmless mutations, loads)."""
    bad = {c.name: outcomes[c.name] for c in corpus if c.name not in KNOWN and outcomes[c.name]["outcome"] in BAD}
    assert not bad, f"{len(bad)} files escaped as non-K5Error / crash / hang:\n{summarize(bad)}"


def test_bad_files_do_not_load(corpus: list[Case], outcomes: dict[str, dict[str, Any]]) -> None:
    loaded = [c.name for c in corpus if c.name not in KNOWN and outcomes[c.name]["outcome"] == "ok" and not c.may_load]
    assert not loaded, f"malformed files loaded without an error: {loaded}"


def test_errors_name_the_defect(corpus: list[Case], outcomes: dict[str, dict[str, Any]]) -> None:
    """Where a case names the defect's error class (e.g. UnsafeFileError for an external link), that class is raised."""
    wrong = []
    for case in corpus:
        result = outcomes[case.name]
        if case.name in KNOWN or not case.expect or result["outcome"] != "k5error":
            continue
        raised = getattr(errors, result["type"])
        if not any(issubclass(raised, getattr(errors, name)) for name in case.expect):
            wrong.append(f"{case.name}: expected {'/'.join(case.expect)}, got {result['type']}: {result['message']}")
    assert not wrong, "\n".join(wrong)


def test_sandbox_detects_hangs_crashes_and_large_allocations(tmp_path: Path) -> None:
    """The harness itself can fail: its self-test modes hang, segfault and allocate 4 GiB."""
    junk = tmp_path / "junk.k5"
    junk.write_bytes(b"\x00" * 100)
    with Sandbox(timeout=5.0) as sandbox:
        assert sandbox.check(junk)["type"] == "NotK5FileError"
        assert sandbox.check(junk, mode="selftest-hang")["outcome"] == "hang"
        assert sandbox.check(junk, mode="selftest-crash")["outcome"] == "died"
        result = sandbox.check(junk, mode="selftest-alloc")
        assert result["outcome"] == "exception" and result["type"] == "MemoryError", result
        assert sandbox.check(junk)["type"] == "NotK5FileError"  # restarted after the crash
