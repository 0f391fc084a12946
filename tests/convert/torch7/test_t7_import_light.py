"""The .t7 path needs no framework: reading and writing Torch7 files work with torch, onnx and cv2 blocked."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def test_t7_round_trip_without_frameworks(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import importlib.abc, sys
        BLOCKED = {{"torch", "onnx", "onnxruntime", "cv2", "tensorflow", "keras", "torchfile"}}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError("blocked framework import: " + name)
        sys.meta_path.insert(0, Block())
        import numpy as np
        import k5
        g = k5.Graph([k5.Node("r", "Relu", ["x"], ["y"])], [k5.TensorInfo("x", "float32", [1, 3])],
                     [k5.TensorInfo("y", "float32")])
        k5.to_torch7(k5.Model(g), {str(tmp_path / "net.t7")!r})
        m = k5.from_torch7({str(tmp_path / "net.t7")!r}, input_shape=["batch", 3])
        print(list(k5.run(m, np.array([[-1.0, 0.5, 2.0]], "f4")).values())[0].tolist())
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "[[0.0, 0.5, 2.0]]" in proc.stdout
