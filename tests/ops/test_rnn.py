"""LSTM/GRU/RNN kernels against torch.nn.LSTM/GRU/RNN with weights re-packed into ONNX's gate layout, covering
what ONNX's node test cases lack: bidirectional, multi-batch, ragged sequence_lens, batch-first, initial states."""

from __future__ import annotations

import numpy as np
import pytest
from _layer_cases import RNN, cases_for, check_case

from k5.errors import OpError
from k5.ops import rnn as K  # noqa: N812 - short alias for the kernels module

torch = pytest.importorskip("torch")

T, B, IN, H = 6, 4, 5, 7


def _rel(actual: np.ndarray, expected) -> float:
    expected = np.asarray(expected, dtype=np.float64)
    return float(np.abs(np.asarray(actual, dtype=np.float64) - expected).max() / (np.abs(expected).max() + 1e-12))


def _onnx_weights(module, gate_order: list[int], dirs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """torch (W_ih, W_hh, b_ih, b_hh) per direction -> ONNX W, R, B; ``gate_order`` lists torch gate blocks in
    ONNX order."""

    def reorder(a: np.ndarray) -> np.ndarray:
        blocks = np.split(a, len(gate_order), axis=0)
        return np.concatenate([blocks[g] for g in gate_order], axis=0)

    Ws, Rs, Bs = [], [], []
    for d in range(dirs):
        sfx = "_reverse" if d else ""
        w_ih, w_hh, b_ih, b_hh = (
            getattr(module, n + sfx).detach().numpy()
            for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        )
        Ws.append(reorder(w_ih))
        Rs.append(reorder(w_hh))
        Bs.append(np.concatenate([reorder(b_ih), reorder(b_hh)]))
    return np.stack(Ws), np.stack(Rs), np.stack(Bs)


def _run_torch(module, x: np.ndarray, lens: np.ndarray | None, init):
    xt = torch.from_numpy(x)
    with torch.no_grad():
        if lens is None:
            return module(xt, init)
        packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.from_numpy(lens), enforce_sorted=False)
        out, state = module(packed, init)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])
        return y, state


def _y_torch_layout(y: np.ndarray, dirs: int) -> np.ndarray:
    """ONNX Y [T, dirs, B, H] -> torch's [T, B, dirs*H]."""
    return y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], dirs * y.shape[3])


CASES = [
    # (bidirectional, ragged lengths, initial state, batch-first layout)
    (False, False, False, False),
    (True, False, True, False),
    (True, True, False, False),
    (False, True, True, True),
    (True, True, True, True),
]


@pytest.mark.parametrize(("bidir", "ragged", "init", "batch_first"), CASES)
def test_lstm_matches_torch(bidir, ragged, init, batch_first) -> None:
    torch.manual_seed(0)
    dirs = 2 if bidir else 1
    m = torch.nn.LSTM(IN, H, bidirectional=bidir)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, IN), dtype=np.float32)
    lens = np.array([6, 3, 1, 5], dtype=np.int32) if ragged else None
    h0 = rng.standard_normal((dirs, B, H), dtype=np.float32) if init else None
    c0 = rng.standard_normal((dirs, B, H), dtype=np.float32) if init else None
    y_t, (h_t, c_t) = _run_torch(m, x, lens, (torch.from_numpy(h0), torch.from_numpy(c0)) if init else None)
    W, R, Bias = _onnx_weights(m, [0, 3, 1, 2], dirs)  # torch i f g o -> ONNX i o f c
    xin, h0in, c0in = x, h0, c0
    if batch_first:
        xin = x.transpose(1, 0, 2)
        h0in = None if h0 is None else h0.transpose(1, 0, 2)
        c0in = None if c0 is None else c0.transpose(1, 0, 2)
    y, yh, yc = K.lstm(
        xin, W, R, Bias, lens, h0in, c0in, None, direction="bidirectional" if bidir else "forward",
        hidden_size=H, layout=int(batch_first),
    )  # fmt: skip
    if batch_first:
        y, yh, yc = y.transpose(1, 2, 0, 3), yh.transpose(1, 0, 2), yc.transpose(1, 0, 2)
    assert y.dtype == np.float32 and y.shape == (T, dirs, B, H) and yh.shape == yc.shape == (dirs, B, H)
    assert _rel(_y_torch_layout(y, dirs), y_t.numpy()) < 1e-5
    assert _rel(yh, h_t.numpy()) < 1e-5
    assert _rel(yc, c_t.numpy()) < 1e-5


