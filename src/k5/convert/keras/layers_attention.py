"""Keras MultiHeadAttention as k5's MultiHeadAttention (batch first, per-head projections flattened).

Keras projects with kernels ``[E_in, heads, key_dim]`` (query, key) and ``[E_in, heads, value_dim]`` (value), and
back with ``[heads, value_dim, E_out]``; k5 keeps ``[heads*key_dim, E_in]`` and ``[E_out, heads*value_dim]``,
heads in the same order. The score scale is Keras' ``1/sqrt(key_dim)``, k5's default.
"""

from __future__ import annotations

import numpy as np

from k5.convert.keras.graph import Builder, LayerCall, Val
from k5.convert.keras.tables import LAYERS

__all__: list[str] = []


@LAYERS.register("MultiHeadAttention", produces=("MultiHeadAttention", "Transpose", "Reshape", "Flatten",
                                                 "Constant"))
def _mha(b: Builder, call: LayerCall) -> list[Val]:
    cfg = call.config
    heads, key_dim = int(cfg["num_heads"]), int(cfg["key_dim"])
    value_dim = int(cfg.get("value_dim") or key_dim)
    if value_dim != key_dim:
        raise call.error(f"value_dim={value_dim} differs from key_dim={key_dim}; k5's op needs them equal")
    if cfg.get("attention_axes") not in (None, [1], (1,)):
        raise call.error(f"attention_axes={cfg.get('attention_axes')} is not converted")
    if cfg.get("output_shape") not in (None,) and not isinstance(cfg.get("output_shape"), int):
        shape = list(cfg["output_shape"])
        if len(shape) != 1:
            raise call.error(f"output_shape={shape} is not converted")
    kw = call.kwargs
    if kw.get("attention_mask") is not None:
        raise call.error("attention_mask is not converted")
    roles = call.arg_structure or {}
    q = call.inputs[roles.get("query", 0)]
    v = call.inputs[roles.get("value", 1 if len(call.inputs) > 1 else 0)]
    k = call.inputs[roles["key"]] if "key" in roles else v
    use_bias = cfg.get("use_bias", True)
    ws = list(call.weights)
    step = 2 if use_bias else 1
    if len(ws) != 4 * step:
        raise call.error(f"expects {4 * step} weights. Received: {len(ws)}")
    weights: dict[str, np.ndarray] = {}
    for i, role in enumerate(("q", "k", "v")):
        kern = np.asarray(ws[i * step])
        weights[f"{role}_weight"] = np.ascontiguousarray(kern.reshape(kern.shape[0], -1).T)
        if use_bias:
            weights[f"{role}_bias"] = np.asarray(ws[i * step + 1]).reshape(-1)
    out_k = np.asarray(ws[3 * step])
    weights["out_weight"] = np.ascontiguousarray(out_k.reshape(heads * value_dim, -1).T)
    if use_bias:
        weights["out_bias"] = np.asarray(ws[3 * step + 1])
    names = [b.get(x, "k") for x in (q, k, v)]
    attrs = {"num_heads": heads, "causal": int(bool(kw.get("use_causal_mask")))}
    want_scores = bool(kw.get("return_attention_scores"))
    outs = b.add("MultiHeadAttention", names, id=call.name, weights=weights, attrs=attrs,
                 n_out=2 if want_scores else 1)
    result = [Val(outs[0], "k", 3)]
    if want_scores:
        result.append(Val(outs[1], "k", 4))
    return result
