"""Helpers of the Keras converter tests: Keras imported quietly, zoo models converted once per session."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_CACHE: dict[str, Any] = {}


def assert_close(got: Any, want: Any, *, rtol: float = 1e-4) -> float:
    """Max abs difference within ``rtol`` of the reference's scale (its max magnitude); returns the relative error."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    scale = float(np.abs(want).max()) or 1.0
    rel = float(np.abs(got - want).max()) / scale if got.size else 0.0
    assert rel <= rtol, f"relative error {rel:.3e} > {rtol}"
    return rel


def keras_model(name: str) -> Any:
    """The zoo model ``name`` with seeded random weights (built once)."""
    key = f"keras:{name}"
    if key not in _CACHE:
        import keras
        from keras_zoo import ZOO, randomize

        keras.utils.set_random_seed(0)
        _CACHE[key] = randomize(ZOO[name](keras))
    return _CACHE[key]


def converted(name: str) -> Any:
    """The k5 model of zoo model ``name`` (validation pair recorded from Keras)."""
    key = f"k5:{name}"
    if key not in _CACHE:
        from k5.convert.keras import from_keras

        _CACHE[key] = from_keras(keras_model(name))
    return _CACHE[key]
