"""k5 -> TensorFlow: a SavedModel with a serving signature, and a TFLite flatbuffer from TensorFlow's converter.

Both go through :func:`k5.convert.keras.to_keras` (Keras 3 on the TensorFlow backend), so the result runs with
TensorFlow alone: ``tf.saved_model.load(dir).signatures["serving_default"]`` or ``tf.lite.Interpreter``; k5's
custom layers are traced into the graph, not referenced by name. Writes are atomic: the SavedModel is built in a
temporary directory beside the target and renamed into place; the ``.tflite`` file likewise.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from k5.convert import require
from k5.errors import ConversionError
from k5.format.model import Model

__all__ = ["to_tensorflow", "to_tflite"]

def _tf() -> Any:
    return require("tensorflow", "tensorflow", purpose="SavedModel and TFLite export")


def _export_saved_model(model: Model, target: str) -> None:
    from k5.convert.keras.exporter import to_keras
    from k5.convert.keras.importer import import_keras

    keras = import_keras()
    if keras.backend.backend() != "tensorflow":
        raise ConversionError(f"a SavedModel needs Keras' TensorFlow backend (KERAS_BACKEND=tensorflow). "
                              f"Received: {keras.backend.backend()!r}")
    kmodel = to_keras(model)
    kmodel.export(target, format="tf_saved_model", verbose=False)


def to_tensorflow(model: Model, path: str | os.PathLike[str]) -> None:
    """Write ``model`` as a TensorFlow SavedModel directory at ``path`` (signature ``serving_default``, inputs
    named as the k5 graph's). An existing directory at ``path`` is replaced only once the new one is complete."""
    _tf()
    target = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(target) or "."
    tmp = tempfile.mkdtemp(prefix=".k5-savedmodel-", dir=parent)
    try:
        built = os.path.join(tmp, "model")
        _export_saved_model(model, built)
        old = None
        if os.path.exists(target):
            old = os.path.join(tmp, "old")
            os.replace(target, old)
        os.replace(built, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def to_tflite(model: Model, path: str | os.PathLike[str], *, select_tf_ops: bool = True) -> None:
    """Write ``model`` as a ``.tflite`` flatbuffer made by TensorFlow's own converter (from a SavedModel).
    ``select_tf_ops`` lets ops without a TFLite builtin (some recurrent layers) run as TensorFlow ops."""
    tf = _tf()
    target = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(target) or "."
    with tempfile.TemporaryDirectory(prefix=".k5-tflite-", dir=parent) as tmp:
        saved = os.path.join(tmp, "saved")
        _export_saved_model(model, saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if select_tf_ops:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        try:
            data = converter.convert()
        except Exception as e:  # noqa: BLE001 - the converter raises ConverterError, and plain Exceptions too
            raise ConversionError(f"TensorFlow's TFLite converter failed: {str(e)[:2000]}") from None
        part = os.path.join(tmp, "model.tflite")
        with open(part, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, target)
