"""Scan-8 (batch axis 0, scan axis 1, optional sequence_lens) imported as a Loop over the batch running Scan-9.

Oracle: onnxruntime, which implements Scan-8 natively, on the original model; the k5 runtime and onnxruntime on
the re-exported model must both match it."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from k5.convert.onnx import from_onnx, to_onnx  # noqa: E402
from k5.runtime import run  # noqa: E402

B, T = 3, 4
RNG = np.random.default_rng(8)


def _vi(name: str, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _scan8(with_lens: bool, directions: list[int]):
    """Two states (acc [2], count [] ), two scan inputs a [B, T, 2] and b [B, T, 3, 2], two scan outputs."""
    body = helper.make_graph(
        [
            helper.make_node("Constant", [], ["one"], value=helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])),
            helper.make_node("ReduceSum", ["b_t"], ["b_sum"], axes=[0], keepdims=0),
            helper.make_node("Mul", ["a_t", "b_sum"], ["prod"]),
            helper.make_node("Add", ["acc_in", "prod"], ["acc_out"]),
            helper.make_node("Add", ["count_in", "one"], ["count_out"]),
            helper.make_node("Sub", ["acc_out", "a_t"], ["y_t"]),
            helper.make_node("Mul", ["b_t", "count_out"], ["z_t"]),
        ],
        "body",
        [_vi("acc_in", [2]), _vi("count_in", []), _vi("a_t", [2]), _vi("b_t", [3, 2])],
        [_vi("acc_out", [2]), _vi("count_out", []), _vi("y_t", [2]), _vi("z_t", [3, 2])],
    )
    ins = ["lens" if with_lens else "", "acc0", "count0", "a", "b"]
    scan = helper.make_node(
        "Scan", ins, ["acc", "count", "y", "z"], num_scan_inputs=2, body=body, directions=directions
    )
    inputs = [_vi("acc0", [B, 2]), _vi("count0", [B]), _vi("a", [B, T, 2]), _vi("b", [B, T, 3, 2])]
    if with_lens:
        inputs.insert(0, helper.make_tensor_value_info("lens", TensorProto.INT64, [B]))
    graph = helper.make_graph([scan], "g", inputs, [_vi(n, None) for n in ("acc", "count", "y", "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)])
    model.ir_version = 3
    return model


def _feeds(with_lens: bool) -> dict[str, np.ndarray]:
    feeds = {
        "acc0": RNG.standard_normal((B, 2)),
        "count0": RNG.integers(0, 5, B).astype(np.float64),
        "a": RNG.standard_normal((B, T, 2)),
        "b": RNG.standard_normal((B, T, 3, 2)),
    }
    feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
    if with_lens:
        feeds["lens"] = np.array([T, 2, 1], np.int64)
    return feeds


def _ort(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))


@pytest.mark.parametrize("with_lens", [False, True], ids=["full_length", "sequence_lens"])
@pytest.mark.parametrize("directions", [[0, 0], [0, 1], [1, 1]], ids=lambda d: "dirs" + "".join(map(str, d)))
def test_scan8_matches_onnxruntime(with_lens: bool, directions: list[int]) -> None:
    original = _scan8(with_lens, directions)
    feeds = _feeds(with_lens)
    expected = _ort(original, feeds)
    if with_lens:
        assert np.all(expected["y"][2, 1:] == 0) and np.any(expected["y"][2, 0] != 0)  # padded past the length
    model = from_onnx(original)
    assert {n.op for n in model.graph.nodes} >= {"Loop"} and "Scan" not in {n.op for n in model.graph.nodes}
    got = run(model, feeds)
    exported = _ort(to_onnx(model), feeds)
    for name, e in expected.items():
        np.testing.assert_allclose(got[name], e, rtol=1e-5, atol=1e-6, err_msg=f"k5 runtime, {name}")
        np.testing.assert_allclose(exported[name], e, rtol=1e-5, atol=1e-6, err_msg=f"re-exported, {name}")
