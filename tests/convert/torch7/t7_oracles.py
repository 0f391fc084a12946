"""The oracles of the Torch7 tests, run with the OpenCV venv's Python: OpenCV's Torch importer and torchfile."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


class Oracles:
    def __init__(self, python: str, tmp: Path) -> None:
        self.python = python
        self.tmp = tmp
        self.n = 0

    def _run(self, *args: str) -> None:
        proc = subprocess.run([self.python, *args], capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"oracle {Path(args[0]).name} failed:\n{proc.stderr[-3000:]}")

    def opencv(self, t7: Path | str, x: np.ndarray) -> np.ndarray:
        """OpenCV's ``readNetFromTorch`` run of ``t7`` on ``x``."""
        self.n += 1
        src, dst = self.tmp / f"in{self.n}.npy", self.tmp / f"out{self.n}.npy"
        np.save(src, np.ascontiguousarray(x, dtype=np.float32))
        self._run(str(HERE / "_opencv_oracle.py"), str(t7), str(src), str(dst))
        return np.load(dst)

    def torchfile(self, t7: Path | str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """torchfile's parse of ``t7``: tensors and scalars by dotted path."""
        self.n += 1
        npz, js = self.tmp / f"tf{self.n}.npz", self.tmp / f"tf{self.n}.json"
        self._run(str(HERE / "_torchfile_oracle.py"), str(t7), str(npz), str(js))
        with np.load(npz) as z:
            tensors = {k: z[k] for k in z.files}
        return tensors, json.loads(js.read_text())


def assert_close(got: Any, want: Any, *, rtol: float = 1e-4) -> float:
    """Max abs diff, checked against ``rtol`` times the reference's scale (its largest magnitude); returns it."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    diff = float(np.abs(got - want).max()) if got.size else 0.0
    scale = float(np.abs(want).max()) or 1.0
    assert diff <= rtol * scale, f"max abs diff {diff:.3e} > {rtol} x output scale {scale:.3e}"
    return diff
