"""Elementwise kernels: ONNX's backend cases, onnx.reference on random broadcast inputs, and hand maths."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from _primitive_cases import ELEMENTWISE, cases_for, check_case, reference_vs_k5

from k5.errors import OpError, RunError
from k5.ops import get_schema

RNG = np.random.default_rng(1234)


def kernel(name: str):
    return get_schema(name).kernel


@pytest.mark.parametrize("case", cases_for(ELEMENTWISE))
def test_onnx_backend_case(case):
    check_case(case)


# --- onnx.reference on random inputs: broadcasting and dtype preservation ------------------------------------
BINARY_FLOAT = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu"]
BINARY_INT = ["Add", "Sub", "Mul", "Div", "Max", "Min", "BitwiseAnd", "BitwiseOr", "BitwiseXor"]
VARIADIC = {"Max", "Min", "Sum", "Mean"}
COMPARE = ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"]


@pytest.mark.parametrize("op_type", BINARY_FLOAT + COMPARE)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_binary_float_broadcast(op_type, dtype):
    # onnx.reference's variadic ops (Max, Sum...) only broadcast into the first input's shape
    a = RNG.uniform(0.5, 2.0, (2, 3, 5, 4) if op_type in VARIADIC else (2, 3, 1, 4)).astype(dtype)
    b = RNG.uniform(0.5, 2.0, (3, 1, 4) if op_type == "PRelu" else (3, 5, 1)).astype(dtype)
    b.flat[0] = a.flat[0]  # one tie for the comparisons
    (expected,), (got,) = reference_vs_k5(op_type, {"a": a, "b": b})
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_allclose(
        got.astype(np.float64), expected.astype(np.float64), rtol=2e-3 if dtype == np.float16 else 1e-6
    )


@pytest.mark.parametrize("op_type", [*BINARY_INT, "Mod"])
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16])
def test_binary_int_broadcast(op_type, dtype):
    lo = 0 if np.dtype(dtype).kind == "u" else -50
    a = RNG.integers(lo, 50, (4, 1, 3)).astype(dtype)
    b = RNG.integers(1, 9, (5, 3)).astype(dtype)
    if lo < 0:
        b[::2] *= -1  # mixed signs: truncating division and the sign of the remainder matter
    (expected,), (got,) = reference_vs_k5(op_type, {"a": a, "b": b})
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


UNARY = [
    "Abs", "Neg", "Reciprocal", "Sqrt", "Exp", "Log", "Ceil", "Floor", "Round", "Sign", "Sin", "Cos", "Tan", "Atan",
    "Sinh", "Cosh", "Tanh", "Asinh", "Erf", "Relu", "Sigmoid", "Softplus", "Softsign", "Elu", "Selu", "Celu",
    "HardSigmoid", "HardSwish", "LeakyRelu", "ThresholdedRelu", "Shrink", "Gelu", "Mish", "Swish",
]  # fmt: skip


@pytest.mark.parametrize("op_type", UNARY)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, ml_dtypes.bfloat16])
def test_unary_float(op_type, dtype):
    x = RNG.uniform(-3, 3, (3, 7)).astype(dtype)
    if op_type in ("Sqrt", "Log", "Reciprocal"):
        x = np.abs(x) + dtype(0.25)
    (expected,), (got,) = reference_vs_k5(op_type, {"x": x})
    assert got.dtype == np.dtype(dtype) and got.shape == x.shape
    # k5 computes narrow floats in float32 and rounds once; the reference may round every step: allow 2 ulps
    tol = {np.float16: 2e-3, ml_dtypes.bfloat16: 1.6e-2}.get(dtype, 1e-6)
    np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64), rtol=tol, atol=tol)


# --- hand maths ----------------------------------------------------------------------------------------------
def test_erf_matches_math_erf_to_double_precision():
    x = np.concatenate([np.linspace(-7, 7, 2001), [0.0, -0.0, 1e-300, 2.9999, 3.0, 3.0001, 30.0]])
    got = kernel("Erf")(x)
    want = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-16)
    assert np.isnan(kernel("Erf")(np.array([np.nan]))[0])
    assert kernel("Erf")(np.array([np.inf, -np.inf])).tolist() == [1.0, -1.0]


def test_gelu_exact_and_tanh_against_their_formulas():
    x = np.linspace(-5, 5, 101)
    exact = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x])
    approx = np.array([0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))) for v in x])
    np.testing.assert_allclose(kernel("Gelu")(x), exact, rtol=1e-10, atol=1e-15)  # 1 + erf cancels for x << 0
    np.testing.assert_allclose(kernel("Gelu")(x, approximate="tanh"), approx, rtol=1e-13, atol=1e-15)
    with pytest.raises(OpError, match="approximate"):
        kernel("Gelu")(x, approximate="fast")


def test_activations_do_not_overflow():
    x = np.array([-1000.0, -80.0, 0.0, 80.0, 1000.0], dtype=np.float32)
    with np.errstate(all="raise"):
        sig = kernel("Sigmoid")(x)
        sp = kernel("Softplus")(x)
    np.testing.assert_allclose(sig, [0, 1 / (1 + math.exp(80)), 0.5, 1 / (1 + math.exp(-80)), 1], rtol=1e-6)
    np.testing.assert_allclose(sp, [0, math.log1p(math.exp(-80)), math.log(2), 80, 1000], rtol=1e-6)


def test_integer_division_truncates_and_mod_follows_the_divisor():
    a = np.array([7, -7, 7, -7, 0], dtype=np.int32)
    b = np.array([2, 2, -2, -2, 3], dtype=np.int32)
    assert kernel("Div")(a, b).tolist() == [3, -3, -3, 3, 0]  # C: trunc(7/2) = 3, trunc(-7/2) = -3
    assert kernel("Mod")(a, b).tolist() == [x % y for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    assert kernel("Mod")(a, b, fmod=1).tolist() == [int(math.fmod(x, y)) for x, y in zip(a, b, strict=True)]
    f = np.array([5.5, -5.5], dtype=np.float32)
    np.testing.assert_allclose(kernel("Mod")(f, np.float32(2.0) * np.ones(2, np.float32)), [1.5, 0.5])


def test_pow_keeps_the_base_dtype():
    out = kernel("Pow")(np.array([2, 3], dtype=np.int32), np.array([2.0, 0.5], dtype=np.float32))
    assert out.dtype == np.int32 and out.tolist() == [4, 1]
    out = kernel("Pow")(np.array([2.0], dtype=np.float16), np.array([3], dtype=np.int64))
    assert out.dtype == np.float16 and out.tolist() == [8.0]


def test_cast_float8_saturation_follows_the_onnx_table():
    x = np.array([1000.0, -1000.0, np.inf, -np.inf, np.nan, 1.0, 0.0], dtype=np.float32)
    sat = kernel("Cast")(x, to="float8_e4m3fn")
    assert sat.dtype == ml_dtypes.float8_e4m3fn
    np.testing.assert_array_equal(sat.astype(np.float32)[[0, 1, 2, 3, 5, 6]], [448, -448, 448, -448, 1, 0])
    assert np.isnan(sat.astype(np.float32)[4])
    raw = kernel("Cast")(x, to="float8_e4m3fn", saturate=0).astype(np.float32)
    assert np.isnan(raw[:5]).all() and raw[5] == 1
    big = np.array([1e5, -1e5, np.inf, -np.inf], dtype=np.float32)  # float8_e5m2's largest finite is 57344
    assert kernel("Cast")(big, to="float8_e5m2", saturate=0).astype(np.float32).tolist() == [np.inf, -np.inf] * 2
    assert kernel("Cast")(big, to="float8_e5m2").astype(np.float32).tolist() == [57344, -57344] * 2


def test_cast_truncates_floats_and_preserves_shape():
    x = np.array([[-1.7, 1.7], [2.5, -0.2]], dtype=np.float64)
    out = kernel("Cast")(x, to="int32")
    assert out.dtype == np.int32 and out.tolist() == [[-1, 1], [2, 0]]
    assert kernel("Cast")(np.float32(0.0) * np.ones((), np.float32), to="bool").shape == ()
    assert kernel("CastLike")(x, np.zeros(0, dtype=np.float16)).dtype == np.float16
    with pytest.raises(Exception, match="unknown dtype"):
        kernel("Cast")(x, to="float128")


def test_bitcast_reinterprets_bytes():
    out = kernel("BitCast")(np.array([1.0, -2.0], dtype=np.float32), to="int32")
    assert out.dtype == np.int32 and out.tolist() == [0x3F800000, -0x40000000]
    with pytest.raises(OpError, match="bit width"):
        kernel("BitCast")(np.array([1.0], dtype=np.float32), to="int64")


def test_dropout_inference_and_training():
    x = RNG.standard_normal((50, 40)).astype(np.float32)
    y, mask = kernel("Dropout")(x)
    assert y is x and mask.dtype == np.bool_ and mask.all()
    y, mask = kernel("Dropout")(x, np.array(0.25, np.float32), np.array(True), seed=3)
    assert 0.65 < mask.mean() < 0.85  # kept with probability 0.75
    np.testing.assert_allclose(y, np.where(mask, x / 0.75, 0), rtol=1e-6)
    _, mask2 = kernel("Dropout")(x, np.array(0.25, np.float32), np.array(True), seed=3)
    np.testing.assert_array_equal(mask, mask2)  # a seed is reproducible


def test_clip_bounds():
    x = np.arange(-3, 4, dtype=np.int64)
    assert kernel("Clip")(x, np.array(-1), None).tolist() == [-1, -1, -1, 0, 1, 2, 3]
    assert kernel("Clip")(x, None, np.array(1)).tolist() == [-3, -2, -1, 0, 1, 1, 1]
    assert kernel("Clip")(x, np.array(2), np.array(1)).tolist() == [1] * 7  # min > max: every value is max


def test_isinf_directions_and_bitshift():
    x = np.array([np.inf, -np.inf, 1.0, np.nan])
    assert kernel("IsInf")(x, detect_negative=0).tolist() == [True, False, False, False]
    assert kernel("IsInf")(x, detect_positive=0).tolist() == [False, True, False, False]
    assert kernel("IsNaN")(x).tolist() == [False, False, False, True]
    u = np.array([1, 16], dtype=np.uint8)
    assert kernel("BitShift")(u, np.array([3], np.uint8), direction="LEFT").tolist() == [8, 128]
    assert kernel("BitShift")(u, np.array([3], np.uint8), direction="RIGHT").tolist() == [0, 2]


def test_zero_size_and_scalar_inputs():
    e = np.zeros((0, 3), dtype=np.float32)
    assert kernel("Add")(e, np.ones(3, np.float32)).shape == (0, 3)
    assert kernel("Sigmoid")(e).shape == (0, 3)
    s = kernel("Mul")(np.array(2.0, np.float32), np.array(3.0, np.float32))
    assert isinstance(s, np.ndarray) and s.shape == () and s.dtype == np.float32 and s == 6


def test_kernel_failure_names_the_node():
    from k5.format.model import Graph, Model, Node, TensorInfo
    from k5.runtime import run

    g = Graph(
        nodes=[Node("prelu1", "PRelu", ["x", "s"], ["y"])],
        inputs=[TensorInfo("x", "float32", [2, 3]), TensorInfo("s", "float32", [4])],
        outputs=[TensorInfo("y")],
    )
    with pytest.raises((OpError, RunError), match=r"prelu1.*slope"):
        run(Model(graph=g), {"x": np.ones((2, 3), np.float32), "s": np.ones(4, np.float32)})


def test_unary_kernels_return_arrays_for_scalars():
    """Kernels return 0-d arrays, never NumPy scalars, and keep the dtype."""
    from k5.ops import all_schemas

    for s in all_schemas():
        required = [i for i in s.inputs if not i.optional]
        if s.family != "elementwise" or len(required) != 1 or "to" in s.attrs:
            continue
        dtype = np.bool_ if s.name == "Not" else np.int32 if s.name == "BitwiseNot" else np.float32
        out = s.kernel(np.array(0.5 if dtype == np.float32 else 1, dtype=dtype))
        out = out[0] if isinstance(out, tuple) else out
        want = np.bool_ if s.name in ("IsNaN", "IsInf") else dtype
        assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == want, s.name
