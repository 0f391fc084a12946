"""Lua Torch7 (``.t7``) <-> k5, with a reader and writer of Torch7's serialization of its own (pure Python + NumPy).

- :func:`from_torch7`: a ``.t7`` network (``torch.save`` of an ``nn`` module, binary or ASCII) -> a k5 model;
- :func:`to_torch7`: a k5 model made of layers Lua's ``nn`` has -> a ``.t7`` file as ``torch.save`` writes it;
- :func:`read_t7` / :func:`write_t7`: the serialization itself (the reader is the trust boundary: bounded, no code).

The ``t7`` file format is registered for ``k5 convert``; its own runtime is OpenCV's Torch importer
(``cv2.dnn.readNetFromTorch``, opencv-python 4.x only), used when ``cv2`` has it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from k5.convert.formats import FileFormat, register_format
from k5.convert.torch7 import export_modules, import_modules  # noqa: F401 - the converter tables
from k5.convert.torch7.exporter import model_to_t7, to_torch7
from k5.convert.torch7.importer import from_torch7, t7_to_model
from k5.convert.torch7.reader import T7Object, T7Storage, T7Table, read_t7, read_t7_bytes
from k5.convert.torch7.writer import t7_bytes, write_t7
from k5.errors import ConversionError

__all__ = [
    "T7Object",
    "T7Storage",
    "T7Table",
    "from_torch7",
    "model_to_t7",
    "opencv_python",
    "read_t7",
    "read_t7_bytes",
    "run_opencv",
    "t7_bytes",
    "t7_to_model",
    "to_torch7",
    "write_t7",
]


def _has_cv2() -> bool:
    """Whether ``cv2`` is importable here (without importing it)."""
    try:
        return importlib.util.find_spec("cv2") is not None
    except (ImportError, ValueError):
        return False


def default_opencv_venv() -> str:
    """Where ``.ci/oracle-opencv.sh`` builds the OpenCV venv by default: ``$XDG_CACHE_HOME/k5/oracle-opencv``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "k5", "oracle-opencv")


def opencv_python() -> str | None:
    """The Python of the OpenCV venv (``$K5_OPENCV_VENV``, else :func:`default_opencv_venv`) when it exists."""
    venv = os.environ.get("K5_OPENCV_VENV") or default_opencv_venv()
    exe = os.path.join(venv, "bin", "python")
    return exe if os.access(exe, os.X_OK) else None


def run_opencv(path: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Run a ``.t7`` network with OpenCV's own Torch importer (``cv2.dnn.readNetFromTorch``) on its one input.

    Uses ``cv2`` in this Python when it has the importer, else the OpenCV venv's Python in a subprocess.
    """
    import numpy as np

    if len(inputs) != 1:
        raise ConversionError(f"a Torch7 network takes one input. Received: {sorted(inputs)}")
    x = np.ascontiguousarray(next(iter(inputs.values())), dtype=np.float32)
    exe = sys.executable if _has_cv2() else opencv_python()
    if exe is None:
        raise ConversionError("running a .t7 file needs OpenCV 4.x (pip install 'opencv-python-headless<5')")
    with tempfile.TemporaryDirectory(prefix="k5-t7-") as tmp:
        in_path, out_path = os.path.join(tmp, "input.npy"), os.path.join(tmp, "output.npy")
        np.save(in_path, x, allow_pickle=False)
        child = os.path.join(os.path.dirname(os.path.abspath(__file__)), "opencv_child.py")
        proc = subprocess.run([exe, child, os.fspath(path), in_path, out_path], capture_output=True, text=True,
                              timeout=600, check=False)  # fmt: skip
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise ConversionError(f"OpenCV could not run the network: {' / '.join(tail)}", where=os.fspath(path))
        return {"output": np.load(out_path, allow_pickle=False)}


register_format(
    FileFormat(
        name="t7",
        extensions=(".t7",),
        description="Lua Torch7 network (torch.save of an nn module); OpenCV's dnn module still runs them",
        read=from_torch7,
        write=to_torch7,
        run=run_opencv if _has_cv2() or opencv_python() else None,
        runtime="OpenCV (cv2.dnn.readNetFromTorch)",
        extra=None,
    )
)
