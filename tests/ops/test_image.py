"""Image ops: ONNX's backend cases, PyTorch (interpolate, grid_sample, affine_grid, pixel_shuffle) on random
inputs, onnx.reference for RoiAlign/NonMaxSuppression on random inputs, and hand maths."""

from __future__ import annotations

import time

import numpy as np
import pytest
from _onnx_cases import cases_for, check_as_written, check_case, family, single_node_cases
from _primitive_cases import reference_vs_k5

from k5.errors import K5Error
from k5.ops import image as K  # noqa: N812 - short alias for the kernels module

OPS = family("image")


@pytest.mark.parametrize("case", cases_for(OPS))
def test_onnx_backend_case(case) -> None:
    check_case(case)


@pytest.mark.parametrize("case", single_node_cases("Upsample"))
def test_deprecated_upsample_as_written(case) -> None:
    check_as_written(case)  # the importer turns Upsample into Resize; k5's own Upsample runs here


def _rel(actual: np.ndarray, expected: np.ndarray) -> float:
    expected = np.asarray(expected, dtype=np.float64)
    return float(np.abs(np.asarray(actual, np.float64) - expected).max() / (np.abs(expected).max() + 1e-12))


torch = pytest.importorskip("torch")
F = torch.nn.functional


# --- Resize vs torch.nn.functional.interpolate ----------------------------------------------------------------
# (torch mode, align_corners, antialias) -> ONNX attributes with the same semantics
_TORCH_EQUIV = {
    ("nearest", None, False): {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                               "nearest_mode": "floor"},
    ("nearest-exact", None, False): {"mode": "nearest", "coordinate_transformation_mode": "half_pixel",
                                     "nearest_mode": "round_prefer_ceil"},
    ("bilinear", False, False): {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
    ("bilinear", True, False): {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
    ("bicubic", False, False): {"mode": "cubic", "coordinate_transformation_mode": "half_pixel"},
    ("bicubic", True, False): {"mode": "cubic", "coordinate_transformation_mode": "align_corners"},
    # torch's antialiasing (PIL's) drops taps outside the image and renormalises: ONNX's exclude_outside
    ("bilinear", False, True): {"mode": "linear", "coordinate_transformation_mode": "half_pixel", "antialias": 1,
                                "exclude_outside": 1},
    ("bicubic", False, True): {"mode": "cubic", "coordinate_transformation_mode": "half_pixel", "antialias": 1,
                               "cubic_coeff_a": -0.5, "exclude_outside": 1},
}  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "align", "aa", "size"),
    [(*key, size) for key in _TORCH_EQUIV for size in [(17, 23), (5, 4), (9, 9)] if not (key[2] and size[0] > 9)],
)  # antialiasing only acts when downscaling
def test_resize_2d_matches_torch(mode: str, align: bool | None, aa: bool, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(size))
    x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
    kw = {"align_corners": align} if align is not None else {}
    expected = F.interpolate(torch.from_numpy(x), size=size, mode=mode, antialias=aa, **kw).numpy()
    y = K.resize(x, None, None, np.array([2, 3, *size], np.int64), **_TORCH_EQUIV[(mode, align, aa)])
    assert y.dtype == np.float32 and y.shape == expected.shape
    assert _rel(y, expected) < 1e-5


@pytest.mark.parametrize(("mode", "align"), [("trilinear", False), ("trilinear", True), ("nearest", None)])
def test_resize_3d_and_axes_match_torch(mode: str, align: bool | None) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 4, 5, 6)).astype(np.float32)
    kw = {"align_corners": align} if align is not None else {}
    expected = F.interpolate(torch.from_numpy(x), size=(7, 3, 12), mode=mode, **kw).numpy()
    key = ("bilinear" if mode == "trilinear" else mode, align, False)
    y = K.resize(x, None, None, np.array([7, 3, 12], np.int64), axes=[-3, 3, 4], **_TORCH_EQUIV[key])
    assert y.shape == expected.shape and _rel(y, expected) < 1e-5


def test_resize_scales_give_floor_of_scaled_length_and_keep_integer_dtype() -> None:
    x = np.arange(2 * 5, dtype=np.uint8).reshape(1, 1, 2, 5) * 20
    y = K.resize(x, None, np.array([1, 1, 1.5, 0.5], np.float32), None, mode="linear")
    assert y.shape == (1, 1, 3, 2) and y.dtype == np.uint8
    # half_pixel, scale 0.5 along W: sources 0.5 and 2.5 -> averages of (0, 20) and (40, 60), rounded
    assert y[0, 0, 0].tolist() == [10, 50]


