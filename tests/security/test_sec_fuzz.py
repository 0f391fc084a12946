"""Fuzzing the loader with tools/fuzz_load.py: a ~26 s smoke in the default tier, 3 minutes in the slow tier.

Each run is a subprocess (its address space capped, a per-input timeout); exit status 0 means no input raised
anything but a K5Error, hung or blew the memory cap. The long run is documented in docs/security.md.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fuzz_load.py"


def _tool():
    spec = importlib.util.spec_from_file_location("k5_fuzz_load", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fuzz(target: str, seconds: int, tmp_path: Path) -> int:
    """Run the fuzzer; return the number of executions (fails the test on any finding)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--target", target, "--seconds", str(seconds), "--timeout", "10",
         "--artifacts", str(tmp_path / f"artifacts-{target}")],
        capture_output=True, text=True, timeout=seconds + 120, env=env, cwd=tmp_path,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"fuzzer finding (inputs in {tmp_path}):\n{out[-4000:]}"
    m = re.search(r"Done (\d+) runs", out) or re.search(r"executions=(\d+)", out)
    assert m, out[-2000:]
    print(f"fuzz {target}: {m.group(1)} executions in {seconds} s, no finding")
    return int(m.group(1))


def test_fuzz_smoke(tmp_path: Path) -> None:
    execs = fuzz("file", 8, tmp_path) + fuzz("meta", 8, tmp_path) + fuzz("embed", 5, tmp_path)
    execs += fuzz("json", 5, tmp_path)
    assert execs > 1000


@pytest.mark.slow
def test_fuzz_ci_run(tmp_path: Path) -> None:
    execs = fuzz("file", 60, tmp_path) + fuzz("meta", 60, tmp_path) + fuzz("embed", 30, tmp_path)
    execs += fuzz("json", 30, tmp_path)
    assert execs > 10_000


def test_plain_engine_stops_and_saves_a_finding(tmp_path: Path) -> None:
    """The harness can fail: a target raising a non-K5Error stops the run and keeps the input."""
    tool = _tool()

    def target(data: bytes) -> None:
        if len(data) % 7 == 3:
            raise IndexError("planted bug")

    with pytest.raises(IndexError, match="planted"):
        tool.run_random(target, [b"0123456789" * 4], 30.0, 1, tmp_path, 10)
    saved = [p for p in tmp_path.iterdir() if p.name.startswith("crash-")]
    assert len(saved) == 1 and len(saved[0].read_bytes()) % 7 == 3


def test_meta_target_patches_metadata_only(tmp_path: Path) -> None:
    """The ``meta`` target's positions cover the superblock and the heaps, never a weight's stored bytes."""
    from _sec_models import mlp

    import k5

    tool = _tool()
    base = tmp_path / "base.k5"
    k5.save(mlp(0), base)
    positions = set(tool.metadata_positions(base))
    with k5.load(base) as model:
        spans = [(t._offset, t._offset + t.nbytes) for t in model.weights().values()]
    assert all(t is not None for t, _ in spans)
    assert set(range(8)) <= positions and base.read_bytes().find(b"GCOL") in positions
    assert not any(start <= p < end for p in positions for start, end in spans)
    seed = base.read_bytes()
    patched = tool.patch_metadata(seed, sorted(positions), bytes([0, 0, 0, 0x42]))
    assert patched[0] == 0x42 and patched[1:] == seed[1:]
