"""Cast to float8_e8m0fnu in every round mode, against ONNX's own converter (onnx.numpy_helper.to_float8e8m0)."""

from __future__ import annotations

import numpy as np
import pytest

from k5.ops.elementwise import cast

numpy_helper = pytest.importorskip("onnx.numpy_helper", reason="ONNX's converter is the oracle")


@pytest.mark.parametrize("round_mode", ["up", "down", "nearest"])
@pytest.mark.parametrize("saturate", [0, 1])
def test_e8m0_matches_onnx(round_mode: str, saturate: int) -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate(
        [
            rng.standard_normal(500).astype(np.float32) * np.float32(10.0) ** rng.integers(-30, 30, 500),
            np.array([0.0, -0.0, 1.0, 1.5, 0.75, 3e38, np.inf, -np.inf, np.nan, 1e-40, 2.0**-127], np.float32),
        ]
    ).astype(np.float32)
    expected = numpy_helper.to_float8e8m0(x, saturate=bool(saturate), round_mode=round_mode)
    got = cast(x, to="float8_e8m0fnu", saturate=saturate, round_mode=round_mode)
    assert str(got.dtype) == "float8_e8m0fnu"
    np.testing.assert_array_equal(got.view(np.uint8), np.asarray(expected).view(np.uint8))
