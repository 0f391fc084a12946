"""The export side's imports run one way (issue 9): the converters import the shared context and the tables, never
the driver; the context imports no converter and no driver; no module imports another inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import k5.convert.torch as pkg

ROOT = Path(pkg.__file__).parent
CONVERTERS = ["export_aten", "export_shape", "export_modules", "export_calls", "export_fold"]
DRIVERS = {"k5.convert.torch.exporter", "k5.convert.torch.importer"}


def _imports(name: str) -> tuple[set[str], set[str]]:
    """(modules imported at module level, modules imported inside functions) by module ``name``."""
    tree = ast.parse((ROOT / f"{name}.py").read_text())
    top: set[str] = set()
    inner: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or not node.module or not node.module.startswith("k5"):
            continue
        mods = {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        (top if node in tree.body else inner).update(mods)
    return top, inner


def test_converters_import_the_context_not_the_driver() -> None:
    for name in CONVERTERS:
        top, inner = _imports(name)
        assert not (top | inner) & DRIVERS, name
        assert not {m for m in inner if m.startswith("k5.convert")}, f"{name} imports inside a function"


def test_context_is_a_leaf() -> None:
    top, inner = _imports("export_context")
    torch_modules = {m for m in top | inner if m.startswith("k5.convert.torch")}
    assert torch_modules <= {"k5.convert.torch.dtypes", "k5.convert.torch.dtypes.to_numpy"}


def test_driver_does_not_import_converters_inside_functions() -> None:
    _, inner = _imports("exporter")
    assert not {m for m in inner if m.startswith("k5.convert")}, inner
