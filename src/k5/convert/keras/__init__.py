"""Keras <-> k5. Keras (and TensorFlow) are imported on first use only, never at ``import k5.convert.keras``.

- :func:`from_keras`: a Keras 3 Sequential or functional model -> a k5 model of layer ops (channels-first inside,
  the Keras interface outside; docs/keras.md says where Transposes go).
- ``.keras`` and legacy ``.h5`` files are read without Keras and without executing anything from the file
  (:func:`read_keras`, :func:`read_h5`), and registered as file formats for ``k5 convert``.
"""

from __future__ import annotations

from k5.convert.formats import FileFormat, register_format
from k5.convert.keras import (  # noqa: F401 - fill the converter tables
    export_ops,
    export_rnn,
    layers_attention,
    layers_conv,
    layers_core,
    layers_ops,
    layers_rnn,
    masking,
)
from k5.convert.keras.exporter import custom_objects, save_keras, to_keras
from k5.convert.keras.files import read_h5, read_keras, run_keras_file
from k5.convert.keras.importer import from_keras
from k5.convert.keras.tf_export import to_tensorflow, to_tflite

__all__ = [
    "custom_objects",
    "from_keras",
    "read_h5",
    "read_keras",
    "save_keras",
    "to_keras",
    "to_tensorflow",
    "to_tflite",
]

register_format(FileFormat(
    name="keras",
    extensions=(".keras",),
    description="Keras 3 model archive (config.json + model.weights.h5), read without Keras or code execution",
    read=read_keras,
    write=save_keras,
    run=run_keras_file,
    runtime="Keras (keras.saving.load_model)",
    extra="tensorflow",
    requires=("h5py",),
))
register_format(FileFormat(
    name="keras-h5",
    extensions=(".h5", ".hdf5"),
    description="legacy Keras model (.h5: model_config attribute + model_weights), read with h5py only",
    read=read_h5,
    run=run_keras_file,
    runtime="Keras (keras.saving.load_model)",
    extra="tensorflow",
    requires=("h5py",),
))
