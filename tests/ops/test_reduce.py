"""Reduction kernels: ONNX's backend cases, onnx.reference on random inputs, and hand maths."""

from __future__ import annotations

import itertools
import math

import ml_dtypes
import numpy as np
import pytest
from _primitive_cases import REDUCE, cases_for, check_case, reference_vs_k5

from k5.errors import OpError
from k5.ops import get_schema

RNG = np.random.default_rng(99)
REDUCERS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
            "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]  # fmt: skip


def kernel(name: str):
    return get_schema(name).kernel


@pytest.mark.parametrize("case", cases_for(REDUCE))
def test_onnx_backend_case(case):
    check_case(case)


@pytest.mark.parametrize("op_type", REDUCERS)
@pytest.mark.parametrize(("axes", "keepdims"), [([-1], 0), ([0, 2], 1), (None, 0)])
def test_reduce_against_reference(op_type, axes, keepdims):
    x = RNG.uniform(0.5, 1.5, (3, 4, 5)).astype(np.float32)
    inputs = {"x": x} if axes is None else {"x": x, "axes": np.array(axes, dtype=np.int64)}
    (expected,), (got,) = reference_vs_k5(op_type, inputs, {"keepdims": keepdims})
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("op_type", REDUCERS)
def test_noop_with_empty_axes_reduces_nothing(op_type):
    """Over no axis, a reduction is its elementwise part (x, |x|, x^2, log x...), as ONNX's reference computes."""
    x = RNG.uniform(0.5, 1.5, (2, 3)).astype(np.float64)
    elementwise = {"ReduceL1": np.abs(x), "ReduceSumSquare": x * x, "ReduceLogSum": np.log(x)}.get(op_type, x)
    out = kernel(op_type)(x, np.zeros(0, dtype=np.int64), noop_with_empty_axes=1)
    np.testing.assert_allclose(out, elementwise, rtol=1e-12)
    all_axes = kernel(op_type)(x, np.zeros(0, dtype=np.int64), keepdims=0)
    assert isinstance(all_axes, np.ndarray) and all_axes.shape == ()


def test_empty_set_identities_and_integers():
    e = np.zeros((2, 0, 3), dtype=np.int32)
    axes = np.array([1])
    assert kernel("ReduceMax")(e, axes).tolist() == [[[np.iinfo(np.int32).min] * 3]] * 2
    assert kernel("ReduceMin")(e, axes).tolist() == [[[np.iinfo(np.int32).max] * 3]] * 2
    assert kernel("ReduceProd")(e, axes).tolist() == [[[1] * 3]] * 2
    f = np.zeros((0, 2), dtype=np.float32)
    assert kernel("ReduceLogSumExp")(f, np.array([0]), keepdims=0).tolist() == [-np.inf, -np.inf]
    i = np.array([[1, 2], [3, 4]], dtype=np.int64)
    out = kernel("ReduceSum")(i, np.array([1]))
    assert out.dtype == np.int64 and out.tolist() == [[3], [7]]


def test_half_precision_accumulates_in_float32():
    x = np.full(4096, 1.0, dtype=np.float16)  # a float16 running sum stalls at 2048
    assert kernel("ReduceSum")(x, None, keepdims=0) == 4096
    b = np.full(1000, 0.1, dtype=ml_dtypes.bfloat16)
    got = float(kernel("ReduceMean")(b, None, keepdims=0))
    assert got == pytest.approx(float(np.float32(b[0])), rel=1e-2)


def test_log_sum_exp_does_not_overflow():
    x = np.array([[1000.0, 1000.0], [-1000.0, -np.inf]])
    out = kernel("ReduceLogSumExp")(x, np.array([1]), keepdims=0)
    np.testing.assert_allclose(out, [1000 + math.log(2), -1000], rtol=1e-12)


def test_reduce_rejects_bad_axes():
    x = np.ones((2, 3))
    with pytest.raises(OpError, match="axis 2 is out of range"):
        kernel("ReduceSum")(x, np.array([2]))
    with pytest.raises(OpError, match="distinct"):
        kernel("ReduceSum")(x, np.array([1, -1]))


# --- arg reductions, softmax, cumulative, TopK ---------------------------------------------------------------
def test_argmax_argmin_first_and_last_index():
    x = np.array([[1, 5, 5, 0], [2, 2, 0, 0]], dtype=np.float32)
    assert kernel("ArgMax")(x, axis=1, keepdims=0).tolist() == [1, 0]
    assert kernel("ArgMax")(x, axis=1, keepdims=0, select_last_index=1).tolist() == [2, 1]
    assert kernel("ArgMin")(x, axis=-1, select_last_index=1).tolist() == [[3], [3]]
    assert kernel("ArgMax")(x).dtype == np.int64


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_family_against_reference(op_type, axis):
    x = RNG.standard_normal((3, 4, 5)).astype(np.float32)
    x[0, 0, :2] = 7.0  # a tie for Hardmax
    (expected,), (got,) = reference_vs_k5(op_type, {"x": x}, {"axis": axis})
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_softmax_large_inputs_and_narrow_dtypes():
    x = np.array([1000.0, 1001.0, 1002.0], dtype=np.float32)
    e = np.exp([-2.0, -1.0, 0.0])
    np.testing.assert_allclose(kernel("Softmax")(x), e / e.sum(), rtol=1e-6)
    np.testing.assert_allclose(kernel("LogSoftmax")(x), np.log(e / e.sum()), rtol=1e-6)
    h = kernel("Softmax")(x.astype(ml_dtypes.bfloat16))
    assert h.dtype == ml_dtypes.bfloat16


@pytest.mark.parametrize(("exclusive", "reverse"), list(itertools.product([0, 1], repeat=2)))
@pytest.mark.parametrize("op_type", ["CumSum", "CumProd"])
def test_cumulative_against_python(op_type, exclusive, reverse):
    x = RNG.integers(1, 5, (3, 4)).astype(np.int64)
    out = kernel(op_type)(x, np.array(1), exclusive=exclusive, reverse=reverse)
    for r, row in enumerate(x.tolist()):
        seq = row[::-1] if reverse else row
        acc, want = (0 if op_type == "CumSum" else 1), []
        for v in seq:
            if exclusive:
                want.append(acc)
            acc = acc + v if op_type == "CumSum" else acc * v
            if not exclusive:
                want.append(acc)
        assert out[r].tolist() == (want[::-1] if reverse else want)
    assert out.dtype == np.int64


@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("axis", [0, -1])
def test_topk_ties_keep_index_order(largest, axis):
    x = RNG.integers(0, 4, (6, 7)).astype(np.float32)  # many ties
    values, indices = kernel("TopK")(x, np.array([3]), axis=axis, largest=largest)
    moved = np.moveaxis(x, axis, -1)
    for pos in np.ndindex(moved.shape[:-1]):
        row = moved[pos].tolist()
        sign = -1 if largest else 1
        want = sorted(range(len(row)), key=lambda i, row=row: (sign * row[i], i))[:3]
        assert np.moveaxis(indices, axis, -1)[pos].tolist() == want
        assert np.moveaxis(values, axis, -1)[pos].tolist() == [row[i] for i in want]
    assert indices.dtype == np.int64 and values.dtype == np.float32


def test_topk_rejects_k_beyond_the_axis():
    with pytest.raises(OpError, match="K must be in"):
        kernel("TopK")(np.ones((2, 3)), np.array([4]))
