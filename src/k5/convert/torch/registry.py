"""Declarative converter tables for PyTorch <-> k5.

Three tables, each keyed by a string so that importing this module never imports torch:

- :data:`MODULE_EXPORTERS`: ``nn.Module`` class (qualified name, e.g. ``"torch.nn.modules.linear.Linear"``) -> a
  function that turns one call of such a module into k5 nodes (the layer keeps its structure: one node per layer).
- :data:`ATEN_EXPORTERS`: ATen overload (e.g. ``"aten.add.Tensor"``) -> a function that maps one FX node.
- :data:`IMPORTERS`: k5 op name -> a builder that adds the op to a ``torch.fx`` graph (see
  :mod:`.import_context`), registered with :func:`register_builder`.

They are :class:`k5.convert.table.ConverterTable` objects: registering the same key twice, an :data:`IMPORTERS` key
that is not a registered op, or a ``produces=`` op that is not, raises ``ValueError`` when the converter module is
imported. :func:`supported` derives the op-support table from the tables, so it cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k5.convert.table import ConverterTable

__all__ = ["ATEN_EXPORTERS", "IMPORTERS", "IMPORT_HOW", "MODULE_EXPORTERS", "register_builder", "supported"]

MODULE_EXPORTERS = ConverterTable("module exporter")
ATEN_EXPORTERS = ConverterTable("ATen exporter")
IMPORTERS = ConverterTable("k5 op importer", keyed_by_op=True)
#: k5 op -> how ``to_torch`` runs it (``"nn.Conv1d/2d/3d"``), for the op-support table
IMPORT_HOW: dict[str, str] = {}


def register_builder(*ops: str, how: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a ``to_torch`` builder for k5 ``ops`` in :data:`IMPORTERS` (each must be a registered op)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        IMPORTERS.register(*ops)(fn)
        IMPORT_HOW.update(dict.fromkeys(ops, how))
        return fn

    return deco


def supported() -> dict[str, dict[str, list[str]]]:
    """k5 op -> {"export": [torch modules / ATen ops that produce it], "import": [how to_torch runs it]}.

    Generated from the converter tables (for docs/ops.md's PyTorch columns), which the package ``k5.convert.torch``
    fills when it is imported (as it is before any of its modules).
    """
    out: dict[str, dict[str, list[str]]] = {}
    for table in (MODULE_EXPORTERS, ATEN_EXPORTERS):
        for key, entry in table.entries.items():
            for op in entry.produces:
                out.setdefault(op, {"export": [], "import": []})["export"].append(key)
    for key in IMPORTERS.entries:
        out.setdefault(key, {"export": [], "import": []})["import"] = [IMPORT_HOW.get(key) or "yes"]
    for v in out.values():
        v["export"].sort()
    return dict(sorted(out.items()))
