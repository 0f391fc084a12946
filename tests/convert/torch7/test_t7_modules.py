"""Lua nn modules beyond the four networks, written as hand-built module trees.

Where OpenCV's importer runs a module it is the oracle (``.t7`` -> k5 runtime == OpenCV); for the table modules
OpenCV lacks (CMulTable, ParallelTable, SelectTable, Transpose), the expected values are derived by hand in NumPy.
Each file holds Lua-only details: cudnn twins, SpatialConvolutionMM's 2-D weight, Dropout before v2, JoinTable's
nInputDims, View's numInputDims, DoubleTensor weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from t7_oracles import Oracles, assert_close

import k5
from k5.convert.torch7 import T7Object, T7Storage, T7Table, from_torch7, write_t7

RNG = np.random.default_rng(5)


def mod(name: str, **fields: Any) -> T7Object:
    table = T7Table(output=np.zeros(0, np.float32), gradInput=np.zeros(0, np.float32), train=False)
    table.update(fields)
    return T7Object(name if "." in name else f"nn.{name}", table, version=1)


def container(name: str, *children: T7Object, **fields: Any) -> T7Object:
    return mod(name, modules=T7Table({float(i + 1): c for i, c in enumerate(children)}), **fields)


def longs(*v: int) -> T7Storage:
    return T7Storage("torch.LongStorage", np.asarray(v, dtype=np.int64))


def w(*shape: int, dtype: Any = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def conv(n_in: int, n_out: int, k: int = 3, pad: int = 1, cls: str = "SpatialConvolution", **kw: Any) -> T7Object:
    return mod(cls, nInputPlane=n_in, nOutputPlane=n_out, kW=k, kH=k, dW=1, dH=1, padW=pad, padH=pad,
               weight=kw.pop("weight", w(n_out, n_in, k, k)), bias=w(n_out), **kw)  # fmt: skip


# trees OpenCV runs: name -> (tree, input shape)
OPENCV_CASES: dict[str, tuple[T7Object, tuple[int, ...]]] = {
    "cudnn_twins_and_lrn": (
        container("Sequential",
                  conv(3, 4, cls="cudnn.SpatialConvolution"), mod("cudnn.ReLU"),
                  mod("SpatialCrossMapLRN", size=3, alpha=1e-2, beta=0.75, k=2.0),
                  mod("cudnn.SpatialBatchNormalization", eps=1e-3, running_mean=w(4), running_var=np.abs(w(4)) + 0.5,
                      weight=w(4), bias=w(4)),
                  mod("cudnn.Tanh")),
        (2, 3, 6, 6),
    ),
    "conv_mm_double_weights_and_dropout_v1": (
        container("Sequential",
                  conv(2, 3, cls="SpatialConvolutionMM", weight=w(3, 2 * 3 * 3, dtype=np.float64)),
                  mod("Dropout", p=0.25),  # before v2, Dropout scaled by (1 - p) at inference
                  mod("SpatialMaxPooling", kW=2, kH=2, dW=2, dH=2, padW=0, padH=0, ceil_mode=True),
                  mod("MulConstant", constant_scalar=-1.5)),
        (2, 2, 7, 7),
    ),
    "concat_jointable_view": (
        container("Sequential",
                  container("ConcatTable", conv(2, 3), conv(2, 2, k=1, pad=0)),
                  mod("JoinTable", dimension=2),
                  mod("View", size=longs(-1, 5 * 4 * 4), numElements=80),
                  mod("Linear", weight=w(6, 80), bias=w(6)),
                  mod("Normalize", p=2.0, eps=1e-10)),
        (3, 2, 4, 4),
    ),
    "nn_concat_and_dilated": (
        container("Sequential",
                  container("Concat", conv(2, 3),
                            mod("SpatialDilatedConvolution", nInputPlane=2, nOutputPlane=2, kW=3, kH=3, dW=1,
                                dH=1, padW=2, padH=2, dilationW=2, dilationH=2, weight=w(2, 2, 3, 3), bias=w(2)),
                            dimension=2),
                  mod("SpatialAveragePooling", kW=3, kH=3, dW=2, dH=2, padW=1, padH=1, ceil_mode=False,
                      count_include_pad=False),
                  mod("InstanceNormalization", nOutput=5, eps=1e-5, weight=w(5), bias=w(5))),
        (2, 2, 8, 8),
    ),
    "openface_like_inception": (
        container("Sequential",
                  container("Inception", container(
                      "DepthConcat",
                      container("Sequential", conv(3, 4, k=1, pad=0), mod("ReLU")),
                      container("Sequential", container(  # OpenFace wraps its L2 pooling in a Sequential
                          "SpatialLPPooling",
                          mod("Square"),
                          mod("SpatialAveragePooling", kW=3, kH=3, dW=1, dH=1, padW=1, padH=1,
                              ceil_mode=False, count_include_pad=True),
                          mod("MulConstant", constant_scalar=9.0),
                          mod("Sqrt"))),
                      container("Sequential", conv(3, 2), mod("Power", pow=2.0)),
                      dimension=2)),
                  mod("View", size=longs(-1, 9 * 5 * 5), numElements=225),
                  mod("Linear", weight=w(8, 225), bias=w(8)),
                  mod("Normalize", p=2.0, eps=1e-10)),
        (2, 3, 5, 5),
    ),
    "fast_neural_style_like": (
        container("Sequential",
                  mod("SpatialReflectionPadding", pad_l=2, pad_r=2, pad_t=2, pad_b=2),
                  conv(3, 4, pad=0), mod("InstanceNormalization", nOutput=4, eps=1e-5, weight=w(4), bias=w(4)),
                  mod("ReLU"),
                  container("Sequential",
                            container("ConcatTable",
                                      container("Sequential", conv(4, 4, pad=0), mod("ReLU"), conv(4, 4, pad=0)),
                                      mod("ShaveImage", size=2)),
                            mod("CAddTable")),
                  mod("SpatialFullConvolution", nInputPlane=4, nOutputPlane=3, kW=3, kH=3, dW=2, dH=2, padW=1,
                      padH=1, adjW=1, adjH=1, weight=w(4, 3, 3, 3), bias=w(3)),
                  mod("TotalVariation", strength=1e-6),
                  mod("Tanh"), mod("MulConstant", constant_scalar=150.0)),
        (1, 3, 10, 10),
    ),
    "max_pool_ceil_mode_drops_window_past_input": (
        container("Sequential", mod("SpatialMaxPooling", kW=2, kH=2, dW=2, dH=2, padW=1, padH=1, ceil_mode=True)),
        (1, 2, 9, 9),  # 6 windows by the ceil formula; the 6th would start past input + pad, so 5
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(OPENCV_CASES))
def test_module_matches_opencv(name: str, oracles: Oracles, tmp_path: Path) -> None:
    tree, shape = OPENCV_CASES[name]
    path = tmp_path / f"{name}.t7"
    write_t7(tree, path)
    x = RNG.standard_normal(shape).astype(np.float32)
    want = oracles.opencv(path, x)
    (got,) = k5.run(from_torch7(path, input_shape=list(shape)), x).values()
    print(f"\n[t7 module] {name}: max diff {assert_close(got, want):.3e}")


def _k5(tree: T7Object, x: np.ndarray, tmp_path: Path) -> list[np.ndarray]:
    path = tmp_path / "net.t7"
    write_t7(tree, path)
    return list(k5.run(from_torch7(path, input_shape=list(x.shape)), x).values())


def test_table_modules_by_hand(tmp_path: Path) -> None:
    """ConcatTable -> ParallelTable -> CMulTable, then SelectTable; computed by hand in NumPy."""
    x = RNG.standard_normal((2, 3, 4, 4)).astype(np.float32)
    tree = container("Sequential",
                     container("ConcatTable", mod("Identity"), mod("Sigmoid"), mod("ReLU")),
                     container("ParallelTable", mod("Tanh"), mod("Identity"), mod("ELU", alpha=0.5)),
                     container("ConcatTable", mod("CMulTable"), mod("SelectTable", index=-1)),
                     mod("CAddTable"))  # fmt: skip
    (got,) = _k5(tree, x, tmp_path)
    sig, relu = 1 / (1 + np.exp(-x)), np.maximum(x, 0)
    elu = np.where(relu > 0, relu, 0.5 * (np.exp(relu) - 1))
    assert_close(got, np.tanh(x) * sig * elu + elu)


def test_transpose_and_view_batch_rules_by_hand(tmp_path: Path) -> None:
    """Transpose's 1-based swaps; View(-1, n) keeps the batch; View with numInputDims; Reshape's batch mode."""
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    tree = container("Sequential",
                     mod("Transpose", permutations=T7Table({1.0: T7Table({1.0: 2.0, 2.0: 4.0}),
                                                            2.0: T7Table({1.0: 3.0, 2.0: 4.0})})),
                     mod("View", size=longs(-1, 12), numElements=12, numInputDims=3),
                     mod("Reshape", size=longs(10, 6), nelement=60),
                     mod("LeakyReLU", negval=0.2))  # fmt: skip
    (got,) = _k5(tree, x, tmp_path)
    want = np.swapaxes(np.swapaxes(x, 1, 3), 2, 3).reshape(2, -1, 12).reshape(2, 10, 6)  # [2, 5, 12] -> [2, 10, 6]
    assert_close(got, np.where(want > 0, want, 0.2 * want))


def test_jointable_ninputdims_counts_from_the_sample(tmp_path: Path) -> None:
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    tree = container("Sequential", container("ConcatTable", mod("Identity"), mod("Tanh")),
                     mod("JoinTable", dimension=1, nInputDims=2))  # fmt: skip
    (got,) = _k5(tree, x, tmp_path)
    assert_close(got, np.concatenate([x, np.tanh(x)], axis=1))  # dimension 1 of each sample: axis 1 of the batch


def test_old_batchnorm_running_std(tmp_path: Path) -> None:
    """Files from before 2016 keep running_std = 1 / sqrt(var + eps)."""
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    mean, var = w(3), np.abs(w(3)) + 0.5
    std = 1 / np.sqrt(var + 1e-5)
    (got,) = _k5(mod("BatchNormalization", eps=1e-5, running_mean=mean, running_std=std), x, tmp_path)
    assert_close(got, (x - mean) / np.sqrt(var + 1e-5))


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize(("k", "pad"), [(3, (1, 1)), (2, (0, 1))])
def test_average_pool_ceil_mode_divisor(k: int, pad: tuple[int, int], count_include_pad: bool, tmp_path: Path) -> None:
    """Lua's divisor at ceil-mode edges counts padding, never the overhang past it. PyTorch kept THNN's kernel, so it
    is the oracle here: OpenCV 4.12 divides differently at these edges (0.4 off on this input for k=3)."""
    torch = pytest.importorskip("torch", reason="PyTorch's avg_pool2d is THNN's, Lua's own kernel")
    x = RNG.standard_normal((1, 2, 9, 9)).astype(np.float32)
    tree = mod("SpatialAveragePooling", kW=k, kH=k, dW=2, dH=2, padW=pad[1], padH=pad[0], ceil_mode=True,
               count_include_pad=count_include_pad)  # fmt: skip
    (got,) = _k5(tree, x, tmp_path)
    want = torch.nn.functional.avg_pool2d(torch.from_numpy(x), k, 2, padding=pad, ceil_mode=True,
                                          count_include_pad=count_include_pad)  # fmt: skip
    assert_close(got, want.numpy())


def test_elementwise_modules_by_hand(tmp_path: Path) -> None:
    x = RNG.standard_normal((2, 3, 4, 4)).astype(np.float32)
    tree = container("Sequential", mod("HardTanh", min_val=-0.5, max_val=0.8), mod("Abs"), mod("Power", pow=3.0),
                     mod("SpatialSoftMax"))  # fmt: skip
    (got,) = _k5(tree, x, tmp_path)
    y = np.abs(np.clip(x, -0.5, 0.8)) ** 3
    e = np.exp(y - y.max(axis=1, keepdims=True))
    assert_close(got, e / e.sum(axis=1, keepdims=True))


@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
def test_modern_layers_write_as_lua_modules(oracles: Oracles, tmp_path: Path) -> None:
    """PyTorch layers without a Lua module of their own: 'same' padding with an even kernel (asymmetric pads ->
    SpatialZeroPadding + SpatialConvolution), ReLU6, global average/max pooling; OpenCV runs the file like PyTorch."""
    torch = pytest.importorskip("torch", reason="the network is built in PyTorch")
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 4, padding="same"), nn.ReLU6(), nn.Conv2d(6, 6, 3, padding=1),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5)).eval()  # fmt: skip
    x = torch.randn(2, 3, 8, 8) * 4
    path = tmp_path / "modern.t7"
    k5.to_torch7(k5.from_torch(net, (x,)), path)
    with torch.no_grad():
        want = net(x).numpy()
    assert_close(oracles.opencv(path, x.numpy()), want)
    (got,) = k5.run(from_torch7(path, input_shape=[2, 3, 8, 8]), x.numpy()).values()
    assert_close(got, want)

    pooled = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveMaxPool2d(1)).eval()
    k5.to_torch7(k5.from_torch(pooled, (x,)), path)
    with torch.no_grad():
        assert_close(oracles.opencv(path, x.numpy()), pooled(x).numpy())


def test_onnx_style_gemm_writes_as_linear(oracles: Oracles, tmp_path: Path) -> None:
    b, c = w(4, 12), w(4)
    graph = k5.Graph(
        [k5.Node("flat", "Flatten", ["x"], ["f"], {"axis": 1}),
         k5.Node("fc", "Gemm", ["f"], ["y"], {"transB": 1}, {"B": b, "C": c})],
        [k5.TensorInfo("x", "float32", [2, 3, 2, 2])], [k5.TensorInfo("y", "float32")],
    )  # fmt: skip
    path = tmp_path / "gemm.t7"
    k5.to_torch7(k5.Model(graph), path)
    x = w(2, 3, 2, 2)
    assert_close(oracles.opencv(path, x), x.reshape(2, 12) @ b.T + c)
