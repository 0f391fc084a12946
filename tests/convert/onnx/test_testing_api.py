"""k5.testing, the public conformance helpers: compare() applies the spec's tolerance rule (docs/spec.md section 8:
same dtype and shape, NaNs at the same positions, |a - e| <= atol + rtol * |e|); iter_cases/run_case run ONNX's
own cases, whose expected outputs are the oracle."""

from __future__ import annotations

import numpy as np
import pytest

from k5.testing import compare, iter_cases, run_case


def test_compare_follows_the_tolerance_rule() -> None:
    e = np.array([1.0, -200.0, np.nan], np.float32)
    assert compare(e, e + np.float32([1e-5, 0.0, 0.0]), rtol=1e-4, atol=2e-5) == ""
    assert compare(e, e + np.float32([1e-3, 0.0, 0.0]), rtol=1e-4, atol=1e-5) != ""  # beyond atol + rtol * 1
    assert compare(e, e + np.float32([0.0, 0.01, 0.0]), rtol=1e-4, atol=0.0) == ""  # rtol scales with |e| = 200
    assert compare(e, np.array([1.0, -200.0, 0.0], np.float32), rtol=1e-4, atol=1e-5) != ""  # NaN moved
    assert "shape" in compare(e, e[:2], rtol=1e-4, atol=1e-5)
    assert "dtype" in compare(e, e.astype(np.float64), rtol=1e-4, atol=1e-5)
    assert compare([e, e], [e, e], rtol=0.0, atol=0.0) == "" and compare([e], [e, e], rtol=0.0, atol=0.0) != ""


def test_run_case_passes_an_onnx_case_on_every_path() -> None:
    pytest.importorskip("onnxruntime")
    (case,) = list(iter_cases(name="test_relu"))
    result = run_case(case, ("k5", "onnx", "ref"))
    assert result.status == {"ref": "pass", "k5": "pass", "onnx": "pass"}, result.detail


def test_check_validation_runs_the_pair(tmp_path) -> None:
    import k5
    from k5.format.model import Graph, Model, Node, TensorInfo, ValidationPair
    from k5.testing import check_validation

    rng = np.random.default_rng(5)
    w, b, x = (rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (3,), (2, 4)))
    graph = Graph([Node("fc", "Linear", ["x"], ["y"], weights={"weight": w, "bias": b})],
                  [TensorInfo("x", "float32", [2, 4])], [TensorInfo("y", "float32", [2, 3])])  # fmt: skip
    expected = x @ w.T + b  # the oracle: NumPy
    k5.save(Model(graph, validation=ValidationPair({"x": x}, {"y": expected})), tmp_path / "m.k5")
    with k5.load(tmp_path / "m.k5") as model:
        assert check_validation(model) == ""
    k5.save(Model(graph, validation=ValidationPair({"x": x}, {"y": expected + 1e-2})), tmp_path / "off.k5")
    with k5.load(tmp_path / "off.k5") as model:
        assert "output 'y'" in check_validation(model)
    assert check_validation(Model(graph)) == "the model has no validation pair"
