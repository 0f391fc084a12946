"""Checksums: the sha256 of each weight's stored bytes, written by the writer and checked by the reader.

The digest covers the stored form (little-endian storage dtype, C order), so any reader can check it without
knowing k5's dtypes. Checksums detect corruption, not tampering (docs/security.md).
"""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

import numpy as np

from k5.errors import ChecksumError
from k5.format.model import Model

__all__ = ["Checksummed", "check_digest", "digest", "verify_checksums"]


def digest(stored: np.ndarray) -> str:
    """sha256 (hex) of an array's bytes in C order (the array is in its stored dtype)."""
    return hashlib.sha256(np.ascontiguousarray(stored).reshape(-1).view(np.uint8).data).hexdigest()


def check_digest(expected: str, actual: str, where: str) -> None:
    """:class:`ChecksumError` when ``actual`` differs from the recorded ``expected`` (hex, any case)."""
    if actual != expected.lower():
        raise ChecksumError(f"sha256 mismatch. Expected: {expected}. Received: {actual}", where=where)


@runtime_checkable
class Checksummed(Protocol):
    """A value read from a file that can check its recorded checksum (:class:`k5.format.lazy.LazyTensor`)."""

    @property
    def loc(self) -> str: ...

    def verify(self) -> bool: ...


def verify_checksums(model: Model, *, require: bool = False) -> tuple[int, list[str]]:
    """Check the stored sha256 of every lazily loaded weight.

    Returns (number verified, keys of weights without a checksum); raises :class:`ChecksumError` naming the first
    weight whose bytes differ (and, with ``require=True``, :class:`ChecksumError` when one has no checksum).
    """
    verified, unchecked = 0, []
    for key, value in model.weights().items():
        if not isinstance(value, Checksummed):
            unchecked.append(key)
            continue
        if value.verify():
            verified += 1
        else:
            if require:
                raise ChecksumError("has no sha256 attribute", where=value.loc)
            unchecked.append(key)
    return verified, unchecked
