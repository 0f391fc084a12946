"""Shape and data-movement ops: reshape, transpose, slice, gather, scatter, concat, split, pad, constants..."""

from __future__ import annotations

import numpy as np

from k5.ops.registry import op


@op("Constant", inputs=["@value"], outputs=["output"])
def constant(value: np.ndarray) -> np.ndarray:
    """A stored tensor (the node's weight ``value``)."""
    return value
