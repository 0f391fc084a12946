"""A converter table: framework name -> converter function, checked against the op registry when it is filled.

Every converter package keeps its mappings in tables of this kind (``IMPORTERS``, ``EXPORTERS``, ...):

- ``keyed_by_op=True``: the keys are k5 op names (an importer from k5 into a framework); each key must be a
  registered op.
- ``produces=``: the k5 ops a converter may emit; each must be a registered op.

Both are checked at registration, which happens when the converter module is imported, so a typo or an op removed
from the registry is an ``ImportError``-time failure that any test importing the package catches. Registering the
same key twice is an error too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from k5.ops import find_schema

__all__ = ["ConverterTable", "TableEntry"]


@dataclass(frozen=True)
class TableEntry:
    fn: Callable[..., Any]
    produces: tuple[str, ...]  # the k5 ops this converter may emit (exporters) or implements (importers)


def _check_op(op_name: str, what: str) -> None:
    domain, _, name = op_name.rpartition(".") if "." in op_name else ("k5", "", op_name)
    if find_schema(name, domain or "k5") is None:
        raise ValueError(f"{what} names op {op_name!r}, which is not in the k5 op registry")


@dataclass
class ConverterTable:
    """Converters keyed by name; a duplicate key or an unregistered op name raises ``ValueError`` at registration."""

    kind: str
    keyed_by_op: bool = False
    entries: dict[str, TableEntry] = field(default_factory=dict)

    def register(self, *keys: str, produces: Iterable[str] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        produced = tuple(produces)

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            where = f"{self.kind} converter {fn.__module__}.{fn.__qualname__}"
            for op_name in produced:
                _check_op(op_name, f"{where} (produces=)")
            for key in keys:
                if self.keyed_by_op:
                    _check_op(key, where)
                if key in self.entries:
                    old = self.entries[key].fn
                    raise ValueError(
                        f"{self.kind} converter for {key!r} is already registered by "
                        f"{old.__module__}.{old.__qualname__}; refusing {fn.__module__}.{fn.__qualname__}"
                    )
                self.entries[key] = TableEntry(fn, produced)
            return fn

        return deco

    def get(self, key: str) -> Callable[..., Any] | None:
        entry = self.entries.get(key)
        return entry.fn if entry is not None else None

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def keys(self) -> list[str]:
        return sorted(self.entries)
