"""Crash safety: SIGKILL a process while it saves, many times; the target is always one complete file.

After every kill the target must be byte-identical to the file that was there before (the old version) or load as
the complete new version (weights equal to that version's seeded weights, validation pair reproduced by running
it). Files left behind by a killed save must never be taken for the target (no other ``*.k5`` appears).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _sec_models import big
from _sec_saver import check_complete

k5 = pytest.importorskip("k5")
hdf5 = pytest.importorskip("k5.format.hdf5", reason="the HDF5 writer (k5.format.hdf5) has not landed yet")

SAVER = Path(__file__).with_name("_sec_saver.py")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, str(SAVER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"saver did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
    return proc


def kill_rounds(tmp_path: Path, kills: int, seed: int) -> dict[str, int]:
    """Run ``kills`` rounds of save-and-SIGKILL; return counts for the report."""
    target = tmp_path / "model.k5"
    hdf5.save(big(0), target)
    current, current_sha = 0, _sha(target)
    rng = random.Random(seed)
    stats = {"kills": 0, "old": 0, "new": 0, "saves_completed": 0, "litter_files": 0}
    for _ in range(kills):
        proc = _spawn("save", str(target), str(current + 1))
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, f"saver failed on its own: {err[-2000:]}"
        stats["kills"] += 1
        saved = [int(line.split()[1]) for line in out.splitlines() if line.startswith("saved ")]
        stats["saves_completed"] += len(saved)
        newest = saved[-1] if saved else current
        # the kill may land after the file is in place but before "saved N" is printed: newest or newest + 1
        if _sha(target) == current_sha:
            assert not saved, f"a save of version {newest} completed but the target still holds version {current}"
            stats["old"] += 1
        else:
            version = check_complete(str(target))
            assert version in (newest, newest + 1), f"target holds version {version}; expected {newest} or {newest + 1}"
            current, current_sha = version, _sha(target)
            stats["new"] += 1
        others = [p.name for p in tmp_path.iterdir() if p != target]
        stats["litter_files"] = len(others)
        assert not [n for n in others if n.endswith(".k5")], f"temp files look like k5 models: {others}"
    return stats


def test_sigkill_during_save_leaves_old_or_new(tmp_path: Path) -> None:
    stats = kill_rounds(tmp_path, kills=50, seed=5)
    print("crash-safety:", stats)
    assert stats["kills"] == 50
    assert stats["new"] > 0  # the kills did not all land before the first write


@pytest.mark.slow
def test_sigkill_during_save_many(tmp_path: Path) -> None:
    stats = kill_rounds(tmp_path, kills=400, seed=55)
    print("crash-safety (slow):", stats)
    assert stats["kills"] == 400


def test_convert_output_is_atomic() -> None:
    pytest.importorskip("k5.cli.convert", reason="`k5 convert` (src/k5/cli/convert.py) has not landed yet")
    pytest.skip("`k5 convert` landed: extend kill_rounds to a convert child (see docs/security.md, crash safety)")
