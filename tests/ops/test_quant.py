"""Quantization ops: ONNX's backend cases, onnxruntime and onnx.reference on random inputs, torch convolution of the
zero-point-shifted integers, and hand maths (round half to even, saturation, blocked scales)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from _onnx_cases import cases_for, check_case, family
from _primitive_cases import reference_vs_k5

from k5.errors import K5Error
from k5.ops import quant as K  # noqa: N812 - short alias for the kernels module

OPS = family("quant")
RNG = np.random.default_rng(2024)


@pytest.mark.parametrize("case", cases_for(OPS))
def test_onnx_backend_case(case) -> None:
    check_case(case)


def _ort(op_type: str, inputs: dict, out_dtype, attrs: dict | None = None, opset: int = 21) -> np.ndarray:
    """One node run by onnxruntime (the oracle)."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import helper as h

    node = h.make_node(op_type, list(inputs), ["y"], **(attrs or {}))
    graph = h.make_graph(
        [node],
        "g",
        [h.make_tensor_value_info(k, h.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in inputs.items()],
        [h.make_tensor_value_info("y", h.np_dtype_to_tensor_dtype(np.dtype(out_dtype)), None)],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {k: np.asarray(v) for k, v in inputs.items()})[0]


# --- Quantize / Dequantize ------------------------------------------------------------------------------------
def test_quantize_rounds_half_to_even_and_saturates() -> None:
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 300.0, -300.0, 7.49], np.float32)
    y = K.quantize_linear(x, np.float32(1.0), np.uint8(10))
    assert y.dtype == np.uint8 and y.shape == (8,)
    assert y.tolist() == [10, 12, 12, 10, 8, 255, 0, 17]
    y8 = K.quantize_linear(x, np.float32(1.0), None)  # no zero point: uint8
    assert y8.dtype == np.uint8 and y8.tolist()[:3] == [0, 2, 2]
    y16 = K.quantize_linear(x * 200, np.float32(1.0), None, output_dtype="int16")
    assert y16.dtype == np.int16 and y16.tolist()[5:7] == [32767, -32768]


