"""Declarative converter tables for PyTorch <-> k5.

Three tables, each keyed by a string so that importing this module never imports torch:

- :data:`MODULE_EXPORTERS`: ``nn.Module`` class (qualified name, e.g. ``"torch.nn.modules.linear.Linear"``) -> a
  function that turns one call of such a module into k5 nodes (the layer keeps its structure: one node per layer).
- :data:`ATEN_EXPORTERS`: ATen overload (e.g. ``"aten.add.Tensor"``) -> a function that maps one FX node.
- :data:`IMPORTERS`: k5 op name -> a function that adds the op to a ``torch.fx`` graph.

Registering the same key twice is an error. :func:`supported` derives the op-support table from the tables, so it
cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ATEN_EXPORTERS", "IMPORTERS", "MODULE_EXPORTERS", "ConverterTable", "supported"]


@dataclass
class _Entry:
    fn: Callable[..., Any]
    produces: tuple[str, ...]  # the k5 ops this converter may emit (exporters) or implements (importers)


@dataclass
class ConverterTable:
    """A registry of converters keyed by name; a duplicate registration raises ``ValueError``."""

    kind: str
    entries: dict[str, _Entry] = field(default_factory=dict)

    def register(self, *keys: str, produces: Iterable[str] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            for key in keys:
                if key in self.entries:
                    old = self.entries[key].fn
                    raise ValueError(
                        f"{self.kind} converter for {key!r} is already registered by "
                        f"{old.__module__}.{old.__qualname__}; refusing {fn.__module__}.{fn.__qualname__}"
                    )
                self.entries[key] = _Entry(fn, tuple(produces))
            return fn

        return deco

    def get(self, key: str) -> Callable[..., Any] | None:
        entry = self.entries.get(key)
        return entry.fn if entry is not None else None

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def keys(self) -> list[str]:
        return sorted(self.entries)


MODULE_EXPORTERS = ConverterTable("module exporter")
ATEN_EXPORTERS = ConverterTable("ATen exporter")
IMPORTERS = ConverterTable("k5 op importer")


def _load() -> None:
    from k5.convert.torch import export_aten, export_modules, import_ops  # noqa: F401 - registrations


def supported() -> dict[str, dict[str, list[str]]]:
    """k5 op -> {"export": [torch modules / ATen ops that produce it], "import": [how to_torch runs it]}.

    Generated from the converter tables (for docs/ops.md's PyTorch columns).
    """
    _load()
    out: dict[str, dict[str, list[str]]] = {}
    for table in (MODULE_EXPORTERS, ATEN_EXPORTERS):
        for key, entry in table.entries.items():
            for op in entry.produces:
                out.setdefault(op, {"export": [], "import": []})["export"].append(key)
    for key, entry in IMPORTERS.entries.items():
        out.setdefault(key, {"export": [], "import": []})["import"] = list(entry.produces) or ["yes"]
    for v in out.values():
        v["export"].sort()
    return dict(sorted(out.items()))
