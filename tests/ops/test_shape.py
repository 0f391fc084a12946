"""Shape and data-movement kernels: ONNX's backend cases, onnx.reference, and hand-written loops as oracles."""

from __future__ import annotations

import numpy as np
import pytest
from _onnx_cases import check_as_written, single_node_cases
from _primitive_cases import SHAPE, cases_for, check_case, reference_vs_k5

from k5.errors import OpError
from k5.ops import get_schema

RNG = np.random.default_rng(7)
I64 = np.int64


def kernel(name: str):
    return get_schema(name).kernel


def a64(*values: int) -> np.ndarray:
    return np.array(values, dtype=I64)


@pytest.mark.parametrize("case", cases_for(SHAPE))
def test_onnx_backend_case(case):
    check_case(case)


@pytest.mark.parametrize("case", single_node_cases("Scatter"))
def test_deprecated_scatter_as_written(case):
    check_as_written(case)  # the importer turns Scatter into ScatterElements; k5's own Scatter runs here


# --- slicing and reshaping -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "end", "step"),
    [(0, 10, 1), (-3, 100, 1), (2**62, -(2**62), -1), (5, -100, -2), (-100, 3, 2), (8, 2, 1), (-1, -(2**63), -3)],
)
def test_slice_clamps_like_python_lists(start, end, step):
    data = list(range(10))
    out = kernel("Slice")(np.array(data, dtype=np.float32), a64(start), a64(end), a64(0), a64(step))
    assert out.tolist() == data[start:end:step]


def test_slice_axes_and_errors():
    x = np.arange(24).reshape(2, 3, 4)
    assert kernel("Slice")(x, a64(1, -1), a64(3, 0), a64(-1, 1), a64(1, -1)).tolist() == x[:, 2:0:-1, 1:3].tolist()
    with pytest.raises(OpError, match="steps cannot be 0"):
        kernel("Slice")(x, a64(0), a64(1), a64(0), a64(0))


def test_reshape_zero_minus_one_and_allowzero():
    x = np.arange(24).reshape(2, 3, 4)
    assert kernel("Reshape")(x, a64(0, -1)).shape == (2, 12)
    assert kernel("Reshape")(x, a64(-1, 0, 2)).shape == (4, 3, 2)
    assert kernel("Reshape")(np.zeros((0, 3)), a64(3, 0), allowzero=1).shape == (3, 0)
    with pytest.raises(OpError, match="cannot reshape"):
        kernel("Reshape")(x, a64(5, -1))


def test_flatten_squeeze_unsqueeze_negative_axes():
    x = np.zeros((2, 1, 3, 1))
    assert kernel("Flatten")(x, axis=-1).shape == (6, 1)
    assert kernel("Flatten")(x, axis=4).shape == (6, 1)
    assert kernel("Flatten")(x, axis=0).shape == (1, 6)
    assert kernel("Squeeze")(x, a64(-1)).shape == (2, 1, 3)
    assert kernel("Squeeze")(x).shape == (2, 3)
    assert kernel("Unsqueeze")(x, a64(-1, 0)).shape == (1, 2, 1, 3, 1, 1)
    with pytest.raises(OpError, match="size 1"):
        kernel("Squeeze")(x, a64(0))


def test_shape_start_end_clamp():
    x = np.zeros((2, 3, 4, 5))
    assert kernel("Shape")(x, start=-2).tolist() == [4, 5]
    assert kernel("Shape")(x, start=1, end=-1).tolist() == [3, 4]
    assert kernel("Shape")(x, start=-10, end=10).tolist() == [2, 3, 4, 5]
    out = kernel("Size")(x)
    assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == I64 and out == 120


