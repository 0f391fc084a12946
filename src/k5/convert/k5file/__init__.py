"""The ``.k5`` file format in the format registry: read, write and run a k5 file with k5 itself.

- read: :func:`k5.load` with ``isolate=True``: a source given to ``k5 convert`` is untrusted, so the HDF5 library
  first parses it in a resource-limited child process.
- write: :func:`k5.save` (atomic; ``compression="gzip"`` as an option), so ``k5 convert a.k5 b.k5`` re-saves:
  upgrades, recompresses, adds checksums.
- run: the NumPy reference runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from k5.convert.formats import FileFormat, register_format
from k5.format.model import Model

__all__ = ["K5_FORMAT"]


def read_k5(path: str) -> Model:
    from k5.format.hdf5 import load

    return load(path, isolate=True)


def write_k5(model: Model, path: str, *, compression: str | None = None) -> None:
    from k5.format.hdf5 import save

    save(model, path, compression=compression)


def run_k5(path: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    from k5.format.hdf5 import load
    from k5.runtime import run

    with load(path) as model:  # `run` gets a file `read` accepted (isolated) or one k5 just wrote
        outputs = run(model, dict(inputs))
        # copies: an output may be a view of a memory-mapped weight, which closing the file releases
        return {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in outputs.items()}


K5_FORMAT = register_format(
    FileFormat(
        name="k5",
        extensions=(".k5",),
        description="k5 file (HDF5: network JSON, weights, metadata, validation pair)",
        read=read_k5,
        write=write_k5,
        run=run_k5,
        runtime="k5 reference runtime",
        write_options=("compression",),
    )
)
