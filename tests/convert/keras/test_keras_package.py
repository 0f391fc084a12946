"""The Keras converter package: importing it loads no framework; a missing Keras is a K5Error with the install line;
its converter tables are checked against the op registry."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_ENV, timeout=120)


def test_import_loads_no_framework() -> None:
    done = _run(
        "import sys, k5, k5.convert.keras\n"
        "from k5.convert.formats import format_for\n"
        "assert format_for('m.keras').name == 'keras' and format_for('m.h5').name == 'keras-h5'\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'torch', 'onnx')]\n"
        "assert not bad, bad\n"
    )
    assert done.returncode == 0, done.stderr


def test_missing_keras_names_the_extra() -> None:
    done = _run(
        "import sys\n"
        "sys.modules['keras'] = None  # as if not installed\n"
        "import k5\n"
        "try:\n"
        "    k5.from_keras(object())\n"
        "except k5.K5Error as e:\n"
        "    print(e)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'k5[tensorflow]'" in done.stdout


def test_tables_name_registered_ops() -> None:
    import k5.convert.keras  # noqa: F401 - fills the tables
    from k5.convert.keras.tables import EXPORTERS, LAYERS
    from k5.ops import find_schema

    assert "Conv2D" in LAYERS and "Conv" in EXPORTERS
    for key, entry in LAYERS.entries.items():
        for op in entry.produces:
            assert find_schema(op, "k5") is not None, (key, op)
    with pytest.raises(ValueError, match="not in the k5 op registry"):
        LAYERS.register("NotALayer", produces=("NoSuchOp",))(lambda b, c: [])
