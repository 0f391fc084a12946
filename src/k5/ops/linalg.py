"""Linear algebra ops: MatMul, Gemm, Linear, Einsum."""

from __future__ import annotations

import numpy as np

from k5.ops.registry import op


@op("Linear", inputs=["X", "@weight", "@bias?"], outputs=["Y"])
def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """A fully connected layer: ``Y = X @ weight.T + bias`` over the last axis of X.

    ``weight`` has shape ``[out_features, in_features]`` (PyTorch's layout), ``bias`` ``[out_features]``.
    """
    y = np.matmul(x, weight.T)
    return y + bias if bias is not None else y
