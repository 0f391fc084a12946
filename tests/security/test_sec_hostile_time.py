"""Bounded time on files crafted against the HDF5 C library, with default arguments (issue 8, item 4).

``k5.load``, ``k5.format.hdf5.validate``/``check_untrusted`` (what ``k5 validate`` runs) and ``k5 inspect`` must
return or raise a K5Error within 2 s on a file whose HDF5 metadata is small, even where HDF5 itself would loop
forever. The files are fuzzer finds kept in tests/data/malicious/ (see its README) and the heap made by
test_sec_hdf5_bugs.zero_free_space_heap. Everything runs in one subprocess with a hard timeout, so a regression
(a hang) fails the test instead of hanging the suite; each call is timed inside the subprocess, after imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _sec_models import mlp
from test_sec_hdf5_bugs import zero_free_space_heap

import k5

MALICIOUS = Path(__file__).resolve().parents[1] / "data" / "malicious"
HOSTILE = sorted(MALICIOUS.glob("hdf5_*.k5"))
LIMIT_S = 2.0

_PROBE = textwrap.dedent(
    """
    import contextlib, io, json, sys, time
    import k5, k5.format.hdf5 as hdf5
    from k5.cli.main import main
    from k5.errors import K5Error

    def inspect(path):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(["inspect", path])
        if status != 1 or "k5: error:" not in err.getvalue():
            raise AssertionError(f"k5 inspect exit status {status}: {err.getvalue()[-300:]}")
        raise K5Error(err.getvalue().strip())

    calls = {"load": lambda p: k5.load(p).close(), "validate": hdf5.validate, "check_untrusted": hdf5.check_untrusted,
             "inspect": inspect}
    for path in sys.argv[1:]:
        for name, fn in calls.items():
            start = time.perf_counter()
            try:
                fn(path)
                outcome = "returned"
            except K5Error as e:
                outcome = type(e).__name__
            except BaseException as e:
                outcome = f"foreign {type(e).__name__}: {e}"
            print(json.dumps({"file": path, "call": name, "outcome": outcome, "s": time.perf_counter() - start}),
                  flush=True)
    """
)


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("hostile") / "base.k5"
    k5.save(mlp(0), base)
    return [*HOSTILE, zero_free_space_heap(base)]


def test_the_kept_files_are_there() -> None:
    assert len(HOSTILE) >= 3, f"expected the fuzzer finds in {MALICIOUS}"


def test_hostile_files_are_refused_within_two_seconds(hostile_files: list[Path]) -> None:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, *map(str, hostile_files)],
            capture_output=True, text=True, timeout=60 + 15 * len(hostile_files), env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        done = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"a call hung (hard timeout); finished before it:\n{done}")
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 4 * len(hostile_files), proc.stdout + proc.stderr[-2000:]
    slowest = max(results, key=lambda r: r["s"])
    print(f"slowest refusal: {slowest['s']:.2f} s ({slowest['call']} of {Path(slowest['file']).name})")
    for r in results:
        assert r["outcome"] != "returned" and not r["outcome"].startswith("foreign"), r
        assert r["s"] < LIMIT_S, r


def test_the_guard_passes_good_files_and_keeps_their_errors(tmp_path: Path) -> None:
    """The guard refuses nothing valid, and a file with an ordinary defect keeps its own error class."""
    good = tmp_path / "good.k5"
    k5.save(mlp(3), good)
    with k5.load(good) as model:
        assert model.metadata.description == "version 3"
    data = bytearray(good.read_bytes())
    data[8 + 5] = 3  # superblock: 3-byte offsets
    bad = tmp_path / "bad.k5"
    bad.write_bytes(bytes(data))
    with pytest.raises(k5.errors.NotK5FileError):
        k5.load(bad)


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    if int(fh.read().rsplit(b")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the guard forks on Linux only")
def test_a_guard_child_dies_with_its_killed_parent() -> None:
    """A process killed while its guard child spins in HDF5 must not leave that child burning a CPU."""
    import signal
    import time

    script = (
        "import sys, k5, k5.format.isolate as iso\n"
        "iso.GUARD_IDLE_CPU = iso.GUARD_BASE_CPU = 600.0\n"  # the guard would not stop it for minutes
        "print('loading', flush=True)\n"
        "k5.load(sys.argv[1])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(HOSTILE[0])], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "loading"
        deadline = time.monotonic() + 30
        children: list[int] = []
        while not children and time.monotonic() < deadline:
            time.sleep(0.05)
            children = _children(proc.pid)
        assert children, "the load forked no guard child"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{c}") for c in children):
        time.sleep(0.05)
    alive = [c for c in children if os.path.exists(f"/proc/{c}")]
    for c in alive:  # do not leave it spinning even when the test fails
        os.kill(c, signal.SIGKILL)
    assert not alive, "the guard child outlived its killed parent"
