"""Reading and writing ``.k5`` files (HDF5): the public entry points, kept here for existing callers.

The work is split by job (docs/spec.md specifies the layout):

- :mod:`k5.format.names`: link-name encoding and where each weight lives;
- :mod:`k5.format.lazy`: lazy tensors, lazy datasets and copy-on-write maps;
- :mod:`k5.format.writer`: :func:`save`;
- :mod:`k5.format.untrusted`: the trust boundary (every check of the file's bytes);
- :mod:`k5.format.reader`: :func:`load`, :func:`validate` (binding declarations to datasets);
- :mod:`k5.format.isolate` (+ :mod:`k5.format.isolated_child`): validation in a resource-limited process;
- :mod:`k5.format.checksums`: sha256 of stored weights.
"""

from __future__ import annotations

from k5.format.checksums import verify_checksums
from k5.format.lazy import CopyOnWrite, LazyDataset, LazyTensor
from k5.format.names import decode_name, encode_name, weight_paths
from k5.format.reader import check_untrusted, load, validate
from k5.format.untrusted import ALLOWED_FILTERS, MAX_DEFLATE_RATIO, MAX_TEXT_BYTES
from k5.format.writer import FORMAT_VERSION, save

__all__ = [
    "ALLOWED_FILTERS",
    "FORMAT_VERSION",
    "MAX_DEFLATE_RATIO",
    "MAX_TEXT_BYTES",
    "CopyOnWrite",
    "LazyDataset",
    "LazyTensor",
    "check_untrusted",
    "decode_name",
    "encode_name",
    "load",
    "save",
    "validate",
    "verify_checksums",
    "weight_paths",
]
