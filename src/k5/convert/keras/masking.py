"""Keras time-step masks (``Embedding(mask_zero=True)``, ``Masking``) as the ``sequence_lens`` of k5's RNN ops.

Keras 3 records a mask in the functional config as ops (``ops.NotEqual``, ``ops.Any``) whose boolean ``[N, T]``
result is passed to the recurrent layer as its ``mask=`` tensor argument; an RNN skips the masked steps (its state
stays as it was). k5's LSTM/GRU/RNN take ``sequence_lens [N]`` instead: steps at and past a sequence's length are
skipped. The two agree when the mask is a **right-padding mask** (each sequence's unmasked steps come first); then
``sequence_lens`` is the count of unmasked steps, computed in the graph (``Cast``/``ReduceSum``). A mask with a hole
(a padding token inside a sequence) is not detected: k5 runs the first ``count`` steps and its numbers differ.

Any other layer given a ``mask=`` tensor is refused when the config is parsed (tensor keyword arguments).
"""

from __future__ import annotations

import numpy as np

from k5.convert.keras.config import TENSOR
from k5.convert.keras.graph import Builder, LayerCall, Val
from k5.convert.keras.tables import LAYERS

__all__ = ["rnn_mask"]


def rnn_mask(b: Builder, call: LayerCall, direction: str) -> tuple[str, str] | None:
    """The ``mask=`` argument of a recurrent layer as (steps float32 [N, T], sequence_lens int32 [N]), or None."""
    roles = call.arg_structure or {}
    extra = sorted(k for k in roles if k not in ("inputs", "sequences", "mask"))
    if extra or len(call.inputs) > 1 + ("mask" in roles):
        raise call.error(f"tensor arguments {extra or 'beyond the input and mask'} (initial states) are not converted")
    if "mask" not in roles:
        return None
    if direction == "reverse":
        raise call.error("a mask into a go_backwards recurrent layer is not converted")
    m = call.inputs[roles["mask"]]
    if m.rank not in (None, 2):
        raise call.error(f"a rank-{m.rank} mask is not converted (only [batch, time])")
    src = b.get(m, "k")
    steps = b.add1("Cast", [src], id=f"{call.name}.mask", attrs={"to": "float32"})
    count = b.add1("ReduceSum", [steps, b.ints([1], "axes_1")], id=f"{call.name}.mask_count", attrs={"keepdims": 0})
    lens = b.add1("Cast", [count], id=f"{call.name}.sequence_lens", attrs={"to": "int32"})  # ONNX: int32
    return steps, lens


@LAYERS.register("ops.NotEqual", produces=("Equal", "Not", "Constant", "Transpose", "Reshape", "Flatten"))
def _not_equal(b: Builder, call: LayerCall) -> list[Val]:
    """``x != number`` (the mask of ``Embedding(mask_zero=True)`` and of ``Masking``), a bool tensor."""
    args = call.args
    if len(args) != 2 or not (isinstance(args[0], dict) and TENSOR in args[0]) or isinstance(args[1], bool) \
            or not isinstance(args[1], (int, float)):
        raise call.error("only `tensor != number` is converted")
    x = call.inputs[args[0][TENSOR]]
    dtype = (call.in_dtypes[0] if call.in_dtypes else None) or "float32"
    value = b.const(np.asarray(args[1], dtype=np.dtype(dtype)), f"{call.name}.value")
    same = b.add1("Equal", [b.get(x, "k"), value], id=f"{call.name}.equal")
    return [Val(b.add1("Not", [same], id=call.name), "k", x.rank)]


@LAYERS.register("ops.Any", produces=("Cast", "ReduceMax", "Constant", "Transpose", "Reshape", "Flatten"))
def _any(b: Builder, call: LayerCall) -> list[Val]:
    """``ops.any(x, axis)`` over a bool tensor: ReduceMax of its 0/1 values, back to bool."""
    x = call.inputs[0]
    if x.rank is None:
        raise call.error("the input's rank is unknown")
    axis = call.config.get("axis")
    axes = list(range(x.rank)) if axis is None else [a % x.rank for a in
                                                      ([axis] if isinstance(axis, int) else axis)]
    keep = bool(call.config.get("keepdims", False))
    f = b.add1("Cast", [b.get(x, "k")], id=f"{call.name}.as_float", attrs={"to": "float32"})
    r = b.add1("ReduceMax", [f, b.ints(axes, f"{call.name}.axes")], id=f"{call.name}.max",
               attrs={"keepdims": int(keep)})
    return [Val(b.add1("Cast", [r], id=call.name, attrs={"to": "bool"}), "k", x.rank if keep else x.rank - len(axes))]


@LAYERS.register("Masking", produces=("Equal", "Not", "Cast", "ReduceMax", "Mul", "Constant", "Transpose",
                                      "Reshape", "Flatten"))
def _masking(b: Builder, call: LayerCall) -> list[Val]:
    """``x * any(x != mask_value, axis=-1, keepdims=True)``: masked steps become zeros (Keras' Masking.call)."""
    x = call.inputs[0]
    if x.rank is None:
        raise call.error("the input's rank is unknown")
    src = b.get(x, "k")
    value = b.const(np.asarray(float(call.config.get("mask_value", 0.0)), np.float32), f"{call.name}.mask_value")
    keep = b.add1("Cast", [b.add1("Not", [b.add1("Equal", [src, value], id=f"{call.name}.equal")],
                                  id=f"{call.name}.not_equal")], id=f"{call.name}.keep", attrs={"to": "float32"})
    gate = b.add1("ReduceMax", [keep, b.ints([x.rank - 1], f"{call.name}.last_axis")], id=f"{call.name}.any",
                  attrs={"keepdims": 1})
    return [Val(b.add1("Mul", [src, gate], id=call.name), "k", x.rank)]
