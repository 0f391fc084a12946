"""docs/ops.md is generated: regenerating its op table from the registry gives the committed text."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("onnx")

ROOT = Path(__file__).resolve().parents[3]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_ops_doc", ROOT / "tools" / "gen_ops_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ops_doc_is_up_to_date() -> None:
    gen = _generator()
    committed = gen.DOC.read_text(encoding="utf-8")
    regenerated = gen.render(gen.current_scoreboard(committed))
    assert regenerated == committed, "docs/ops.md is out of date: run python tools/gen_ops_doc.py"


def test_every_registered_op_is_in_the_doc() -> None:
    from k5.ops import all_schemas

    text = (ROOT / "docs" / "ops.md").read_text(encoding="utf-8")
    missing = [s.qualname for s in all_schemas() if f"| `{s.qualname}` |" not in text]
    assert not missing