def test_resize_keep_aspect_ratio_policy_rounds_half_up() -> None:
    x = np.zeros((1, 1, 4, 6), np.float32)
    sizes = np.array([3, 3], np.int64)
    assert K.resize(x, None, None, sizes, axes=[2, 3], keep_aspect_ratio_policy="not_larger").shape == (1, 1, 2, 3)
    assert K.resize(x, None, None, sizes, axes=[2, 3], keep_aspect_ratio_policy="not_smaller").shape == (1, 1, 3, 5)


def test_resize_is_vectorised() -> None:
    """A per-pixel Python loop takes tens of seconds here; whole-array interpolation well under a second."""
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    start = time.perf_counter()
    y = K.resize(x, None, None, np.array([1, 3, 448, 448], np.int64), mode="cubic")
    assert y.shape == (1, 3, 448, 448)
    assert time.perf_counter() - start < 5.0


def test_resize_errors_name_the_problem() -> None:
    x = np.zeros((1, 1, 2, 2), np.float32)
    with pytest.raises(K5Error, match="exactly one of 'scales' and 'sizes'"):
        K.resize(x, None, None, None)
    with pytest.raises(K5Error, match="sizes has 2 values; expected 4"):
        K.resize(x, None, None, np.array([3, 3]))
    with pytest.raises(K5Error, match="attribute 'mode' expects one of"):
        K.resize(x, None, np.ones(4, np.float32), None, mode="area")


# --- GridSample / AffineGrid vs torch -------------------------------------------------------------------------
def _ort_grid_sample(x: np.ndarray, grid: np.ndarray, **attrs) -> np.ndarray:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import helper as h

    node = h.make_node("GridSample", ["X", "grid"], ["Y"], **attrs)
    f32 = onnx.TensorProto.FLOAT
    graph = h.make_graph(
        [node], "g", [h.make_tensor_value_info("X", f32, x.shape), h.make_tensor_value_info("grid", f32, grid.shape)],
        [h.make_tensor_value_info("Y", f32, None)],
    )  # fmt: skip
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 22)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": x, "grid": grid})[0]