def test_split_uneven_and_explicit():
    x = np.arange(7)
    assert [p.tolist() for p in kernel("Split")(x, None, num_outputs=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [p.tolist() for p in kernel("Split")(x, a64(2, 0, 5))] == [[0, 1], [], [2, 3, 4, 5, 6]]
    with pytest.raises(OpError, match="sum to 7"):
        kernel("Split")(x, a64(2, 2))


def test_zero_size_tensors():
    e = np.zeros((0, 3), dtype=np.float32)
    assert kernel("Concat")(e, np.ones((2, 3), np.float32), axis=0).shape == (2, 3)
    assert kernel("Expand")(np.ones((1, 3)), a64(0, 1)).shape == (0, 3)
    assert kernel("Gather")(e, a64(), axis=0).shape == (0, 3)
    assert kernel("Tile")(e, a64(3, 2)).shape == (0, 6)
    assert kernel("NonZero")(e).shape == (2, 0)


# --- gather and scatter --------------------------------------------------------------------------------------
def test_gather_negative_indices_and_range_errors():
    x = RNG.standard_normal((4, 5))
    idx = np.array([[0, -1], [-4, 2]])
    np.testing.assert_array_equal(kernel("Gather")(x, idx, axis=0), x[[[0, 3], [0, 2]]])
    np.testing.assert_array_equal(kernel("Gather")(x, idx, axis=-1), x[:, [[0, 4], [1, 2]]])
    with pytest.raises(OpError, match="out of range"):
        kernel("Gather")(x, a64(4))


@pytest.mark.parametrize("batch_dims", [0, 1, 2])
def test_gather_nd_against_a_loop(batch_dims):
    data = RNG.standard_normal((2, 3, 4, 5))
    m = 2
    idx_shape = (*(2, 3)[:batch_dims], 4, m)
    bounds = data.shape[batch_dims : batch_dims + m]
    idx = np.stack([RNG.integers(-b, b, idx_shape[:-1]) for b in bounds], axis=-1)
    out = kernel("GatherND")(data, idx, batch_dims=batch_dims)
    for pos in np.ndindex(idx.shape[:-1]):
        src = data[pos[:batch_dims]][tuple(int(i) for i in idx[pos])]
        np.testing.assert_array_equal(out[pos], src)


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd_against_a_loop(reduction):
    data = RNG.standard_normal((4, 3))
    idx = np.array([[1], [3], [1], [-4]]) if reduction != "none" else np.array([[1], [3], [0]])
    upd = RNG.standard_normal((len(idx), 3))
    out = kernel("ScatterND")(data, idx, upd, reduction=reduction)
    want = data.copy()
    for i, row in zip(idx[:, 0], upd, strict=True):
        if reduction == "none":
            want[i] = row
        else:
            want[i] = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}[reduction](want[i], row)
    np.testing.assert_allclose(out, want, rtol=1e-12)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("reduction", ["none", "add", "max"])
def test_scatter_elements_against_reference(axis, reduction):
    data = RNG.standard_normal((3, 4)).astype(np.float32)
    n = data.shape[axis]
    indices = np.stack([RNG.permutation(n)[:2] for _ in range(4 if axis == 0 else 3)], axis=1 if axis == 0 else 0)
    if axis != 0:
        indices = indices.reshape(3, 2)
    updates = RNG.standard_normal(indices.shape).astype(np.float32)
    (expected,), (got,) = reference_vs_k5(
        "ScatterElements", {"data": data, "indices": indices.astype(I64), "updates": updates},
        {"axis": axis, "reduction": reduction},
    )  # fmt: skip
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_tensor_scatter_follows_the_onnx_pseudocode():
    past = RNG.standard_normal((2, 3, 6, 4)).astype(np.float32)
    update = RNG.standard_normal((2, 3, 3, 4)).astype(np.float32)
    write = a64(1, 5)
    out = kernel("TensorScatter")(past, update, write, mode="circular")
    want = past.copy()
    for prefix in np.ndindex(past.shape[:2]):
        for s in range(update.shape[2]):
            want[(*prefix, (write[prefix[0]] + s) % 6)] = update[(*prefix, s)]
    np.testing.assert_array_equal(out, want)
    with pytest.raises(OpError, match="past the cache length"):
        kernel("TensorScatter")(past, update, write)


# --- padding, generators, selection --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_against_reference(mode):
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    value = {"value": np.array(1.5, np.float32)} if mode == "constant" else {"": None}  # "": omitted input
    inputs = {"x": x, "pads": a64(1, 2, 2, 1), **value, "axes": a64(0, -1)}
    (expected,), (got,) = reference_vs_k5("Pad", inputs, {"mode": mode})
    np.testing.assert_array_equal(got, expected)


def test_pad_negative_pads_crop():
    x = np.arange(12).reshape(3, 4)
    out = kernel("Pad")(x, a64(-1, 1, 0, -2), np.array(9))
    assert out.tolist() == [[9, 4, 5], [9, 8, 9]]


def test_range_is_exact_for_large_integers():
    out = kernel("Range")(np.array(2**40, I64), np.array(2**40 + 10, I64), np.array(3, I64))
    assert out.dtype == I64 and out.tolist() == [2**40, 2**40 + 3, 2**40 + 6, 2**40 + 9]
    assert kernel("Range")(np.float32(1.0) * np.ones((), np.float32), np.array(0.0, np.float32),
                           np.array(0.5, np.float32)).shape == (0,)  # fmt: skip


def test_one_hot_wraps_negatives_and_drops_out_of_range():
    out = kernel("OneHot")(np.array([0, -1, 5, 2]), np.array(3), np.array([0.5, 2.0], np.float32), axis=0)
    assert out.dtype == np.float32 and out.shape == (3, 4)
    assert out.T.tolist() == [[2, 0.5, 0.5], [0.5, 0.5, 2], [0.5, 0.5, 0.5], [0.5, 0.5, 2]]


def test_unique_matches_the_onnx_spec_examples():
    y, first, inverse, counts = kernel("Unique")(np.array([2, 1, 1, 3, 4, 3], np.float32), sorted=0)
    assert y.tolist() == [2, 1, 3, 4] and first.tolist() == [0, 1, 3, 4]
    assert inverse.tolist() == [0, 1, 1, 2, 3, 2] and counts.tolist() == [1, 2, 2, 1]
    x = np.array([[[1.0, 1], [0, 1], [2, 1], [0, 1]], [[1.0, 1], [0, 1], [2, 1], [0, 1]]])
    y, first, inverse, counts = kernel("Unique")(x, axis=1)
    assert y.tolist() == [[[0, 1], [1, 1], [2, 1]], [[0, 1], [1, 1], [2, 1]]]
    assert first.tolist() == [1, 0, 2] and inverse.tolist() == [1, 0, 2, 0] and counts.tolist() == [2, 1, 1]
    assert all(v.dtype == I64 for v in (first, inverse, counts))


@pytest.mark.parametrize(("batch_axis", "time_axis"), [(1, 0), (0, 1)])
def test_reverse_sequence_against_a_loop(batch_axis, time_axis):
    shape = [0, 0, 3]
    shape[batch_axis], shape[time_axis] = 4, 5
    x = RNG.standard_normal(shape)
    lens = a64(5, 0, 1, 3)
    out = kernel("ReverseSequence")(x, lens, batch_axis=batch_axis, time_axis=time_axis)
    xb = np.moveaxis(x, (batch_axis, time_axis), (0, 1))
    ob = np.moveaxis(out, (batch_axis, time_axis), (0, 1))
    for b in range(4):
        n = int(lens[b])
        want = np.concatenate([xb[b, :n][::-1], xb[b, n:]])
        np.testing.assert_array_equal(ob[b], want)


def test_compress_eye_like_trilu():
    x = np.arange(6).reshape(2, 3)
    assert kernel("Compress")(x, np.array([True, False, True]), axis=1).tolist() == [[0, 2], [3, 5]]
    assert kernel("Compress")(x, np.array([False, True])).tolist() == [1]
    eye = kernel("EyeLike")(np.zeros((2, 3), np.float32), dtype="int32", k=1)
    assert eye.dtype == np.int32 and eye.tolist() == [[0, 1, 0], [0, 0, 1]]
    assert kernel("Trilu")(np.ones((3, 3)), np.array(-1), upper=0).tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0]]


def test_constant_of_shape_default_and_value():
    out = kernel("ConstantOfShape")(a64(2, 3))
    assert out.dtype == np.float32 and out.shape == (2, 3) and not out.any()
    out = kernel("ConstantOfShape")(a64(), np.array([7], dtype=np.int32))
    assert out.dtype == np.int32 and out.shape == () and out == 7
