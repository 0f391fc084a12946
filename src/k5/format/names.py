"""HDF5 link names of k5 names (percent-encoding of ``%``, ``/``, ``.`` and ``..``) and where each weight lives."""

from __future__ import annotations

import re
from collections.abc import Iterator

from k5.errors import FormatError, SchemaError
from k5.format.model import Graph, Node

__all__ = ["decode_name", "encode_name", "weight_paths"]

_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def encode_name(name: str, what: str = "name") -> str:
    """The HDF5 link name of a k5 name: ``%`` -> ``%25``, ``/`` -> ``%2F``, and ``.``/``..`` -> ``%2E``/``%2E%2E``."""
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{what} must be a non-empty string. Received: {name!r}")
    if "\x00" in name:
        raise SchemaError(f"{what} contains a NUL character: {name!r}")
    if name in (".", ".."):
        return "%2E" * len(name)
    return name.replace("%", "%25").replace("/", "%2F")


def decode_name(link: str) -> str:
    """The k5 name of an HDF5 link name (every ``%XX`` becomes the byte 0xXX, as UTF-8)."""
    if "%" not in link:
        return link
    raw = _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), link.encode("utf-8"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"link name {link!r} percent-decodes to invalid UTF-8") from None


def weight_paths(graph: Graph) -> Iterator[tuple[str, Node, str]]:
    """(HDF5 path, node, param) of every weight: ``/model/weights/<node>/<param>``; nested graphs' weights live
    under their owner: ``/model/weights/<owner>/<attr>/<node>/<param>`` (``<attr>[i]`` for lists of graphs)."""
    for path, node in graph.walk():
        parts = [encode_name(p, "node id or attribute name") for p in path]
        parts.append(encode_name(node.id, "node id"))
        prefix = "/model/weights/" + "/".join(parts)
        for param in node.weights:
            yield f"{prefix}/{encode_name(param, f'{node.label}: weight name')}", node, param
