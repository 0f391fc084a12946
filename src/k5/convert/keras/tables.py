"""The Keras converter tables (leaf module).

- :data:`LAYERS`: Keras layer class name -> converter ``fn(builder, call) -> list[Val]`` (Keras -> k5); each entry
  declares with ``produces=`` the k5 ops it may emit, checked against the op registry at import.
- :data:`EXPORTERS`: k5 op -> builder of Keras layers (k5 -> Keras), keyed by registered op names.
- :data:`NO_OPS`: layers that compute the identity at inference (dropout and noise layers, regularizers).
"""

from __future__ import annotations

from k5.convert.table import ConverterTable

__all__ = ["EXPORTERS", "LAYERS", "NO_OPS", "REFUSED"]

LAYERS = ConverterTable("Keras layer")
EXPORTERS = ConverterTable("Keras exporter", keyed_by_op=True)

NO_OPS = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout", "GaussianNoise",
    "AlphaDropout", "ActivityRegularization", "Identity", "RandomFlip", "RandomRotation", "RandomZoom",
    "RandomTranslation", "RandomContrast", "RandomCrop", "RandomBrightness",
})

#: layers refused on purpose, with the reason given to the user
REFUSED = {
    "Lambda": "a Lambda layer holds Python code (bytecode in a .keras file); k5 neither converts nor runs it. "
    "Replace it with built-in layers, or export the model to ONNX first",
    "TFSMLayer": "a TFSMLayer wraps a TensorFlow SavedModel graph, not Keras layers",
}
