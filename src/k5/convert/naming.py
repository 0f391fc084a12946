"""Unique names for converters: ``base``, else ``base_2``, ``base_3``..."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["unique_name"]


def unique_name(base: str, taken: set[str], *, refused: Callable[[str], bool] | None = None) -> str:
    """The first of ``base``, ``base_2``, ``base_3``... not in ``taken`` (nor ``refused``); it is added to ``taken``."""
    candidate, n = base, 1
    while candidate in taken or (refused is not None and refused(candidate)):
        n += 1
        candidate = f"{base}_{n}"
    taken.add(candidate)
    return candidate
