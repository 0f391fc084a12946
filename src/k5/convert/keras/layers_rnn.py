"""Keras recurrent layers (LSTM, GRU, SimpleRNN, Bidirectional) as k5's ONNX-style RNN ops with ``layout=1``.

Keras keeps a kernel ``[input, gates*units]``, a recurrent kernel ``[units, gates*units]`` and a bias; k5 (ONNX)
keeps ``W [dirs, gates*units, input]``, ``R [dirs, gates*units, units]`` and ``B [dirs, 2*gates*units]``
(input bias, then recurrent bias). Gate order: Keras LSTM ``i, f, c, o`` -> ONNX ``i, o, f, c``; GRU ``z, r, h``
in both; GRU ``reset_after=True`` (Keras' default) is ONNX ``linear_before_reset=1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from k5.convert.keras.graph import Builder, LayerCall, Val
from k5.convert.keras.masking import rnn_mask
from k5.convert.keras.tables import LAYERS

__all__: list[str] = []

_OPS = {"LSTM": ("LSTM", 4), "GRU": ("GRU", 3), "SimpleRNN": ("RNN", 1)}
_ACT = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}
_PRODUCES = ("LSTM", "GRU", "RNN", "Reshape", "Constant", "Slice", "ReduceSum", "ReduceMean", "ReduceProd",
             "Transpose", "Flatten", "Cast", "Sub", "Unsqueeze", "Mul", "Add")


def _cell_weights(call: LayerCall, cls: str, cfg: dict[str, Any], ws: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """(W [G*H, I], R [G*H, H], B [2*G*H]) of one direction, in ONNX gate order."""
    _, gates = _OPS[cls]
    units = int(cfg["units"])
    kernel, rec = np.asarray(ws[0]), np.asarray(ws[1])
    bias = np.asarray(ws[2]) if cfg.get("use_bias", True) and len(ws) > 2 else None
    if kernel.shape[1] != gates * units or rec.shape != (units, gates * units):
        raise call.error(f"weights of shape {kernel.shape}, {rec.shape} do not fit units={units}")
    order = [0, 3, 1, 2] if cls == "LSTM" else list(range(gates))

    def reorder(m: np.ndarray) -> np.ndarray:
        chunks = np.split(m, gates, axis=-1)
        return np.concatenate([chunks[i] for i in order], axis=-1)

    w, r = reorder(kernel).T, reorder(rec).T
    zeros = np.zeros(gates * units, kernel.dtype)
    if bias is None:
        b = np.concatenate([zeros, zeros])
    elif cls == "GRU" and cfg.get("reset_after", True):
        b = np.concatenate([bias[0], bias[1]])
    else:
        b = np.concatenate([reorder(bias), zeros])
    return np.ascontiguousarray(w), np.ascontiguousarray(r), b


def _check(call: LayerCall, cfg: dict[str, Any]) -> None:
    if cfg.get("stateful"):
        raise call.error("stateful=True is not converted (k5 graphs carry no state between calls)")
    if cfg.get("time_major"):
        raise call.error("time_major=True is not converted")


def _activations(call: LayerCall, cls: str, cfg: dict[str, Any], dirs: int) -> list[str] | None:
    act = cfg.get("activation", "tanh")
    rec = cfg.get("recurrent_activation", "sigmoid")
    for a in (act, rec) if cls != "SimpleRNN" else (act,):
        if a not in _ACT:
            raise call.error(f"activation {a!r} is not converted in a recurrent layer ({', '.join(_ACT)})")
    if cls == "LSTM":
        acts = [_ACT[rec], _ACT[act], _ACT[act]]
        default = ["Sigmoid", "Tanh", "Tanh"]
    elif cls == "GRU":
        acts, default = [_ACT[rec], _ACT[act]], ["Sigmoid", "Tanh"]
    else:
        acts, default = [_ACT[act]], ["Tanh"]
    return None if acts == default else acts * dirs


def _run(b: Builder, call: LayerCall, cls: str, cfg: dict[str, Any], dirs_ws: list[list[np.ndarray]],
         direction: str, merge: str | None) -> list[Val]:
    op, _ = _OPS[cls]
    _check(call, cfg)
    units = int(cfg["units"])
    parts = [_cell_weights(call, cls, cfg, ws) for ws in dirs_ws]
    weights = {"W": np.stack([p[0] for p in parts]), "R": np.stack([p[1] for p in parts]),
               "B": np.stack([p[2] for p in parts])}
    attrs: dict[str, Any] = {"hidden_size": units, "layout": 1, "direction": direction}
    if cls == "GRU":
        attrs["linear_before_reset"] = int(bool(cfg.get("reset_after", True)))
    acts = _activations(call, cls, cfg, len(dirs_ws))
    if acts is not None:
        attrs["activations"] = acts
    src = b.get(call.inputs[0], "k")
    mask = rnn_mask(b, call, direction)
    n_out = 3 if cls == "LSTM" else 2
    ins = [src] if mask is None else [src, "", "", "", mask[1]]  # X, W, R, B (stored), sequence_lens
    outs = b.add(op, ins, id=call.name, weights=weights, attrs=attrs, n_out=n_out)
    seq, state = outs[0], outs[1]
    dirs = len(dirs_ws)
    return_sequences = bool(cfg.get("return_sequences", False))
    if return_sequences:
        y = seq  # [N, T, dirs, H]
        if mask is not None and dirs == 1 and not cfg.get("zero_output_for_mask", False):
            # Keras repeats the last output at masked steps (k5's Y is zero there): Y + (1 - steps) * Y_h
            pad = b.add1("Sub", [b.const(np.ones((), np.float32), "one_f32"), mask[0]], id=f"{call.name}.padded")
            pad = b.add1("Unsqueeze", [pad, b.ints([2, 3], "axes_2_3")], id=f"{call.name}.padded4")
            last = b.add1("Unsqueeze", [state, b.ints([1], "axes_1")], id=f"{call.name}.last")
            carry = b.add1("Mul", [pad, last], id=f"{call.name}.carry")
            y = b.add1("Add", [y, carry], id=f"{call.name}.carried")
        if direction == "reverse":  # Keras go_backwards returns the outputs in processing order
            y = b.add1("Slice", [y, b.ints([-1], "minus_one"), b.ints([np.iinfo(np.int64).min], "int64_min"),
                                 b.ints([1], "axes_1"), b.ints([-1], "minus_one")], id=f"{call.name}.reversed")
        rank = 3
        shape = [0, 0, -1]
        red_axis = 2
    else:
        y, rank, shape, red_axis = state, 2, [0, -1], 1  # Y_h [N, dirs, H]
    if dirs == 2 and merge in ("sum", "ave", "mul"):
        op_ = {"sum": "ReduceSum", "ave": "ReduceMean", "mul": "ReduceProd"}[merge]
        out = b.add1(op_, [y, b.ints([red_axis], f"{call.name}.merge_axis")], id=f"{call.name}.merge",
                     attrs={"keepdims": 0})
    else:
        out = b.add1("Reshape", [y, b.ints(shape, f"{call.name}.shape")], id=f"{call.name}.output")
    results = [Val(out, "k", rank)]
    if cfg.get("return_state"):
        if dirs != 1:
            raise call.error("return_state on a Bidirectional layer is not converted")
        flat = b.ints([0, -1], "flat_shape")
        results.append(Val(b.add1("Reshape", [outs[1], flat], id=f"{call.name}.h"), "k", 2))
        if cls == "LSTM":
            results.append(Val(b.add1("Reshape", [outs[2], flat], id=f"{call.name}.c"), "k", 2))
    return results


@LAYERS.register("LSTM", "GRU", "SimpleRNN", produces=_PRODUCES)
def _rnn(b: Builder, call: LayerCall) -> list[Val]:
    cfg = call.config
    direction = "reverse" if cfg.get("go_backwards") else "forward"
    return _run(b, call, call.class_name, cfg, [call.weights], direction, None)


@LAYERS.register("Bidirectional", produces=_PRODUCES)
def _bidirectional(b: Builder, call: LayerCall) -> list[Val]:
    cfg = call.config
    inner = cfg["layer"]
    cls = inner.get("class_name")
    if cls not in _OPS:
        raise call.error(f"wraps {cls!r}; only LSTM, GRU and SimpleRNN are converted")
    inner_cfg = dict(inner["config"])
    back = cfg.get("backward_layer")
    if back is not None and (back.get("class_name") != cls or
                             back["config"].get("units") != inner_cfg.get("units")):
        raise call.error("a backward layer differing from the forward one is not converted")
    merge = cfg.get("merge_mode", "concat")
    if merge not in ("concat", "sum", "ave", "mul"):
        raise call.error(f"merge_mode={merge!r} is not converted")
    if inner_cfg.get("go_backwards"):
        raise call.error("a Bidirectional wrapper of a go_backwards layer is not converted")
    half = len(call.weights) // 2
    inner_cfg["return_state"] = False
    if cfg.get("return_state") or inner["config"].get("return_state"):
        raise call.error("return_state on a Bidirectional layer is not converted")
    return _run(b, call, cls, inner_cfg, [call.weights[:half], call.weights[half:]], "bidirectional", merge)
