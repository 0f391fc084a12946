"""Linear algebra kernels against PyTorch (the oracle) on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from _layer_cases import LINALG, cases_for, check_case
from _observed import run_op

from k5.errors import OpError
from k5.ops import linalg as K  # noqa: N812 - short alias for the kernels module

torch = pytest.importorskip("torch")


def _rel(actual: np.ndarray, expected) -> float:
    expected = np.asarray(expected, dtype=np.float64)
    return float(np.abs(np.asarray(actual, dtype=np.float64) - expected).max() / (np.abs(expected).max() + 1e-12))


def _t(a: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize(("a", "b"), [((3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 6)), ((4,), (2, 4, 3)), ((3, 4), (4,))])
def test_matmul_matches_torch(a, b) -> None:
    rng = np.random.default_rng(len(a) + len(b))
    x, y = rng.standard_normal(a, dtype=np.float32), rng.standard_normal(b, dtype=np.float32)
    out = K.matmul(x, y)
    assert out.dtype == np.float32 and isinstance(out, np.ndarray)
    assert _rel(out, torch.matmul(_t(x), _t(y)).numpy()) < 1e-6


def test_matmul_vector_dot_is_0d_array_and_half_precision() -> None:
    v = np.arange(3, dtype=np.float32)
    out = K.matmul(v, v)
    assert isinstance(out, np.ndarray) and out.shape == () and out == 5
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 300)), rng.standard_normal((300, 4))
    out16 = K.matmul(x.astype(np.float16), y.astype(np.float16))
    assert out16.dtype == np.float16 and _rel(out16, x @ y) < 5e-3
    with pytest.raises(OpError, match="inner dimensions"):
        K.matmul(x, x)


@pytest.mark.parametrize(
    ("trans_a", "trans_b", "c_shape"), [(0, 0, (5,)), (1, 0, (3, 5)), (0, 1, (3, 1)), (1, 1, None)]
)
def test_gemm_matches_torch_addmm(trans_a, trans_b, c_shape) -> None:
    rng = np.random.default_rng(trans_a * 2 + trans_b)
    A = rng.standard_normal((4, 3) if trans_a else (3, 4), dtype=np.float32)
    B = rng.standard_normal((5, 4) if trans_b else (4, 5), dtype=np.float32)
    C = rng.standard_normal(c_shape, dtype=np.float32) if c_shape else None
    ta, tb = _t(A.T if trans_a else A), _t(B.T if trans_b else B)
    expected = (0.5 * (ta @ tb) + (2.0 * _t(C) if C is not None else 0)).numpy()
    out = K.gemm(A, B, C, alpha=0.5, beta=2.0, transA=trans_a, transB=trans_b)
    assert out.dtype == np.float32 and _rel(out, expected) < 1e-6


def test_linear_matches_torch() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6), dtype=np.float32)
    w = rng.standard_normal((4, 6), dtype=np.float32)
    b = rng.standard_normal(4, dtype=np.float32)
    F = torch.nn.functional
    assert _rel(run_op("Linear", x, w, b), F.linear(_t(x), _t(w), _t(b)).numpy()) < 1e-6
    assert _rel(K.linear(x, w, None), F.linear(_t(x), _t(w)).numpy()) < 1e-6
    with pytest.raises(OpError, match="in_features"):
        K.linear(x, w.T, None)


@pytest.mark.parametrize(
    ("equation", "shapes"),
    [("ij,jk->ik", [(3, 4), (4, 5)]), ("bij, bjk -> bik", [(2, 3, 4), (2, 4, 5)]), ("...ii->...i", [(2, 3, 3)]),
     ("ij->", [(3, 4)]), ("ij,kj", [(3, 4), (5, 4)]),
     ("bhqd,bhkd,bhkv->bhqv", [(2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 6)])],
)  # fmt: skip
def test_einsum_matches_torch(equation: str, shapes) -> None:
    rng = np.random.default_rng(len(equation))
    ops = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    out = K.einsum(*ops, equation=equation)
    assert out.dtype == np.float32
    assert _rel(out, torch.einsum(equation.replace(" ", ""), *[_t(o) for o in ops]).numpy()) < 1e-5
    with pytest.raises(OpError, match="operands"):
        K.einsum(*ops, ops[0], equation=equation)


def test_det_matches_torch() -> None:
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 4))
    out = K.det(x)
    assert out.shape == (2, 3) and _rel(out, torch.linalg.det(_t(x)).numpy()) < 1e-10
    assert K.det(x[0, 0]).shape == ()


def test_embedding_matches_torch() -> None:
    rng = np.random.default_rng(3)
    w = rng.standard_normal((10, 4), dtype=np.float32)
    idx = rng.integers(0, 10, (2, 5))
    np.testing.assert_array_equal(run_op("Embedding", idx, w), torch.nn.functional.embedding(_t(idx), _t(w)).numpy())
    with pytest.raises(OpError, match=r"\[0, 10\)"):
        K.embedding(np.array([3, 10]), w)
    with pytest.raises(OpError, match="integers"):
        K.embedding(np.array([1.0]), w)


@pytest.mark.parametrize("case", cases_for(LINALG))
def test_onnx_case(case) -> None:
    """ONNX's backend node test case (expected outputs computed by ONNX) through import and the k5 runtime."""
    check_case(case)
