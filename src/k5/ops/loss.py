"""Loss ops: negative log-likelihood, softmax cross-entropy (ONNX semantics).

Class scores are ``[N, C]`` or ``[N, C, d1, ..., dk]``, targets ``[N]`` or ``[N, d1, ..., dk]`` int class indices.
A target equal to ``ignore_index`` contributes nothing, and its weight leaves the ``mean`` denominator.
"""

from __future__ import annotations

import numpy as np

from k5.errors import OpError
from k5.ops.registry import op

_REDUCTIONS = ("none", "sum", "mean")


def _nll(
    log_prob: np.ndarray, target: np.ndarray, weight: np.ndarray | None, reduction: str, ignore_index: int | None,
    name: str,
) -> np.ndarray:  # fmt: skip
    """The loss in float32/float64 (the caller casts to the input dtype)."""
    if reduction not in _REDUCTIONS:
        raise OpError(f"{name}: reduction must be one of {', '.join(_REDUCTIONS)}. Received: {reduction!r}")
    x = np.asarray(log_prob)
    t = np.asarray(target)
    if x.ndim < 2 or t.shape != (x.shape[0], *x.shape[2:]):
        raise OpError(
            f"{name}: input must be [N, C, d1, ..., dk] and target [N, d1, ..., dk]. "
            f"Received: input {list(x.shape)}, target {list(t.shape)}"
        )
    if t.dtype.kind not in "iu":
        raise OpError(f"{name}: target must hold integer class indices. Received: {t.dtype}")
    C = x.shape[1]
    t = t.astype(np.int64)
    keep = np.ones(t.shape, dtype=bool) if ignore_index is None else t != ignore_index
    bad = keep & ((t < 0) | (t >= C))
    if np.any(bad):
        raise OpError(f"{name}: target values must be in [0, {C - 1}] or ignore_index. Received: {t[bad][:5].tolist()}")
    safe = np.where(keep, t, 0)
    picked = np.take_along_axis(x, np.expand_dims(safe, 1), axis=1).squeeze(1)
    w = keep.astype(x.dtype)
    if weight is not None:
        wv = np.asarray(weight, dtype=x.dtype)
        if wv.shape != (C,):
            raise OpError(f"{name}: weight must have shape [{C}]. Received: {list(wv.shape)}")
        w = w * wv[safe]
    loss = -picked * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.asarray(loss.sum())
    return np.asarray(loss.sum() / w.sum())


def _work(x: np.ndarray) -> np.ndarray:
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)


@op("NegativeLogLikelihoodLoss", inputs=["input", "target", "weight?"], outputs=["loss"])
def negative_log_likelihood_loss(
    x: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    reduction: str = "mean",
    ignore_index: int | None = None,
) -> np.ndarray:
    """``loss[n, d] = -input[n, target[n, d], d] * weight[target[n, d]]``; reduced by ``reduction``: "none", "sum",
    or "mean" (the sum divided by the sum of the weights applied)."""
    with np.errstate(all="ignore"):
        w = None if weight is None else _work(np.asarray(weight))
        loss = _nll(_work(x), target, w, reduction, ignore_index, "NegativeLogLikelihoodLoss")
    return loss.astype(x.dtype)


@op("SoftmaxCrossEntropyLoss", inputs=["scores", "labels", "weights?"], outputs=["output", "log_prob?"])
def softmax_cross_entropy_loss(
    scores: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    reduction: str = "mean",
    ignore_index: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """NegativeLogLikelihoodLoss of ``log_softmax(scores)`` over the class axis 1; the second output is that
    log-softmax."""
    s = _work(np.asarray(scores))
    if s.ndim < 2:
        raise OpError(f"SoftmaxCrossEntropyLoss: scores must be [N, C, ...]. Received: {list(s.shape)}")
    with np.errstate(all="ignore"):
        shifted = s - np.max(s, axis=1, keepdims=True)
        log_prob = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        w = None if weights is None else _work(np.asarray(weights))
        loss = _nll(log_prob, labels, w, reduction, ignore_index, "SoftmaxCrossEntropyLoss")
    return loss.astype(scores.dtype), log_prob.astype(scores.dtype)
