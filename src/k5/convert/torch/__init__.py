"""PyTorch <-> k5. ``torch`` is imported on first use only.

- :func:`from_torch` / :func:`save_torch`: capture an ``nn.Module`` with ``torch.export`` into a k5 model whose
  layers keep their structure (an ``nn.Linear`` is one ``Linear`` node named by its module path, owning its weights).
- :func:`to_torch`: any k5 model -> an ``nn.Module`` (a ``torch.fx.GraphModule``) built from real PyTorch layers
  holding the weights as parameters; ``state_dict()`` keys follow the node ids (see :mod:`.importer`).
- :data:`SUPPORTED`: k5 op -> which PyTorch modules/ATen ops export to it and whether ``to_torch`` runs it,
  generated from the converter tables.

The k5 -> PyTorch side: :mod:`.registry` holds the tables; :mod:`.import_context` the types builders share
(``Builder``, ``ConstValue``); :mod:`.import_runtime` the functions generated modules call; ``import_<family>``
one builder per op (registered with ``register_builder``, attributes resolved by the op schema); :mod:`.importer`
the driver. This package imports every converter module eagerly; builders never import the driver.
"""

from __future__ import annotations

from typing import Any

# the converter modules fill the tables of .registry as they are imported: all of them, eagerly, before the drivers
from k5.convert.torch import (  # noqa: F401 - registrations
    export_aten,
    export_modules,
    export_shape,
    import_elementwise,
    import_layers,
    import_reduce,
    import_rnn,
    import_shape,
)
from k5.convert.torch.exporter import from_torch, save_torch
from k5.convert.torch.importer import to_torch
from k5.convert.torch.registry import supported

__all__ = ["SUPPORTED", "from_torch", "save_torch", "supported", "to_torch"]


def __getattr__(name: str) -> Any:
    if name == "SUPPORTED":
        value = supported()
        globals()["SUPPORTED"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
