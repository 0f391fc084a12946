"""Batch-first (layout=1) LSTM/GRU/RNN export: onnxruntime refuses layout=1, so the exporter writes layout=0
between Transposes. Oracle: PyTorch's nn.LSTM/GRU/RNN (batch_first=True) holding the same weights, re-packed to
ONNX's gate order; the k5 runtime and onnxruntime on the exported model must both match it."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from k5.convert.onnx import to_onnx  # noqa: E402
from k5.format.model import Graph, Model, Node, TensorInfo  # noqa: E402
from k5.runtime import run  # noqa: E402

B, T, IN, H = 3, 5, 4, 6
#: torch gate order -> ONNX gate order (LSTM: i,f,g,o -> i,o,f,c; GRU: r,z,n -> z,r,h)
GATE_ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}


def _np(t):
    return t.detach().numpy().copy()


def _onnx_weights(module, op: str) -> dict[str, np.ndarray]:
    """torch parameters -> ONNX W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H] in ONNX gate order."""
    order = GATE_ORDER[op]
    suffixes = ["", "_reverse"] if module.bidirectional else [""]

    def gates(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a.reshape(len(order), H, *a.shape[1:])[g] for g in order], axis=0)

    w, r, b = [], [], []
    for s in suffixes:
        w.append(gates(_np(getattr(module, f"weight_ih_l0{s}"))))
        r.append(gates(_np(getattr(module, f"weight_hh_l0{s}"))))
        b.append(np.concatenate([gates(_np(getattr(module, f"bias_ih_l0{s}"))),
                                 gates(_np(getattr(module, f"bias_hh_l0{s}")))]))  # fmt: skip
    return {"W": np.stack(w), "R": np.stack(r), "B": np.stack(b)}


def _case(op: str, bidirectional: bool, seed: int):
    torch.manual_seed(seed)
    cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN": torch.nn.RNN}[op]
    module = cls(IN, H, batch_first=True, bidirectional=bidirectional).eval()
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.5)  # larger than torch's init, so every gate carries signal
    D = 2 if bidirectional else 1
    attrs = {"hidden_size": H, "layout": 1, "direction": "bidirectional" if bidirectional else "forward"}
    if op == "GRU":
        attrs["linear_before_reset"] = 1  # PyTorch's GRU applies the reset gate after the recurrent matmul
    inputs = ["x", "", "", "", "", "h0"] + (["c0"] if op == "LSTM" else [])
    outputs = ["y", "y_h"] + (["y_c"] if op == "LSTM" else [])
    node = Node("rnn", op, inputs, outputs, attrs, _onnx_weights(module, op))
    infos = [TensorInfo("x", "float32", ["batch", T, IN]), TensorInfo("h0", "float32", ["batch", D, H])]
    if op == "LSTM":
        infos.append(TensorInfo("c0", "float32", ["batch", D, H]))
    model = Model(Graph([node], infos, [TensorInfo(o, "float32") for o in outputs]))
    rng = np.random.default_rng(seed)
    feeds = {i.name: rng.standard_normal((B, *i.shape[1:])).astype(np.float32) for i in infos}
    # torch: output [B, T, D*H] (directions concatenated), states [D, B, H] even when batch_first
    with torch.no_grad():
        x = torch.from_numpy(feeds["x"])
        h0 = torch.from_numpy(feeds["h0"].transpose(1, 0, 2).copy())
        if op == "LSTM":
            y, (hn, cn) = module(x, (h0, torch.from_numpy(feeds["c0"].transpose(1, 0, 2).copy())))
        else:
            y, hn = module(x, h0)
    expected = {"y": _np(y).reshape(B, T, D, H), "y_h": _np(hn).transpose(1, 0, 2)}
    if op == "LSTM":
        expected["y_c"] = _np(cn).transpose(1, 0, 2)
    return model, feeds, expected, module


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_batch_first_recurrent_export_matches_torch(op: str, bidirectional: bool) -> None:
    model, feeds, expected, _ = _case(op, bidirectional, seed=len(op) + bidirectional)
    proto = to_onnx(model)
    onnx.checker.check_model(proto)
    (rnn,) = [n for n in proto.graph.node if n.op_type == op]
    assert all(a.name != "layout" or a.i == 0 for a in rnn.attribute)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got_ort = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))
    got_k5 = run(model, feeds)
    for name, e in expected.items():
        np.testing.assert_allclose(got_k5[name], e, rtol=1e-5, atol=1e-5, err_msg=f"k5 runtime, {name}")
        np.testing.assert_allclose(got_ort[name], e, rtol=1e-5, atol=1e-5, err_msg=f"onnxruntime, {name}")


def test_batch_first_with_omitted_outputs_and_states() -> None:
    """Only Y_h asked for, no initial state: the Transposes follow the slots that are present."""
    model, feeds, _, module = _case("LSTM", True, seed=7)
    node = model.graph.nodes[0]
    node.inputs, node.outputs = ["x"], ["", "y_h"]
    model.graph.inputs = model.graph.inputs[:1]
    model.graph.outputs = [TensorInfo("y_h", "float32")]
    with torch.no_grad():
        _, (hn, _) = module(torch.from_numpy(feeds["x"]))  # zero initial state, as ONNX without initial_h
    expected = _np(hn).transpose(1, 0, 2)
    proto = to_onnx(model)
    assert [n.op_type for n in proto.graph.node] == ["Transpose", "LSTM", "Transpose"]
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": feeds["x"]})
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run(model, {"x": feeds["x"]})["y_h"], expected, rtol=1e-5, atol=1e-5)
