"""Keras <-> k5. Keras (and TensorFlow) are imported on first use only, never at ``import k5.convert.keras``.

- :func:`from_keras`: a Keras 3 Sequential or functional model -> a k5 model of layer ops (channels-first inside,
  the Keras interface outside; see docs/keras.md for where Transposes go).
- ``.keras`` and legacy ``.h5`` files are read without Keras and without executing anything from the file
  (:mod:`.files`), and registered as file formats for ``k5 convert``.
"""

from __future__ import annotations

from k5.convert.keras import (  # noqa: F401 - fill LAYERS
    layers_attention,
    layers_conv,
    layers_core,
    layers_ops,
    layers_rnn,
)
from k5.convert.keras.importer import from_keras

__all__ = ["from_keras"]
