"""The Torch7 converter tables (leaf module): ``IMPORTERS`` keyed by Lua ``nn`` class, ``EXPORTERS`` keyed by k5 op.

- ``IMPORTERS[name]``: ``fn(cx, module, path, x) -> value`` turns one ``nn.<name>`` module (a
  :class:`~k5.convert.torch7.reader.T7Object`) applied to ``x`` (a tensor name, or a list of values for a table)
  into k5 nodes and returns its output value. ``produces=`` names the k5 ops it may emit.
- ``EXPORTERS[op]``: ``fn(cx, node) -> T7Object`` lays one k5 node out as one ``nn`` module.

``cudnn.``, ``cunn.`` and ``fbcunn.`` classes are looked up by their ``nn`` twin's name (:func:`nn_name`).
"""

from __future__ import annotations

from k5.convert.table import ConverterTable

__all__ = ["EXPORTERS", "IMPORTERS", "PREFIXES", "nn_name"]

IMPORTERS = ConverterTable("torch7 module")
EXPORTERS = ConverterTable("torch7 layout", keyed_by_op=True)

#: class-name prefixes mapped like ``nn.`` (the CUDA twins keep the nn fields)
PREFIXES = ("nn.", "cudnn.", "cunn.", "fbcunn.")


def nn_name(class_name: str) -> str | None:
    """``cudnn.SpatialConvolution`` -> ``SpatialConvolution``; None for a class outside the nn families."""
    for prefix in PREFIXES:
        if class_name.startswith(prefix):
            return class_name[len(prefix) :]
    return None
