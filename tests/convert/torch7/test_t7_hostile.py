"""Hostile .t7 files get named K5Errors, never a hang, a crash or a huge allocation.

Every case is read in one child process (each under a 10 s alarm) with a hard timeout on the whole child, so a hang
fails the test instead of stalling the run. A fuzz pass flips bytes of a valid file: each read ends in a value or a
K5Error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from t7_hostile import ASCII_TENSOR, CASES, valid_net

from k5 import errors

HERE = Path(__file__).resolve().parent
FUZZ_CASES = 150


def _fuzzed(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    data = bytearray(valid_net() if seed % 4 else ASCII_TENSOR)  # every 4th case mutates an ASCII file
    for _ in range(int(rng.integers(1, 6))):
        pos = int(rng.integers(0, len(data)))
        if rng.random() < 0.5:
            data[pos] = int(rng.integers(0, 256))
        else:  # a 4-byte field set to an extreme value
            value = int(rng.choice([0x7FFFFFFF, -1, 0, 3, 4, 6, 1 << 20]))
            data[pos : pos + 4] = value.to_bytes(4, "little", signed=True)
    return bytes(data)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    tmp = tmp_path_factory.mktemp("t7_hostile")
    manifest: list[dict[str, Any]] = []
    for name, (data, call, kw, _) in CASES.items():
        path = tmp / f"{name}.t7"
        path.write_bytes(data)
        manifest.append({"name": name, "file": str(path), "call": call, "kw": kw})
    for seed in range(FUZZ_CASES):
        path = tmp / f"fuzz_{seed}.t7"
        path.write_bytes(_fuzzed(seed))
        manifest.append({"name": f"fuzz_{seed}", "file": str(path), "call": "convert", "kw": {}})
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    src = str(Path(__import__("k5").__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(HERE / "_hostile_child.py"), str(tmp / "manifest.json")],
                          capture_output=True, text=True, timeout=180, env=env, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, list[str]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_file(name: str, outcomes: dict[str, list[str]]) -> None:
    expected = CASES[name][3]
    got, message = outcomes[name]
    if expected == "ok":
        assert got == "ok", message
        return
    cls = getattr(errors, got, None)
    assert cls is not None and any(issubclass(cls, getattr(errors, e)) for e in expected.split("|")), (
        f"{name}: expected {expected}, got {got}: {message}"
    )
    assert f"{name}.t7" in message  # the error names the file


def test_unsupported_modules_are_listed_at_once(outcomes: dict[str, list[str]]) -> None:
    got, message = outcomes["unsupported_modules"]
    assert got == "UnsupportedOpsError"
    assert "nn.Foo (x2)" in message and "nn.Bar (x1)" in message and "cudnn.Baz (x1)" in message


def test_fuzzed_files_end_in_a_value_or_a_k5error(outcomes: dict[str, list[str]]) -> None:
    bad = {k: v for k, v in outcomes.items() if k.startswith("fuzz_") and (v[0] == "timeout" or "crash" in v[0])}
    assert not bad, json.dumps(bad, indent=1)[:4000]
    refused = sum(1 for k, v in outcomes.items() if k.startswith("fuzz_") and v[0] != "ok")
    assert refused > FUZZ_CASES // 4  # the mutations do reach the checks
