"""Normalization kernels against PyTorch (the oracle) and hand-derived maths, on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from _layer_cases import NORM, cases_for, check_case

from k5.errors import OpError
from k5.ops import norm as K  # noqa: N812 - short alias for the kernels module

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _rel(actual: np.ndarray, expected) -> float:
    expected = np.asarray(expected, dtype=np.float64)
    return float(np.abs(np.asarray(actual, dtype=np.float64) - expected).max() / (np.abs(expected).max() + 1e-12))


def _t(a: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 7), (2, 3, 5, 6), (2, 3, 3, 4, 5)])
def test_batch_norm_inference_matches_torch(shape) -> None:
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape, dtype=np.float32)
    C = shape[1]
    s, b, m = (rng.standard_normal(C, dtype=np.float32) for _ in range(3))
    v = rng.random(C, dtype=np.float32) + 0.5
    expected = F.batch_norm(_t(x), _t(m), _t(v), _t(s), _t(b), False, 0.1, 1e-3).numpy()
    y = K.batch_normalization(x, s, b, m, v, epsilon=1e-3)
    assert y.dtype == np.float32 and _rel(y, expected) < 1e-5


def test_batch_norm_training_mode() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5, 5), dtype=np.float32)
    s, b, m = (rng.standard_normal(3, dtype=np.float32) for _ in range(3))
    v = rng.random(3, dtype=np.float32) + 0.5
    rm, rv = _t(m.copy()), _t(v.copy())
    expected = F.batch_norm(_t(x), rm, rv, _t(s), _t(b), True, 0.1, 1e-5).numpy()  # torch momentum = 1 - ONNX's
    y, run_mean, run_var = K.batch_normalization(x, s, b, m, v, training_mode=1, momentum=0.9)
    assert _rel(y, expected) < 1e-5
    assert _rel(run_mean, rm.numpy()) < 1e-5
    # ONNX updates the running variance with the biased batch variance (torch uses the unbiased one)
    xd = x.astype(np.float64)
    assert _rel(run_var, v * 0.9 + xd.var(axis=(0, 2, 3)) * 0.1) < 1e-5


@pytest.mark.parametrize(("shape", "axis"), [((2, 5, 8), -1), ((2, 5, 8), 1), ((3, 4, 5, 6), -3), ((6, 7), 0)])
def test_layer_norm_matches_torch(shape, axis) -> None:
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape, dtype=np.float32) * 3 + 1
    norm_shape = shape[axis % len(shape) :]
    w = rng.standard_normal(norm_shape, dtype=np.float32)
    b = rng.standard_normal(norm_shape, dtype=np.float32)
    expected = F.layer_norm(_t(x), norm_shape, _t(w), _t(b), 1e-5).numpy()
    y, mean, inv = K.layer_normalization(x, w, b, axis=axis)
    assert y.dtype == mean.dtype == inv.dtype == np.float32
    assert _rel(y, expected) < 1e-5
    axes = tuple(range(axis % len(shape), len(shape)))
    xd = x.astype(np.float64)
    np.testing.assert_allclose(mean, xd.mean(axis=axes, keepdims=True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(inv, 1 / np.sqrt(xd.var(axis=axes, keepdims=True) + 1e-5), rtol=1e-5)
    y_nobias = K.layer_normalization(x, w, None, axis=axis)[0]
    assert _rel(y_nobias, F.layer_norm(_t(x), norm_shape, _t(w), None, 1e-5).numpy()) < 1e-5


def test_layer_norm_float16_computes_in_float32() -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4, 64)) * 100).astype(np.float16)  # x^2 would overflow float16
    w = np.ones(64, dtype=np.float16)
    y = K.layer_normalization(x, w, None)[0]
    expected = F.layer_norm(_t(x.astype(np.float32)), (64,)).numpy()
    assert y.dtype == np.float16 and np.isfinite(y).all() and _rel(y, expected) < 2e-3


@pytest.mark.parametrize(("shape", "axis"), [((2, 5, 8), -1), ((3, 4, 5, 6), 2)])
def test_rms_norm_matches_torch(shape, axis) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape, dtype=np.float32)
    norm_shape = shape[axis % len(shape) :]
    w = rng.standard_normal(norm_shape, dtype=np.float32)
    expected = F.rms_norm(_t(x), norm_shape, _t(w), 1e-6).numpy()
    y = K.rms_normalization(x, w, axis=axis, epsilon=1e-6)
    assert y.dtype == np.float32 and _rel(y, expected) < 1e-5


@pytest.mark.parametrize(
    ("shape", "groups"), [((2, 6, 5, 4), 3), ((2, 6, 5, 4), 6), ((3, 8, 10), 2), ((2, 4, 3, 3, 3), 1)]
)
def test_group_norm_matches_torch(shape, groups) -> None:
    rng = np.random.default_rng(groups)
    x = rng.standard_normal(shape, dtype=np.float32) * 2 - 1
    w, b = (rng.standard_normal(shape[1], dtype=np.float32) for _ in range(2))
    expected = F.group_norm(_t(x), groups, _t(w), _t(b), 1e-5).numpy()
    assert _rel(K.group_normalization(x, w, b, num_groups=groups), expected) < 1e-5
    with pytest.raises(OpError, match="num_groups"):
        K.group_normalization(x, w, b, num_groups=5)


def test_instance_norm_matches_torch() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 7), dtype=np.float32)
    w, b = (rng.standard_normal(3, dtype=np.float32) for _ in range(2))
    expected = F.instance_norm(_t(x), weight=_t(w), bias=_t(b), eps=1e-3).numpy()
    assert _rel(K.instance_normalization(x, w, b, epsilon=1e-3), expected) < 1e-5


@pytest.mark.parametrize(("p", "axis"), [(1, 1), (2, -1), (2, 0)])
def test_lp_normalization_matches_torch(p: int, axis: int) -> None:
    x = np.random.default_rng(4).standard_normal((3, 4, 5), dtype=np.float32)
    x[0, 0] = 0  # a zero vector along the last axis
    expected = F.normalize(_t(x), p=p, dim=axis).numpy()
    assert _rel(K.lp_normalization(x, axis=axis, p=p), expected) < 1e-6


def test_mean_variance_normalization_hand_maths() -> None:
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 5)).astype(np.float32)
    xd = x.astype(np.float64)
    for axes in ([0, 2, 3], [1], [2, 3]):
        m = xd.mean(axis=tuple(axes), keepdims=True)
        expected = (xd - m) / (xd.std(axis=tuple(axes), keepdims=True) + 1e-9)
        assert _rel(K.mean_variance_normalization(x, axes=axes), expected) < 1e-5


def test_lrn_matches_torch_and_hand_maths() -> None:
    x = np.random.default_rng(6).standard_normal((2, 7, 4, 4), dtype=np.float32)
    for size in (1, 3, 5):  # odd sizes: torch's window equals ONNX's
        expected = F.local_response_norm(_t(x), size, alpha=1e-2, beta=0.75, k=2.0).numpy()
        assert _rel(K.lrn(x, size=size, alpha=1e-2, beta=0.75, bias=2.0), expected) < 1e-5
    size = 4  # even: ONNX's window is [c - 1, c + 2]
    xd = x.astype(np.float64)
    sq = np.stack([(xd[:, max(0, c - 1) : c + 3] ** 2).sum(axis=1) for c in range(7)], axis=1)
    expected = xd / (1.0 + 1e-1 / size * sq) ** 0.5
    assert _rel(K.lrn(x, size=size, alpha=1e-1, beta=0.5), expected) < 1e-5


def test_inputs_are_not_modified_and_errors() -> None:
    x = np.random.default_rng(7).standard_normal((2, 4, 3), dtype=np.float32)
    x.flags.writeable = False
    ones = np.ones(4, dtype=np.float32)
    K.batch_normalization(x, ones, ones, ones, ones)
    K.layer_normalization(x, np.ones(3, dtype=np.float32), None)
    with pytest.raises(OpError, match=r"scale expects 4 values"):
        K.batch_normalization(x, np.ones(3, dtype=np.float32), ones, ones, ones)
    with pytest.raises(OpError, match="axis"):
        K.layer_normalization(x, ones, None, axis=3)


@pytest.mark.parametrize("case", cases_for(NORM))
def test_onnx_case(case) -> None:
    """ONNX's backend node test case (expected outputs computed by ONNX) through import and the k5 runtime."""
    check_case(case)
