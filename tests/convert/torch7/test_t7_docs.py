"""docs/torch7.md's module table names every Lua module the importer maps and every k5 op the exporter lays out."""

from __future__ import annotations

import re
from pathlib import Path

from k5.convert.torch7.tables import EXPORTERS, IMPORTERS

DOC = Path(__file__).resolve().parents[3] / "docs" / "torch7.md"


def _table() -> list[list[str]]:
    text = DOC.read_text()
    section = text.split("## Module table", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Lua module")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_every_imported_module_is_documented() -> None:
    documented = {name for row in _table() for name in re.findall(r"`(\w+)", row[0])}
    assert set(IMPORTERS.keys()) - documented == set()


def test_every_exported_op_is_documented() -> None:
    documented = {name for row in _table() for name in re.findall(r"`(\w+)`", row[2])}
    assert set(EXPORTERS.keys()) - documented == set()
