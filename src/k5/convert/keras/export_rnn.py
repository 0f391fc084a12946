"""k5 recurrent ops and MultiHeadAttention -> Keras layers (the inverse of :mod:`.layers_rnn` and
:mod:`.layers_attention`). A bidirectional op becomes a forward layer and a ``go_backwards`` layer whose outputs
are stacked in ONNX's ``[N, T, dirs, H]`` layout."""

from __future__ import annotations

from typing import Any

import numpy as np

from k5.convert.keras.export_ops import _w, _x
from k5.convert.keras.exporter import Ctx
from k5.convert.keras.tables import EXPORTERS
from k5.errors import ConversionError
from k5.format.model import Node

__all__: list[str] = []

_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_DEFAULT = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}


def _keras_order(m: np.ndarray, op: str) -> np.ndarray:
    """ONNX gate order -> Keras gate order along axis 0 (LSTM i,o,f,c -> i,f,c,o)."""
    if op != "LSTM":
        return m
    chunks = np.split(m, 4, axis=0)
    return np.concatenate([chunks[i] for i in (0, 2, 3, 1)], axis=0)


@EXPORTERS.register("LSTM", "GRU", "RNN")
def _rnn(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    op = node.op
    if attrs.get("clip") is not None or attrs.get("input_forget"):
        raise ConversionError("clip and input_forget are not converted to Keras", where=node.label)
    W, R, B = _w(node, "W"), _w(node, "R"), _w(node, "B")
    assert W is not None and R is not None
    dirs, H = W.shape[0], R.shape[-1]
    acts = attrs.get("activations")
    activation = "tanh"
    if acts is not None and list(acts[: len(_DEFAULT[op])]) != _DEFAULT[op]:
        if op == "RNN" and acts[0] == "Relu":
            activation = "relu"
        else:
            raise ConversionError(f"activations {acts} are not converted to Keras", where=node.label)
    if _w(node, "P") is not None:
        raise ConversionError("peepholes are not converted to Keras", where=node.label)
    x = _x(cx, node)
    if int(attrs["layout"]) == 0:
        x = cx.custom.K5Transpose([1, 0, 2], name=cx.layer_name(f"{node.id}.batch_first"))(x)
    mask = None
    if len(node.inputs) > 4 and node.inputs[4]:  # sequence_lens -> a Keras mask; k5's Y is zero past the length
        lens = _x(cx, node, 4)
        mask = cx.custom.K5SequenceMask(name=cx.layer_name(f"{node.id}.mask"))(x, lens)
    layout = int(attrs["layout"])
    # initial_h (and initial_c): [dirs, N, H] ([N, dirs, H] in layout 1), one [N, H] state per Keras layer
    states = [_x(cx, node, i) if len(node.inputs) > i and node.inputs[i] else None
              for i in ((5, 6) if op == "LSTM" else (5,))]
    if any(s is not None for s in states) and not all(s is not None for s in states):
        raise ConversionError("an LSTM with initial_h but not initial_c (or the reverse) is not converted to Keras",
                              where=node.label)

    def initial(d: int) -> list[Any] | None:
        if states[0] is None:
            return None
        return [cx.custom.K5Unary("Gather", {"indices": d, "axis": layout},
                                  name=cx.layer_name(f"{node.id}.state{k}_{d}"))(s) for k, s in enumerate(states)]

    G = _GATES[op]
    seqs, hs, cs = [], [], []
    for d in range(dirs):
        w = _keras_order(W[d], op).T
        r = _keras_order(R[d], op).T
        b = B[d] if B is not None else np.zeros(2 * G * H, W.dtype)
        wb, rb = _keras_order(b[: G * H], op), _keras_order(b[G * H:], op)
        backwards = attrs.get("direction") == "reverse" or d == 1
        lname = node.id if dirs == 1 else f"{node.id}.{'backward' if d else 'forward'}"
        kw: dict[str, Any] = {"return_sequences": True, "return_state": True, "go_backwards": backwards,
                              "zero_output_for_mask": True, "name": cx.layer_name(lname)}
        if op == "LSTM":
            layer = cx.keras.layers.LSTM(H, **kw)
            ws = [w, r, wb + rb]
        elif op == "GRU":
            after = bool(attrs["linear_before_reset"])
            layer = cx.keras.layers.GRU(H, reset_after=after, **kw)
            ws = [w, r, np.stack([wb, rb]) if after else wb + rb]
        else:
            layer = cx.keras.layers.SimpleRNN(H, activation=activation, **kw)
            ws = [w, r, wb + rb]
        kwargs = {k: v for k, v in (("mask", mask), ("initial_state", initial(d))) if v is not None}
        outs = layer(x, **kwargs)
        layer.set_weights(ws)
        seq = outs[0]
        if backwards:  # Keras returns the backward pass in processing order; ONNX at the input's positions
            seq = cx.custom.K5Slice([-1], [-(1 << 62)], [1], [-1], name=cx.layer_name(f"{node.id}.unreverse{d}"))(seq)
        seqs.append(seq)
        hs.append(outs[1])
        if op == "LSTM":
            cs.append(outs[2])

    def stack(ts: list[Any], axis: int, what: str) -> Any:
        ex = [cx.custom.K5Unary("Unsqueeze", {"axes": [axis]}, name=cx.layer_name(f"{node.id}.{what}{i}"))(t)
              for i, t in enumerate(ts)]
        if len(ex) == 1:
            return ex[0]
        return cx.keras.layers.Concatenate(axis=axis, name=cx.layer_name(f"{node.id}.{what}"))(ex)

    y, yh = stack(seqs, 2, "Y"), stack(hs, 1, "Y_h")  # [N, T, dirs, H], [N, dirs, H]
    yc = stack(cs, 1, "Y_c") if cs else None
    if int(attrs["layout"]) == 0:
        y = cx.custom.K5Transpose([1, 2, 0, 3], name=cx.layer_name(f"{node.id}.Y_layout0"))(y)
        yh = cx.custom.K5Transpose([1, 0, 2], name=cx.layer_name(f"{node.id}.Y_h_layout0"))(yh)
        if yc is not None:
            yc = cx.custom.K5Transpose([1, 0, 2], name=cx.layer_name(f"{node.id}.Y_c_layout0"))(yc)
    return [y, yh, yc]


def _is_causal_mask(cx: Ctx, name: str) -> bool:
    """Whether ``name`` is a constant square ``attn_mask`` masking exactly the future: bool True above the
    diagonal, or a float mask of 0 on and below it and -inf (or a large negative number) above."""
    if not cx.is_const(name):
        return False
    m = cx.values[name]
    while m.ndim > 2 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        return False
    future = np.triu(np.ones(m.shape, dtype=bool), k=1)
    if m.dtype == np.bool_:
        return bool(np.array_equal(m, future))
    m = m.astype(np.float64)
    return bool(np.all(m[~future] == 0) and np.all(m[future] <= -1e9))


@EXPORTERS.register("MultiHeadAttention")
def _mha(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    causal = bool(attrs.get("causal"))
    if len(node.inputs) > 3 and node.inputs[3]:
        if not _is_causal_mask(cx, node.inputs[3]):
            raise ConversionError("attention masks other than a constant causal mask are not converted to Keras",
                                  where=node.label)
        causal = True
    if len(node.inputs) > 4 and node.inputs[4]:
        raise ConversionError("key padding masks are not converted to Keras", where=node.label)
    heads = int(attrs["num_heads"])
    qw, kw_, vw, ow = (_w(node, k) for k in ("q_weight", "k_weight", "v_weight", "out_weight"))
    assert qw is not None and kw_ is not None and vw is not None and ow is not None
    E = qw.shape[0]
    dh = E // heads
    if attrs.get("scale") is not None and not np.isclose(float(attrs["scale"]), 1 / np.sqrt(dh)):
        raise ConversionError("a custom attention scale is not converted to Keras", where=node.label)
    biases = [_w(node, k) for k in ("q_bias", "k_bias", "v_bias", "out_bias")]
    use_bias = any(b is not None for b in biases)
    out_dim = ow.shape[0]
    q, k, v = (_x(cx, node, i) for i in range(3))
    layer = cx.keras.layers.MultiHeadAttention(heads, dh, value_dim=dh, use_bias=use_bias,
                                               output_shape=out_dim if out_dim != q.shape[-1] else None,
                                               name=cx.layer_name(node.id))
    want_scores = len(node.outputs) > 1 and bool(node.outputs[1])
    outs = layer(q, v, key=k, use_causal_mask=causal, return_attention_scores=want_scores)
    ws: list[np.ndarray] = []
    for w, bias in zip((qw, kw_, vw), biases[:3], strict=True):
        ws.append(w.T.reshape(w.shape[1], heads, dh))
        if use_bias:
            ws.append(bias.reshape(heads, dh) if bias is not None else np.zeros((heads, dh), w.dtype))
    ws.append(ow.T.reshape(heads, dh, out_dim))
    if use_bias:
        ws.append(biases[3] if biases[3] is not None else np.zeros(out_dim, ow.dtype))
    layer.set_weights(ws)
    return list(outs) if want_scores else [outs]