@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_grid_sample_2d_matches_torch(mode: str, padding_mode: str, align_corners: int) -> None:
    """Against torch; cubic + border also against onnxruntime (onnx.reference clamps the coordinate there, while
    onnxruntime and torch clamp each tap)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)
    grid = rng.uniform(-1.4, 1.4, (2, 5, 6, 2)).astype(np.float32)  # some points fall outside
    torch_mode = {"linear": "bilinear", "cubic": "bicubic"}.get(mode, mode)
    expected = F.grid_sample(
        torch.from_numpy(x), torch.from_numpy(grid), mode=torch_mode, padding_mode=padding_mode,
        align_corners=bool(align_corners),
    ).numpy()  # fmt: skip
    if mode == "cubic" and padding_mode == "border":
        ort_out = _ort_grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
        assert _rel(K.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners),
                    ort_out) < 1e-5  # fmt: skip
    y = K.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    assert y.dtype == np.float32 and y.shape == expected.shape == (2, 3, 5, 6)
    assert _rel(y, expected) < 1e-5


@pytest.mark.parametrize("mode", ["linear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample_3d_matches_torch(mode: str, padding_mode: str) -> None:
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 2, 4, 5, 6)).astype(np.float32)
    grid = rng.uniform(-1.2, 1.2, (1, 3, 4, 5, 3)).astype(np.float32)
    torch_mode = "bilinear" if mode == "linear" else mode
    expected = F.grid_sample(
        torch.from_numpy(x), torch.from_numpy(grid), mode=torch_mode, padding_mode=padding_mode, align_corners=False
    ).numpy()
    y = K.grid_sample(x, grid, mode=mode, padding_mode=padding_mode)
    assert y.shape == expected.shape and _rel(y, expected) < 1e-5


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_affine_grid_matches_torch(dims: int, align_corners: int) -> None:
    rng = np.random.default_rng(dims)
    theta = rng.standard_normal((2, dims, dims + 1)).astype(np.float32)
    size = [2, 3, 4, 5] if dims == 2 else [2, 3, 4, 5, 6]
    expected = F.affine_grid(torch.from_numpy(theta), size, align_corners=bool(align_corners)).numpy()
    grid = K.affine_grid(theta, np.array(size, np.int64), align_corners=align_corners)
    assert grid.dtype == np.float32 and grid.shape == expected.shape
    np.testing.assert_allclose(grid, expected, rtol=1e-5, atol=1e-6)


# --- depth/space vs torch pixel_shuffle ----------------------------------------------------------------------
def test_depth_space_crd_is_pixel_shuffle_and_modes_round_trip() -> None:
    x = np.random.default_rng(1).standard_normal((2, 18, 4, 5)).astype(np.float32)
    d2s = K.depth_to_space(x, blocksize=3, mode="CRD")
    np.testing.assert_array_equal(d2s, F.pixel_shuffle(torch.from_numpy(x), 3).numpy())
    np.testing.assert_array_equal(K.space_to_depth(d2s, blocksize=3, mode="CRD"), x)
    np.testing.assert_array_equal(
        K.space_to_depth(d2s, blocksize=3, mode="CRD"), F.pixel_unshuffle(torch.from_numpy(d2s), 3).numpy()
    )
    dcr = K.depth_to_space(x, blocksize=3)
    np.testing.assert_array_equal(K.space_to_depth(dcr, blocksize=3), x)
    # DCR: output channel c at block offset (i, j) comes from input channel (i * b + j) * C_out + c
    assert dcr[1, 1, 2 * 3 + 1, 4 * 3 + 2] == x[1, (1 * 3 + 2) * 2 + 1, 2, 4]


# --- RoiAlign / NonMaxSuppression vs onnx.reference on random inputs -------------------------------------------
@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("ctm", ["half_pixel", "output_half_pixel"])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align_matches_reference(mode: str, ctm: str, sampling_ratio: int) -> None:
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 3, 12, 10)).astype(np.float32)
    xy1 = rng.uniform(-2, 8, (5, 2))
    rois = np.concatenate([xy1, xy1 + rng.uniform(0.3, 7, (5, 2))], axis=1).astype(np.float32)
    idx = np.array([0, 1, 1, 0, 1], np.int64)
    attrs = {"mode": mode, "coordinate_transformation_mode": ctm, "output_height": 3, "output_width": 4,
             "sampling_ratio": sampling_ratio, "spatial_scale": 0.8}  # fmt: skip
    (expected,), (got,) = reference_vs_k5("RoiAlign", {"X": x, "rois": rois, "batch_indices": idx}, attrs)
    assert got.dtype == np.float32 and got.shape == (5, 3, 3, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("center_point_box", [0, 1])
def test_nms_matches_reference(center_point_box: int) -> None:
    rng = np.random.default_rng(31)
    corners = rng.uniform(0, 10, (2, 30, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(1, 4, (2, 30, 2))], axis=2).astype(np.float32)
    scores = rng.uniform(0, 1, (2, 3, 30)).astype(np.float32)
    inputs = {
        "boxes": boxes,
        "scores": scores,
        "max_output_boxes_per_class": np.array([6], np.int64),
        "iou_threshold": np.array([0.3], np.float32),
        "score_threshold": np.array([0.2], np.float32),
    }
    (expected,), (got,) = reference_vs_k5("NonMaxSuppression", inputs, {"center_point_box": center_point_box})
    assert got.dtype == np.int64 and got.shape[1] == 3 and len(got) > 6
    np.testing.assert_array_equal(got, expected)


def test_nms_hand_example_and_defaults() -> None:
    boxes = np.array([[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, 5, 1, 6]]], np.float32)  # IoU(0, 1) = 0.9/1.1
    scores = np.array([[[0.5, 0.9, 0.7]]], np.float32)
    keep = K.non_max_suppression(boxes, scores, np.array([3]), np.array([0.8], np.float32), None)
    assert keep.tolist() == [[0, 0, 1], [0, 0, 2]]  # box 0 overlaps the better box 1
    keep = K.non_max_suppression(boxes, scores, np.array([3]), np.array([0.85], np.float32), None)
    assert keep.tolist() == [[0, 0, 1], [0, 0, 2], [0, 0, 0]]
    empty = K.non_max_suppression(boxes, scores, None, None, None)  # max_output_boxes_per_class defaults to 0
    assert empty.shape == (0, 3) and empty.dtype == np.int64


def test_center_crop_pad_hand_maths() -> None:
    x = np.arange(5 * 4, dtype=np.int32).reshape(5, 4)
    y = K.center_crop_pad(x, np.array([2, 7]))
    assert y.shape == (2, 7) and y.dtype == np.int32
    # rows: crop 5 -> 2 starts at (5 - 2) // 2 = 1; columns: pad 4 -> 7, 1 left and 2 right
    assert y.tolist() == [[0, 4, 5, 6, 7, 0, 0], [0, 8, 9, 10, 11, 0, 0]]
