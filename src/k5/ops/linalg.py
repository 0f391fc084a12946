"""Linear algebra ops: MatMul, Gemm, Linear, Einsum, Det, Embedding."""

from __future__ import annotations

import numpy as np

from k5.errors import OpError
from k5.ops.common import compute_dtype
from k5.ops.registry import op


@op("MatMul", inputs=["A", "B"], outputs=["Y"])
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Matrix product with NumPy ``matmul`` semantics (1-D operands promoted and squeezed, batch broadcast)."""
    if a.ndim == 0 or b.ndim == 0:
        raise OpError(f"MatMul operands must have rank >= 1. Received: shapes {list(a.shape)} and {list(b.shape)}")
    if a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
        raise OpError(
            f"MatMul inner dimensions differ. Received: A {list(a.shape)} (K={a.shape[-1]}), "
            f"B {list(b.shape)} (K={b.shape[0 if b.ndim == 1 else -2]})"
        )
    ct = compute_dtype(a.dtype)
    y = np.matmul(a.astype(ct, copy=False), b.astype(ct, copy=False))
    return np.asarray(y, dtype=a.dtype)


@op("Gemm", inputs=["A", "@B", "@C?"], outputs=["Y"])
def gemm(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray | None,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    transA: int = 0,
    transB: int = 0,
) -> np.ndarray:
    """``Y = alpha * A' @ B' + beta * C`` with ``A' = A.T`` if ``transA`` (likewise B); C broadcasts to [M, N]."""
    if a.ndim != 2 or b.ndim != 2:
        raise OpError(f"Gemm expects 2-D A and B. Received: A {list(a.shape)}, B {list(b.shape)}")
    ct = compute_dtype(a.dtype)
    a2 = a.T if transA else a
    b2 = b.T if transB else b
    if a2.shape[1] != b2.shape[0]:
        raise OpError(
            f"Gemm inner dimensions differ (transA={transA}, transB={transB}). "
            f"Received: A {list(a.shape)}, B {list(b.shape)}"
        )
    y = np.matmul(a2.astype(ct, copy=False), b2.astype(ct, copy=False))
    if alpha != 1.0:
        y = y * alpha
    if c is not None and beta != 0.0:
        cc = c.astype(ct, copy=False)
        y = y + (cc * beta if beta != 1.0 else cc)
    return np.asarray(y, dtype=a.dtype)


@op("Linear", inputs=["X", "@weight", "@bias?"], outputs=["Y"], decomposes_to="MatMul+Add")
def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """A fully connected layer: ``Y = X @ weight.T + bias`` over the last axis of X.

    ``weight`` has shape ``[out_features, in_features]`` (PyTorch's layout), ``bias`` ``[out_features]``.
    """
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise OpError(
            f"Linear expects X [..., in_features] and weight [out_features, in_features]. "
            f"Received: X {list(x.shape)}, weight {list(weight.shape)}"
        )
    ct = compute_dtype(x.dtype)
    y = np.matmul(x.astype(ct, copy=False), weight.T.astype(ct, copy=False))
    if bias is not None:
        y = y + bias.astype(ct, copy=False)
    return np.asarray(y, dtype=x.dtype)


@op("Einsum", inputs=["Inputs*"], outputs=["Output"])
def einsum(*inputs: np.ndarray, equation: str) -> np.ndarray:
    """Einstein summation with NumPy's ``einsum`` rules (explicit ``->`` output or implicit alphabetical order)."""
    if not inputs:
        raise OpError("Einsum needs at least one input")
    eq = equation.replace(" ", "")
    lhs = eq.split("->")[0]
    if len(lhs.split(",")) != len(inputs):
        raise OpError(f"Einsum equation {equation!r} names {len(lhs.split(','))} operands. Received: {len(inputs)}")
    dtype = inputs[0].dtype
    ct = compute_dtype(dtype)
    y = np.einsum(eq, *[x.astype(ct, copy=False) for x in inputs], optimize=len(inputs) > 2)
    return np.asarray(y, dtype=dtype)


@op("Det", inputs=["X"], outputs=["Y"])
def det(x: np.ndarray) -> np.ndarray:
    """Determinant of the square matrices in the last two axes of X ``[..., M, M]``; Y has shape ``[...]``."""
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise OpError(f"Det expects [..., M, M]. Received: {list(x.shape)}")
    ct = compute_dtype(x.dtype)
    return np.asarray(np.linalg.det(x.astype(ct, copy=False)), dtype=x.dtype)


@op("Embedding", inputs=["indices", "@weight"], outputs=["Y"], out_dtype="same:weight", decomposes_to="Gather")
def embedding(indices: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """A lookup table: ``Y = weight[indices]``, shape ``indices.shape + [embedding_dim]``.

    ``weight`` is ``[num_embeddings, embedding_dim]`` (PyTorch's ``nn.Embedding``); ``indices`` an integer tensor
    with values in ``[0, num_embeddings)`` (negative indices are refused, as in PyTorch).
    """
    if indices.dtype.kind not in "iu":
        raise OpError(f"Embedding indices must be integers. Received: dtype {indices.dtype}")
    if weight.ndim != 2:
        raise OpError(f"Embedding weight must be [num_embeddings, embedding_dim]. Received: {list(weight.shape)}")
    n = weight.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        bad = indices[(indices < 0) | (indices >= n)].ravel()[:5].tolist()
        raise OpError(f"Embedding indices must lie in [0, {n}). Received: out-of-range values {bad}")
    return np.take(np.asarray(weight), indices, axis=0)
