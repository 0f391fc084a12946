"""Fixtures of the Lua Torch7 tests: the OpenCV oracle venv (built once if missing) and the oracles run in it.

The oracles run in a separate virtual environment (opencv-python-headless 4.12, numpy < 2.3, torchfile) made by
``.ci/oracle-opencv.sh``: at ``$K5_OPENCV_VENV``, else ``~/.cache/k5/oracle-opencv``. The session fixture builds
it when it is missing; the tests that need it skip (with the build's last lines as the reason) only when pip cannot
install it, or fail when ``K5_REQUIRE_ORACLES=1`` (CI, which builds it first).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from t7_oracles import Oracles

from k5.convert.torch7 import default_opencv_venv

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
VENV = Path(os.environ.get("K5_OPENCV_VENV") or default_opencv_venv())


@pytest.fixture(scope="session")
def oracle_python() -> str:
    """The OpenCV venv's Python, building the venv first when it is missing."""
    exe = VENV / "bin" / "python"
    try:
        proc = subprocess.run(["bash", str(ROOT / ".ci" / "oracle-opencv.sh"), str(VENV)],
                              capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.skip("building the OpenCV oracle venv took over 15 minutes (.ci/oracle-opencv.sh)")
    if proc.returncode != 0 or not exe.exists():
        tail = " / ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        if os.environ.get("K5_REQUIRE_ORACLES") == "1":  # CI built it already: a missing oracle is a failure there
            pytest.fail(f"K5_REQUIRE_ORACLES=1 but the OpenCV oracle venv is missing: {tail}")
        pytest.skip(f"the OpenCV oracle venv could not be built by .ci/oracle-opencv.sh (pip failed?): {tail}")
    return str(exe)


@pytest.fixture(scope="session")
def oracles(oracle_python: str, tmp_path_factory: pytest.TempPathFactory) -> Oracles:
    return Oracles(oracle_python, tmp_path_factory.mktemp("t7_oracles"))
