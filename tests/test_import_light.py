"""`import k5` (and the core: format, ops, runtime, CLI, the format registry) loads NumPy and h5py only, never a
framework."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKED = ("torch", "onnx", "onnxruntime", "tensorflow", "keras", "jax", "safetensors")


def test_core_imports_no_framework():
    code = textwrap.dedent(
        f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError("blocked framework import: " + name)
        sys.meta_path.insert(0, Block())
        import numpy as np
        import k5, k5.ops, k5.runtime, k5.format.hdf5, k5.cli.main
        from k5.format.model import Graph, Model, Node, TensorInfo
        io = [TensorInfo("x", "float32", [2])], [TensorInfo("y", "float32", [2])]
        g = Graph([Node("r", "Relu", ["x"], ["y"])], *io)
        print(k5.run(Model(g), np.array([-1.0, 2.0], "f4"))["y"].tolist())
        from k5.convert.formats import all_formats  # every converter package registers its formats: no framework
        print("formats:", sorted(f.name for f in all_formats()))
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({BLOCKED!r}))
        print("frameworks:", loaded)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "[0.0, 2.0]" in proc.stdout
    assert "frameworks: []" in proc.stdout
    assert "'k5'" in proc.stdout and "'onnx'" in proc.stdout
