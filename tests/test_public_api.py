"""The public API: `from k5 import *` works, every name in k5.__all__ resolves, and a missing optional framework
is a MissingDependencyError naming the extra to install, not a bare `No module named 'torch'`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str, *args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "src") + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)  # fmt: skip


def test_star_import_and_every_public_name_resolves():
    proc = _python(
        """
        import importlib.util
        from k5 import *
        import k5
        names = list(k5.__all__)
        assert len(names) == len(set(names)), names
        missing = [n for n in names if n not in globals()]
        assert not missing, missing
        for name in k5._LAZY:  # a lazy name is public exactly when its module exists, and then it resolves
            present = importlib.util.find_spec(k5._LAZY[name][0]) is not None
            assert (name in names) == present, (name, present)
            if present:
                assert callable(getattr(k5, name)), name
        assert {"save", "load", "run", "from_onnx", "to_onnx", "from_torch", "to_torch"} <= set(names)
        print("ok", len(names))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")


BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):  # as if torch, onnx and onnxruntime were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnx", "onnxruntime"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
"""


def test_a_missing_framework_names_the_extra(tmp_path):
    proc = _python(
        BLOCK
        + textwrap.dedent(
            """
        import contextlib, io
        import numpy as np
        import k5
        from k5.convert import require
        from k5.errors import MissingDependencyError
        from k5.format.model import Graph, Model, Node, TensorInfo
        decl = [TensorInfo("x", "float32", [2])], [TensorInfo("y", "float32", [2])]
        g = Graph([Node("r", "Relu", ["x"], ["y"])], *decl)
        k5.save(Model(g), "m.k5")
        calls = {"to_torch": lambda: k5.to_torch(Model(g)), "from_torch": lambda: k5.from_torch(None, ()),
                 "to_onnx": lambda: k5.to_onnx(Model(g)), "from_onnx": lambda: k5.from_onnx("m.onnx"),
                 "require": lambda: require("torch", "torch")}
        for name, call in calls.items():
            try:
                call()
            except MissingDependencyError as e:
                print(name, "->", e)
            else:
                print(name, "-> no error")
        from k5.cli.main import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(["convert", "m.k5", "m.onnx"])
        print("cli", rc, err.getvalue().strip())
        print("files", sorted(__import__("os").listdir(".")))
        """
        ),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" -> ", 1) for line in proc.stdout.splitlines() if " -> " in line)
    for name in ("to_torch", "from_torch", "require"):
        assert "pip install 'k5[torch]'" in lines[name] and "'torch'" in lines[name], lines
    for name in ("to_onnx", "from_onnx"):
        assert "pip install 'k5[onnx]'" in lines[name] and "'onnx'" in lines[name], lines
    assert "No module named" not in proc.stdout
    cli = next(line for line in proc.stdout.splitlines() if line.startswith("cli "))
    assert cli.startswith("cli 1 k5: error: m.onnx: ") and "pip install 'k5[onnx]'" in cli
    assert "files ['m.k5']" in proc.stdout