@pytest.mark.parametrize("zp_dtype", [np.int8, np.uint8, np.int16, np.uint16])
@pytest.mark.parametrize("axis", [1, -1])
def test_quantize_dequantize_per_axis_against_reference(zp_dtype, axis: int) -> None:
    x = RNG.standard_normal((2, 4, 5)).astype(np.float32) * 3
    n = x.shape[axis]
    scale = RNG.uniform(0.01, 0.05, n).astype(np.float32)
    info = np.iinfo(zp_dtype)
    zp = RNG.integers(info.min // 4 + info.max // 4, info.max // 2, n).astype(zp_dtype)
    (q_ref,), (q,) = reference_vs_k5("QuantizeLinear", {"x": x, "s": scale, "zp": zp}, {"axis": axis})
    assert q.dtype == zp_dtype
    np.testing.assert_array_equal(q, q_ref)
    (d_ref,), (d,) = reference_vs_k5("DequantizeLinear", {"q": q, "s": scale, "zp": zp}, {"axis": axis})
    assert d.dtype == np.float32
    np.testing.assert_allclose(d, d_ref, rtol=1e-6)
    inside = (q > info.min) & (q < info.max)  # round trip within half a step where nothing saturated
    half_step = np.broadcast_to(np.expand_dims(scale, [i for i in range(3) if i != axis % 3]) / 2, x.shape)
    assert inside.mean() > 0.5
    assert np.all(np.abs(d - x)[inside] <= half_step[inside] * 1.0001)


@pytest.mark.parametrize("block_size", [2, 3])
def test_blocked_quantization_against_reference(block_size: int) -> None:
    x = RNG.standard_normal((3, 7)).astype(np.float32)
    blocks = -(-7 // block_size)
    scale = RNG.uniform(0.01, 0.04, (3, blocks)).astype(np.float32)
    zp = RNG.integers(-5, 5, (3, blocks)).astype(np.int8)
    attrs = {"axis": 1, "block_size": block_size}
    (q_ref,), (q,) = reference_vs_k5("QuantizeLinear", {"x": x, "s": scale, "zp": zp}, attrs)
    np.testing.assert_array_equal(q, q_ref)
    (d_ref,), (d,) = reference_vs_k5("DequantizeLinear", {"q": q, "s": scale, "zp": zp}, attrs)
    np.testing.assert_allclose(d, d_ref, rtol=1e-6)
    # hand maths for one element: column 5 lies in block 5 // block_size
    b = 5 // block_size
    assert q[1, 5] == np.clip(np.rint(x[1, 5] / scale[1, b]) + zp[1, b], -128, 127)


@pytest.mark.parametrize("fp8", [ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2])
@pytest.mark.parametrize("saturate", [0, 1])
def test_float8_quantization_saturates_or_overflows(fp8, saturate: int) -> None:
    x = np.array([1.0, -3.3, 1e6, -1e6, np.nan], np.float32)
    y = K.quantize_linear(x, np.float32(0.5), np.zeros((), fp8), saturate=saturate)
    assert y.dtype == fp8
    big = float(ml_dtypes.finfo(fp8).max)
    got = y.astype(np.float32)
    assert got[0] == 2.0 and got[1] == pytest.approx(-6.6, rel=0.07)
    if saturate:
        assert got[2] == big and got[3] == -big
    else:  # e4m3fn has no infinity: NaN; e5m2 overflows to inf
        assert (np.isnan(got[2]) and np.isnan(got[3])) if fp8 == ml_dtypes.float8_e4m3fn else np.isinf(got[2:4]).all()
    assert np.isnan(got[4])
    back = K.dequantize_linear(y[:2], np.float32(0.5), None, output_dtype="float16")
    assert back.dtype == np.float16 and back.tolist()[0] == 1.0


def test_dequantize_int32_and_errors() -> None:
    x = np.array([-(2**20), 3], np.int32)
    np.testing.assert_array_equal(K.dequantize_linear(x, np.float32(0.25), None), [-(2**18), 0.75])
    with pytest.raises(K5Error, match="per-axis x_scale must be 1-D of length 3"):
        K.dequantize_linear(np.zeros((2, 3), np.int8), np.ones(2, np.float32), None, axis=1)
    with pytest.raises(K5Error, match="block_size=2 does not fit"):
        K.dequantize_linear(np.zeros((2, 7), np.int8), np.ones((2, 2), np.float32), None, axis=1, block_size=2)


def test_dynamic_quantize_linear_hand_maths() -> None:
    x = np.array([-1.0, 0.0, 1.9, 3.0], np.float32)
    y, scale, zp = K.dynamic_quantize_linear(x)
    assert scale.dtype == np.float32 and scale.shape == () and zp.dtype == np.uint8 and zp.shape == ()
    # range [-1, 3] -> scale 4/255; zero point round(1 / scale) = round(63.75) = 64
    assert float(scale) == pytest.approx(4.0 / 255) and int(zp) == 64
    assert y.tolist() == [0, 64, 185, 255]  # 1.9 / scale = 121.1 -> 121 + 64; 3 / scale = 191.25 -> 191 + 64
    zeros = K.dynamic_quantize_linear(np.zeros(3, np.float32))
    assert zeros[0].tolist() == [0, 0, 0] and float(zeros[1]) == 0


# --- integer matmul / conv ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtypes", [(np.uint8, np.uint8), (np.uint8, np.int8), (np.int8, np.int8)])
def test_matmul_integer_against_onnxruntime(dtypes) -> None:
    a = RNG.integers(0, 100, (2, 3, 4)).astype(dtypes[0])
    b = RNG.integers(0, 100, (4, 5)).astype(dtypes[1])
    azp, bzp = np.array(7, dtypes[0]), np.array(3, dtypes[1])
    feeds = {"A": a, "B": b, "a_zero_point": azp, "b_zero_point": bzp}
    y = K.matmul_integer(a, b, azp, bzp)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, _ort("MatMulInteger", feeds, np.int32, opset=10))
    per_col = RNG.integers(0, 9, 5).astype(dtypes[1])  # per-column zero point of B: hand maths
    want = (a.astype(np.int64) - 7) @ (b.astype(np.int64) - per_col)
    np.testing.assert_array_equal(K.matmul_integer(a, b, azp, per_col), want)


@pytest.mark.parametrize(("group", "stride", "dilation", "pad"), [(1, 1, 1, 0), (2, 2, 1, 1), (1, 1, 2, 2)])
def test_conv_integer_matches_torch_on_shifted_integers(group: int, stride: int, dilation: int, pad: int) -> None:
    torch = pytest.importorskip("torch")
    x = RNG.integers(0, 255, (2, 4, 9, 8)).astype(np.uint8)
    w = RNG.integers(-128, 127, (6, 4 // group, 3, 3)).astype(np.int8)
    xzp, wzp = np.uint8(128), RNG.integers(-3, 3, 6).astype(np.int8)  # per-output-channel weight zero points
    y = K.conv_integer(x, w, xzp, wzp, group=group, strides=[stride] * 2, dilations=[dilation] * 2, pads=[pad] * 4)
    xt = torch.from_numpy(x.astype(np.float64) - 128)
    wt = torch.from_numpy(w.astype(np.float64) - wzp.astype(np.float64)[:, None, None, None])
    # padding with zero *after* removing the zero point, as ONNX pads the shifted input
    want = torch.nn.functional.conv2d(xt, wt, None, stride, pad, dilation, group).numpy()
    assert y.dtype == np.int32 and y.shape == want.shape
    np.testing.assert_array_equal(y, want.astype(np.int64))


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_integer_auto_pad_against_onnxruntime(auto_pad: str) -> None:
    x = RNG.integers(0, 255, (1, 2, 7, 6)).astype(np.uint8)
    w = RNG.integers(0, 255, (3, 2, 2, 3)).astype(np.uint8)
    feeds = {"x": x, "w": w, "x_zero_point": np.uint8(100), "w_zero_point": np.uint8(120)}
    attrs = {"auto_pad": auto_pad, "strides": [2, 2]}
    want = _ort("ConvInteger", feeds, np.int32, attrs, opset=10)
    np.testing.assert_array_equal(K.conv_integer(*feeds.values(), **attrs), want)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_matmul_against_onnxruntime(dtype) -> None:
    lo, hi = (0, 255) if dtype == np.uint8 else (-128, 127)
    a = RNG.integers(lo, hi, (3, 8, 16)).astype(dtype)
    b = RNG.integers(lo, hi, (16, 5)).astype(dtype)
    feeds = {
        "a": a, "a_scale": np.float32(0.02), "a_zero_point": np.array(3, dtype),
        "b": b, "b_scale": np.float32(0.03), "b_zero_point": np.array(-2 if dtype == np.int8 else 2, dtype),
        "y_scale": np.float32(1.7), "y_zero_point": np.array(10, dtype),
    }  # fmt: skip
    want = _ort("QLinearMatMul", feeds, dtype)
    got = K.qlinear_matmul(*feeds.values())
    assert got.dtype == dtype
    # runtimes may round a product that lands within float32 error of .5 differently: allow 1 step, rarely
    diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


@pytest.mark.parametrize("per_channel", [False, True])
def test_qlinear_conv_against_float_maths_and_onnxruntime(per_channel: bool) -> None:
    """Oracles: torch's float64 convolution of the dequantized tensors, requantized by hand; and onnxruntime with
    7-bit weights (its u8s8 kernels saturate pairwise int16 sums for full-range int8 weights on x86)."""
    torch = pytest.importorskip("torch")
    x = RNG.integers(0, 255, (1, 4, 10, 9)).astype(np.uint8)
    w = RNG.integers(-63, 63, (6, 2, 3, 3)).astype(np.int8)
    w_scale = RNG.uniform(0.004, 0.02, 6).astype(np.float32) if per_channel else np.float32(0.01)
    bias = RNG.integers(-500, 500, 6).astype(np.int32)
    feeds = {
        "x": x, "x_scale": np.float32(0.05), "x_zero_point": np.uint8(120),
        "w": w, "w_scale": w_scale, "w_zero_point": np.zeros(6 if per_channel else (), np.int8),
        "y_scale": np.float32(0.2), "y_zero_point": np.uint8(100), "B": bias,
    }  # fmt: skip
    attrs = {"group": 2, "pads": [1, 0, 1, 2], "strides": [1, 2]}
    got = K.qlinear_conv(*feeds.values(), **attrs)
    ws = np.broadcast_to(np.asarray(w_scale, np.float64), (6,))
    xt = torch.nn.functional.pad(torch.from_numpy((x.astype(np.float64) - 120) * 0.05), (0, 2, 1, 1))
    wt = torch.from_numpy(w.astype(np.float64) * ws[:, None, None, None])
    real = torch.nn.functional.conv2d(xt, wt, torch.from_numpy(bias * 0.05 * ws), (1, 2), 0, 1, 2).numpy()
    expected = np.clip(np.rint(real / np.float64(np.float32(0.2))) + 100, 0, 255)
    assert got.dtype == np.uint8 and got.shape == expected.shape
    diff = np.abs(got.astype(np.int32) - expected)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01  # float32 scales vs float64 maths at exact .5 ties
    want = _ort("QLinearConv", feeds, np.uint8, attrs, opset=10)
    diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
