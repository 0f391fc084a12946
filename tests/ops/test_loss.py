"""Loss kernels: ONNX's backend cases and PyTorch's nll_loss / cross_entropy as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from _primitive_cases import LOSS, cases_for, check_case

from k5.errors import OpError
from k5.ops import get_schema

RNG = np.random.default_rng(5)


def kernel(name: str):
    return get_schema(name).kernel


@pytest.mark.parametrize("case", cases_for(LOSS))
def test_onnx_backend_case(case):
    check_case(case)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape", [(6, 4), (3, 5, 2, 3)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [None, 1, -100])
def test_against_torch(reduction, shape, weighted, ignore_index):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    scores = RNG.standard_normal(shape).astype(np.float32)
    N, C = shape[:2]
    labels = RNG.integers(0, C, (N, *shape[2:])).astype(np.int64)
    if ignore_index is not None:
        labels.flat[::3] = ignore_index
    weight = RNG.uniform(0.5, 2.0, C).astype(np.float32) if weighted else None
    kw = {"reduction": reduction, "ignore_index": -100 if ignore_index is None else ignore_index}
    tw = None if weight is None else torch.from_numpy(weight)
    want_ce = F.cross_entropy(torch.from_numpy(scores), torch.from_numpy(labels), weight=tw, **kw).numpy()
    log_prob = F.log_softmax(torch.from_numpy(scores), dim=1)
    want_nll = F.nll_loss(log_prob, torch.from_numpy(labels), weight=tw, **kw).numpy()

    ce, lp = kernel("SoftmaxCrossEntropyLoss")(scores, labels, weight, reduction=reduction, ignore_index=ignore_index)
    np.testing.assert_allclose(ce, want_ce, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lp, log_prob.numpy(), rtol=1e-5, atol=1e-6)
    nll = kernel("NegativeLogLikelihoodLoss")(lp, labels, weight, reduction=reduction, ignore_index=ignore_index)
    np.testing.assert_allclose(nll, want_nll, rtol=1e-5, atol=1e-6)
    assert ce.dtype == np.float32 and lp.dtype == np.float32 and isinstance(ce, np.ndarray)


def test_half_precision_keeps_its_dtype():
    scores = RNG.standard_normal((4, 3)).astype(np.float16)
    labels = np.array([0, 2, 1, 2])
    ce, lp = kernel("SoftmaxCrossEntropyLoss")(scores, labels)
    assert ce.dtype == np.float16 and lp.dtype == np.float16
    s = scores.astype(np.float64)
    want = np.mean(np.log(np.exp(s).sum(1)) - s[np.arange(4), labels])
    np.testing.assert_allclose(float(ce), want, rtol=2e-3)


def test_bad_targets_and_shapes_are_reported():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(OpError, match=r"target values must be in \[0, 2\]"):
        kernel("NegativeLogLikelihoodLoss")(x, np.array([0, 3]))
    with pytest.raises(OpError, match="target"):
        kernel("NegativeLogLikelihoodLoss")(x, np.array([[0, 1]]))
    with pytest.raises(OpError, match="reduction"):
        kernel("NegativeLogLikelihoodLoss")(x, np.array([0, 1]), reduction="avg")
