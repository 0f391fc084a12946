"""Elementwise ops: arithmetic, math functions, activations, comparisons, logic. NumPy broadcasting rules."""

from __future__ import annotations

import numpy as np

from k5.ops.registry import op


@op("Relu", inputs=["X"], outputs=["Y"])
def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``."""
    return np.maximum(x, np.zeros((), dtype=x.dtype))


@op("Add", inputs=["A", "B"], outputs=["C"])
def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b`` with NumPy broadcasting."""
    return np.add(a, b)