@pytest.mark.parametrize(("bidir", "ragged", "init", "batch_first"), CASES)
def test_gru_matches_torch(bidir, ragged, init, batch_first) -> None:
    torch.manual_seed(1)
    dirs = 2 if bidir else 1
    m = torch.nn.GRU(IN, H, bidirectional=bidir)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, B, IN), dtype=np.float32)
    lens = np.array([2, 6, 4, 1], dtype=np.int32) if ragged else None
    h0 = rng.standard_normal((dirs, B, H), dtype=np.float32) if init else None
    y_t, h_t = _run_torch(m, x, lens, torch.from_numpy(h0) if init else None)
    W, R, Bias = _onnx_weights(m, [1, 0, 2], dirs)  # torch r z n -> ONNX z r h
    xin = x.transpose(1, 0, 2) if batch_first else x
    h0in = h0.transpose(1, 0, 2) if (batch_first and h0 is not None) else h0
    y, yh = K.gru(
        xin, W, R, Bias, lens, h0in, direction="bidirectional" if bidir else "forward", linear_before_reset=1,
        layout=int(batch_first),
    )  # fmt: skip
    if batch_first:
        y, yh = y.transpose(1, 2, 0, 3), yh.transpose(1, 0, 2)
    assert _rel(_y_torch_layout(y, dirs), y_t.numpy()) < 1e-5
    assert _rel(yh, h_t.numpy()) < 1e-5


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize(("bidir", "ragged"), [(False, False), (True, True)])
def test_rnn_matches_torch(nonlinearity, bidir, ragged) -> None:
    torch.manual_seed(2)
    dirs = 2 if bidir else 1
    m = torch.nn.RNN(IN, H, nonlinearity=nonlinearity, bidirectional=bidir)
    x = np.random.default_rng(3).standard_normal((T, B, IN), dtype=np.float32)
    lens = np.array([6, 2, 5, 3], dtype=np.int32) if ragged else None
    y_t, h_t = _run_torch(m, x, lens, None)
    W, R, Bias = _onnx_weights(m, [0], dirs)
    acts = ["Tanh" if nonlinearity == "tanh" else "Relu"] * dirs
    y, yh = K.rnn(x, W, R, Bias, lens, None, activations=acts, direction="bidirectional" if bidir else "forward")
    assert _rel(_y_torch_layout(y, dirs), y_t.numpy()) < 1e-5
    assert _rel(yh, h_t.numpy()) < 1e-5


def test_gru_linear_before_reset_0_hand_maths() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, IN))
    W = rng.standard_normal((1, 3 * H, IN)) * 0.5
    R = rng.standard_normal((1, 3 * H, H)) * 0.5
    Bb = rng.standard_normal((1, 6 * H)) * 0.5
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = np.zeros((2, H))
    Wz, Wr, Wh = np.split(W[0], 3)
    Rz, Rr, Rh = np.split(R[0], 3)
    wbz, wbr, wbh, rbz, rbr, rbh = np.split(Bb[0], 6)
    for t in range(3):
        z = sig(x[t] @ Wz.T + h @ Rz.T + wbz + rbz)
        r = sig(x[t] @ Wr.T + h @ Rr.T + wbr + rbr)
        hh = np.tanh(x[t] @ Wh.T + (r * h) @ Rh.T + rbh + wbh)
        h = (1 - z) * hh + z * h
    y, yh = K.gru(x, W, R, Bb, None, None)
    assert y.dtype == np.float64
    np.testing.assert_allclose(yh[0], h, rtol=1e-12)


def test_rnn_activation_alpha_beta_and_clip_hand_maths() -> None:
    """activation_alpha/beta are consumed in order by the activations that take them; clip bounds pre-activations."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 2, IN)) * 3
    W = rng.standard_normal((2, H, IN))
    R = rng.standard_normal((2, H, H)) * 0.3
    acts = ["ScaledTanh", "LeakyRelu"]
    y, yh = K.rnn(
        x, W, R, None, None, None, activations=acts, activation_alpha=[1.5, 0.2], activation_beta=[0.7],
        clip=2.0, direction="bidirectional",
    )  # fmt: skip
    fns = [lambda v: 1.5 * np.tanh(0.7 * v), lambda v: np.where(v >= 0, v, 0.2 * v)]
    for d in range(2):
        h = np.zeros((2, H))
        steps = range(4) if d == 0 else reversed(range(4))
        for t in steps:
            h = fns[d](np.clip(x[t] @ W[d].T + h @ R[d].T, -2, 2))
            np.testing.assert_allclose(y[t, d], h, rtol=1e-12)
        np.testing.assert_allclose(yh[d], h, rtol=1e-12)


def test_lstm_errors_and_readonly_inputs() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((T, B, IN), dtype=np.float32)
    W = rng.standard_normal((1, 4 * H, IN), dtype=np.float32)
    R = rng.standard_normal((1, 4 * H, H), dtype=np.float32)
    for a in (x, W, R):
        a.flags.writeable = False
    K.lstm(x, W, R, None, np.array([1, 2, 3, 6], dtype=np.int32), None, None, None)
    with pytest.raises(OpError, match=r"W expects shape \[2, 28, 5\]"):
        K.lstm(x, W, R, None, None, None, None, None, direction="bidirectional")
    with pytest.raises(OpError, match="sequence_lens"):
        K.lstm(x, W, R, None, np.array([7, 1, 1, 1]), None, None, None)
    with pytest.raises(OpError, match="activation"):
        K.lstm(x, W, R, None, None, None, None, None, activations=["Sigmoid", "Nope", "Tanh"])


@pytest.mark.parametrize("case", cases_for(RNN))
def test_onnx_case(case) -> None:
    """ONNX's backend node test case (expected outputs computed by ONNX) through import and the k5 runtime."""
    check_case(case)
