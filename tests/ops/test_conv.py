"""Convolution and pooling kernels against PyTorch (the oracle) on random inputs, for combinations that ONNX's own
node test cases lack (groups x dilation x stride, 1-D/3-D, ceil mode with padding, adaptive bins)."""

from __future__ import annotations

import numpy as np
import pytest
from _layer_cases import CONV, cases_for, check_case
from _observed import run_op

from k5.errors import OpError
from k5.ops import conv as K  # noqa: N812 - short alias for the kernels module

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _rel(actual: np.ndarray, expected: np.ndarray) -> float:
    expected = np.asarray(expected, dtype=np.float64)
    return float(np.abs(np.asarray(actual, dtype=np.float64) - expected).max() / (np.abs(expected).max() + 1e-12))


def _t(a: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize(
    ("dims", "groups", "stride", "dilation", "padding", "bias"),
    [
        (2, 1, 1, 1, 1, True),
        (2, 2, 2, 2, 3, True),
        (2, 4, 3, 1, 0, False),  # groups = channels / 2
        (2, 8, 1, 2, 2, True),  # depthwise
        (2, 1, (2, 1), (1, 3), (0, 2), True),  # per-axis strides/dilations/pads
        (1, 2, 2, 3, 4, True),
        (3, 2, (1, 2, 2), (2, 1, 1), 1, True),
    ],
)
def test_conv_matches_torch(dims, groups, stride, dilation, padding, bias) -> None:
    rng = np.random.default_rng(dims * 100 + groups)
    C, M, k = 8, 8 if groups in (4, 8) else 6, 3
    spatial = {1: (17,), 2: (13, 11), 3: (7, 8, 9)}[dims]
    x = rng.standard_normal((2, C, *spatial), dtype=np.float32)
    w = rng.standard_normal((M, C // groups, *([k] * dims)), dtype=np.float32)
    b = rng.standard_normal(M, dtype=np.float32) if bias else None
    tf = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
    expected = tf(_t(x), _t(w), None if b is None else _t(b), stride, padding, dilation, groups).numpy()

    def per_axis(v):
        return list(v) if isinstance(v, tuple) else [v] * dims

    pads = per_axis(padding) * 2
    y = K.conv(x, w, b, group=groups, strides=per_axis(stride), dilations=per_axis(dilation), pads=pads)
    assert y.dtype == np.float32 and y.shape == expected.shape
    assert _rel(y, expected) < 1e-5


@pytest.mark.parametrize(("stride", "size"), [(1, 10), (2, 10), (3, 11), (2, 9)])
def test_conv_same_padding_matches_torch(stride: int, size: int) -> None:
    """SAME_UPPER pads total = (ceil(in/s)-1)*s + k - in, odd extra at the end; SAME_LOWER at the beginning."""
    rng = np.random.default_rng(stride)
    x = rng.standard_normal((1, 3, size, size), dtype=np.float32)
    w = rng.standard_normal((4, 3, 4, 4), dtype=np.float32)
    out = -(-size // stride)
    total = max((out - 1) * stride + 4 - size, 0)
    for mode, (lo, hi) in (
        ("SAME_UPPER", (total // 2, total - total // 2)),
        ("SAME_LOWER", (total - total // 2, total // 2)),
    ):
        expected = F.conv2d(F.pad(_t(x), (lo, hi, lo, hi)), _t(w), stride=stride).numpy()
        y = K.conv(x, w, None, auto_pad=mode, strides=[stride, stride])
        assert y.shape == (1, 4, out, out)
        assert _rel(y, expected) < 1e-5


def test_conv_float16_and_float64_keep_dtype() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 6, 6))
    w = rng.standard_normal((3, 2, 3, 3))
    expected = F.conv2d(_t(x), _t(w)).numpy()
    assert K.conv(x, w, None).dtype == np.float64 and _rel(K.conv(x, w, None), expected) < 1e-12
    y16 = K.conv(x.astype(np.float16), w.astype(np.float16), None)
    assert y16.dtype == np.float16 and _rel(y16, expected) < 5e-3


@pytest.mark.parametrize(
    ("dims", "groups", "stride", "dilation", "padding", "output_padding"),
    [
        (2, 1, 2, 1, 1, 1),
        (2, 2, 3, 2, 2, 1),
        (2, 3, (2, 1), (1, 2), (1, 0), (1, 0)),
        (1, 2, 2, 3, 3, 1),
        (3, 1, 2, 1, 1, 0),
    ],
)
def test_conv_transpose_matches_torch(dims, groups, stride, dilation, padding, output_padding) -> None:
    rng = np.random.default_rng(dims * 10 + groups)
    C, Mg, k = 6, 2, 3
    spatial = {1: (9,), 2: (5, 6), 3: (3, 4, 5)}[dims]
    x = rng.standard_normal((2, C, *spatial), dtype=np.float32)
    w = rng.standard_normal((C, Mg, *([k] * dims)), dtype=np.float32)
    b = rng.standard_normal(Mg * groups, dtype=np.float32)
    tf = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[dims]
    expected = tf(_t(x), _t(w), _t(b), stride, padding, output_padding, groups, dilation).numpy()

    def per_axis(v):
        return list(v) if isinstance(v, tuple) else [v] * dims

    y = K.conv_transpose(
        x, w, b, group=groups, strides=per_axis(stride), dilations=per_axis(dilation),
        pads=per_axis(padding) * 2, output_padding=per_axis(output_padding),
    )  # fmt: skip
    assert y.dtype == np.float32 and y.shape == expected.shape
    assert _rel(y, expected) < 1e-5


def test_conv_transpose_output_shape_equals_output_padding() -> None:
    """output_shape larger than the natural size is the same as output_padding (zero rows get only the bias)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 4, 4), dtype=np.float32)
    w = rng.standard_normal((2, 3, 3, 3), dtype=np.float32)
    expected = F.conv_transpose2d(_t(x), _t(w), stride=2, output_padding=1).numpy()
    y = K.conv_transpose(x, w, None, strides=[2, 2], output_shape=[10, 10])
    assert _rel(y, expected) < 1e-5


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "ceil_mode"),
    [
        (3, 2, 1, 1, False),
        (3, 2, 1, 1, True),
        (2, 2, 0, 1, True),
        (3, 1, 1, 2, False),
        ((3, 2), (2, 3), (1, 0), 1, True),
    ],
)
def test_max_pool_matches_torch(kernel, stride, padding, dilation, ceil_mode) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 11, 10), dtype=np.float32)
    ev, ei = F.max_pool2d(_t(x), kernel, stride, padding, dilation, ceil_mode, return_indices=True)

    def pair(v):
        return list(v) if isinstance(v, tuple) else [v, v]

    y, idx = K.max_pool(
        x, kernel_shape=pair(kernel), strides=pair(stride), pads=pair(padding) * 2, dilations=pair(dilation),
        ceil_mode=int(ceil_mode),
    )  # fmt: skip
    assert y.dtype == np.float32 and idx.dtype == np.int64
    np.testing.assert_array_equal(y, ev.numpy())
    # torch's indices are flat within each (n, c) plane; ONNX's are flat over the whole tensor
    plane = np.arange(6).reshape(2, 3, 1, 1) * (11 * 10)
    np.testing.assert_array_equal(idx, ei.numpy() + plane)
    np.testing.assert_array_equal(x.ravel()[idx], y)


def test_max_pool_ties_pick_the_first_in_row_major_order_like_torch() -> None:
    """After a ReLU most windows hold several equal maxima; Indices must name the first one (row-major)."""
    x = np.maximum(np.random.default_rng(8).integers(-3, 3, (2, 3, 9, 10)), 0).astype(np.float32)
    _, idx = K.max_pool(x, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    _, ei = F.max_pool2d(_t(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(idx, ei.numpy() + np.arange(6).reshape(2, 3, 1, 1) * 90)


def test_max_pool_storage_order_column_major() -> None:
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 5), dtype=np.float32)
    y, idx = K.max_pool(x, kernel_shape=[2, 2], strides=[2, 2], storage_order=1)
    np.testing.assert_array_equal(x[0, 0].T.ravel()[idx.ravel()], y.ravel())  # column-major flat positions


def test_max_pool_integers() -> None:
    x = np.random.default_rng(0).integers(-128, 127, (1, 2, 5, 5)).astype(np.int8)
    y, _ = K.max_pool(x, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    expected = F.max_pool2d(_t(x.astype(np.float32)), 3, 1, 1).numpy()
    assert y.dtype == np.int8
    np.testing.assert_array_equal(y, expected.astype(np.int8))


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "ceil_mode", "count_include_pad"),
    [
        (3, 2, 1, False, True),
        (3, 2, 1, True, True),
        (3, 2, 1, True, False),
        (2, 3, 1, True, True),
        (4, 1, 2, False, False),
    ],
)
def test_average_pool_matches_torch(kernel, stride, padding, ceil_mode, count_include_pad) -> None:
    x = np.random.default_rng(11).standard_normal((2, 3, 10, 9), dtype=np.float32)
    expected = F.avg_pool2d(_t(x), kernel, stride, padding, ceil_mode, count_include_pad).numpy()
    y = K.average_pool(
        x, kernel_shape=[kernel] * 2, strides=[stride] * 2, pads=[padding] * 4, ceil_mode=int(ceil_mode),
        count_include_pad=int(count_include_pad),
    )  # fmt: skip
    assert y.dtype == np.float32 and y.shape == expected.shape
    assert _rel(y, expected) < 1e-6


def test_average_pool_3d_and_1d() -> None:
    rng = np.random.default_rng(5)
    x3 = rng.standard_normal((1, 2, 6, 7, 8), dtype=np.float32)
    expected = F.avg_pool3d(_t(x3), 3, 2, 1, count_include_pad=False).numpy()
    y = K.average_pool(x3, kernel_shape=[3, 3, 3], strides=[2, 2, 2], pads=[1] * 6)
    assert _rel(y, expected) < 1e-6
    x1 = rng.standard_normal((2, 3, 15), dtype=np.float32)
    assert _rel(K.average_pool(x1, kernel_shape=[4], strides=[3]), F.avg_pool1d(_t(x1), 4, 3).numpy()) < 1e-6


def test_lp_pool_matches_torch() -> None:
    x = np.random.default_rng(2).standard_normal((1, 3, 9, 8), dtype=np.float32)
    for p in (1, 2, 3):
        xp = np.abs(x)  # torch's lp_pool2d takes x**p without abs: compare on |x|
        expected = F.lp_pool2d(_t(xp), p, 3, 2).numpy()
        assert _rel(K.lp_pool(x, kernel_shape=[3, 3], strides=[2, 2], p=p), expected) < 1e-5
    expected = (np.abs(x.astype(np.float64)) ** 3).sum(axis=(2, 3)) ** (1 / 3)
    np.testing.assert_allclose(run_op("GlobalLpPool", x, p=3)[..., 0, 0], expected, rtol=1e-5)


def test_global_pools() -> None:
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 4, 3), dtype=np.float32)
    np.testing.assert_allclose(K.global_average_pool(x), x.mean(axis=(2, 3, 4), keepdims=True), rtol=1e-5)
    np.testing.assert_array_equal(K.global_max_pool(x), x.max(axis=(2, 3, 4), keepdims=True))


@pytest.mark.parametrize(("size", "out"), [((10, 9), (3, 4)), ((7, 7), (7, 7)), ((5, 13), (1, 5)), ((4, 5), (6, 8))])
def test_adaptive_pools_match_torch(size, out) -> None:
    x = np.random.default_rng(sum(size)).standard_normal((2, 3, *size), dtype=np.float32)
    avg = run_op("AdaptiveAveragePool", x, output_size=list(out))
    mx = run_op("AdaptiveMaxPool", x, output_size=list(out))
    assert avg.dtype == mx.dtype == np.float32 and avg.shape == (2, 3, *out)
    assert _rel(avg, F.adaptive_avg_pool2d(_t(x), out).numpy()) < 1e-6
    np.testing.assert_array_equal(mx, F.adaptive_max_pool2d(_t(x), out).numpy())


def test_adaptive_pools_1d_3d() -> None:
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((2, 3, 11), dtype=np.float32)
    assert _rel(K.adaptive_average_pool(x1, output_size=[4]), F.adaptive_avg_pool1d(_t(x1), 4).numpy()) < 1e-6
    x3 = rng.standard_normal((1, 2, 5, 6, 7), dtype=np.float32)
    np.testing.assert_array_equal(
        K.adaptive_max_pool(x3, output_size=[2, 3, 4]), F.adaptive_max_pool3d(_t(x3), (2, 3, 4)).numpy()
    )
    assert (
        _rel(K.adaptive_average_pool(x3, output_size=[3, 4, 2]), F.adaptive_avg_pool3d(_t(x3), (3, 4, 2)).numpy())
        < 1e-6
    )


def test_max_unpool_inverts_max_pool_like_torch() -> None:
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 8), dtype=np.float32)
    y, idx = K.max_pool(x, kernel_shape=[2, 2], strides=[2, 2])
    ty, tidx = F.max_pool2d(_t(x), 2, 2, return_indices=True)
    expected = F.max_unpool2d(ty, tidx, 2, 2).numpy()
    np.testing.assert_array_equal(K.max_unpool(y, idx, None, kernel_shape=[2, 2], strides=[2, 2]), expected)


def test_col2im_matches_torch_fold() -> None:
    rng = np.random.default_rng(9)
    kernel, stride, dilation, pad, image = (3, 2), (2, 1), (1, 2), (1, 2), (9, 10)
    blocks = [(image[i] + 2 * pad[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(2)]
    cols = rng.standard_normal((2, 4 * 6, blocks[0] * blocks[1]), dtype=np.float32)
    expected = F.fold(_t(cols), image, kernel, dilation, pad, stride).numpy()
    y = K.col2im(
        cols, np.array(image), np.array(kernel), strides=list(stride), dilations=list(dilation), pads=list(pad) * 2
    )
    assert _rel(y, expected) < 1e-6


def test_deform_conv_reduces_to_conv() -> None:
    """Zero offsets and a unit mask give a plain grouped convolution; an offset of exactly +1 along W for every tap
    samples the input shifted left by one (zero fill); a mask of 0.5 halves the result."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 4, 7, 8), dtype=np.float32)
    w = rng.standard_normal((6, 2, 3, 3), dtype=np.float32)
    b = rng.standard_normal(6, dtype=np.float32)
    attrs = {"group": 2, "strides": [2, 1], "pads": [1, 1, 1, 1], "dilations": [1, 2]}
    expected = F.conv2d(_t(x), _t(w), _t(b), (2, 1), (1, 1), (1, 2), 2).numpy()
    out = expected.shape[2:]
    offset = np.zeros((2, 2 * 9 * 2, *out), dtype=np.float32)  # offset_group=2
    assert _rel(K.deform_conv(x, w, offset, b, None, offset_group=2, **attrs), expected) < 1e-5
    # no padding along W here: a padded column would read x[..., 0] after the shift but zero in the oracle
    attrs["pads"] = [1, 0, 1, 0]
    shifted = np.concatenate([x[..., 1:], np.zeros_like(x[..., :1])], axis=-1)
    expected_shift = F.conv2d(_t(shifted), _t(w), None, (2, 1), (1, 0), (1, 2), 2).numpy()
    out = expected_shift.shape[2:]
    offset = np.zeros((2, 2, 9, 2, *out), dtype=np.float32)
    offset[:, :, :, 1] = 1.0
    mask = np.full((2, 2 * 9, *out), 0.5, dtype=np.float32)
    y = K.deform_conv(x, w, offset.reshape(2, 36, *out), None, mask, offset_group=2, **attrs)
    assert _rel(y, 0.5 * expected_shift) < 1e-5


def test_errors_name_the_attribute() -> None:
    x = np.zeros((1, 2, 5, 5), dtype=np.float32)
    w = np.zeros((3, 2, 3, 3), dtype=np.float32)
    with pytest.raises(OpError, match=r"'pads' expects 4 ints. Received: pads=\[1, 1\]"):
        K.conv(x, w, None, pads=[1, 1])
    with pytest.raises(OpError, match="group=2"):
        K.conv(x, w, None, group=2)
    with pytest.raises(OpError, match="auto_pad"):
        K.max_pool(x, kernel_shape=[2, 2], auto_pad="SAME")
    with pytest.raises(OpError, match="output_size"):
        K.adaptive_average_pool(x, output_size=[2])


def test_inputs_are_not_modified() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 6, 6), dtype=np.float32)
    w = rng.standard_normal((2, 2, 3, 3), dtype=np.float32)
    x.flags.writeable = False
    w.flags.writeable = False
    K.conv(x, w, None, pads=[1] * 4)
    K.conv_transpose(x, w, None, strides=[2, 2])
    K.max_pool(x, kernel_shape=[2, 2])
    K.average_pool(x, kernel_shape=[3, 3], pads=[1] * 4)
    K.adaptive_average_pool(x, output_size=[4, 4])


@pytest.mark.parametrize("case", cases_for(CONV))
def test_onnx_case(case) -> None:
    """ONNX's backend node test case (expected outputs computed by ONNX) through import and the k5 runtime."""
    check_case(case)
