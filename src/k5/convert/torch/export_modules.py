"""Module converters: one call of a PyTorch layer -> one k5 layer node (plus glue), named by its module path.

Each converter is ``fn(cx, fqn, module, params, used) -> outputs``: ``params`` are the call's arguments bound to
the module's ``forward`` signature (values as :meth:`Exporter.value` returns them), ``used`` says which of the
call's flattened outputs the rest of the graph reads, and the result lists one value per flattened output.
"""

from __future__ import annotations

from typing import Any

from k5.convert.torch.export_context import Exporter
from k5.convert.torch.registry import MODULE_EXPORTERS
from k5.errors import ConversionError

__all__: list[str] = []

_NN = "torch.nn.modules"


def _unsupported(what: str) -> ConversionError:
    return ConversionError(f"{what} is not supported by the k5 exporter")


def _weight_and_bias(mod: Any) -> dict[str, Any]:
    """A layer's ``weight`` and, when it has one, its ``bias`` (the k5 parameter names are PyTorch's)."""
    return {"weight": mod.weight} if mod.bias is None else {"weight": mod.weight, "bias": mod.bias}


@MODULE_EXPORTERS.register(f"{_NN}.linear.Linear", f"{_NN}.linear.NonDynamicallyQuantizableLinear", produces=["Linear"])
def linear(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    w = _weight_and_bias(mod)
    return [cx.add1("Linear", [cx.t(p["input"])], weights=w, id=fqn)]


def _conv_pads(mod: Any, x_rank: int) -> tuple[list[int], list[int]]:
    """(begin pads, end pads) per spatial axis, as torch computes them."""
    nd = len(mod.kernel_size)
    if isinstance(mod.padding, str):
        if mod.padding == "valid":
            return [0] * nd, [0] * nd
        begin, end = [], []
        for k, d in zip(mod.kernel_size, mod.dilation, strict=True):
            total = d * (k - 1)
            begin.append(total // 2)
            end.append(total - total // 2)
        return begin, end
    return list(mod.padding), list(mod.padding)


_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@MODULE_EXPORTERS.register(f"{_NN}.conv.Conv1d", f"{_NN}.conv.Conv2d", f"{_NN}.conv.Conv3d", produces=["Conv", "Pad"])
def conv(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    x = cx.t(p["input"])
    rank = cx.rank(p["input"])
    nd = len(mod.kernel_size)
    if rank != nd + 2:
        raise _unsupported(f"a Conv{nd}d input of rank {rank} (unbatched)")
    begin, end = _conv_pads(mod, rank)
    if mod.padding_mode != "zeros":
        pads = [0, 0, *begin, 0, 0, *end]
        x = cx.add1("Pad", [x, cx.ints(pads)], attrs={"mode": _PAD_MODES[mod.padding_mode]}, id=f"{fqn}.pad")
        begin, end = [0] * nd, [0] * nd
    w = _weight_and_bias(mod)
    attrs = {
        "kernel_shape": list(mod.kernel_size),
        "strides": list(mod.stride),
        "pads": [*begin, *end],
        "dilations": list(mod.dilation),
        "group": int(mod.groups),
    }
    return [cx.add1("Conv", [x], attrs=attrs, weights=w, id=fqn)]


@MODULE_EXPORTERS.register(
    f"{_NN}.conv.ConvTranspose1d", f"{_NN}.conv.ConvTranspose2d", f"{_NN}.conv.ConvTranspose3d",
    produces=["ConvTranspose"],
)  # fmt: skip
def conv_transpose(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    if p.get("output_size") is not None:
        raise _unsupported("ConvTranspose called with output_size")
    nd = len(mod.kernel_size)
    if cx.rank(p["input"]) != nd + 2:
        raise _unsupported(f"a ConvTranspose{nd}d input of rank {cx.rank(p['input'])} (unbatched)")
    w = _weight_and_bias(mod)
    attrs = {
        "kernel_shape": list(mod.kernel_size),
        "strides": list(mod.stride),
        "pads": list(mod.padding) * 2,
        "dilations": list(mod.dilation),
        "group": int(mod.groups),
        "output_padding": list(mod.output_padding),
    }
    return [cx.add1("ConvTranspose", [cx.t(p["input"])], attrs=attrs, weights=w, id=fqn)]


def _ones(n: int, like: Any) -> Any:
    import torch

    return torch.ones(n, dtype=like.dtype if like is not None else torch.float32)


def _zeros(n: int, like: Any) -> Any:
    import torch

    return torch.zeros(n, dtype=like.dtype if like is not None else torch.float32)


@MODULE_EXPORTERS.register(
    f"{_NN}.batchnorm.BatchNorm1d", f"{_NN}.batchnorm.BatchNorm2d", f"{_NN}.batchnorm.BatchNorm3d",
    "k5.convert.torch.import_runtime.BatchNorm",  # the rank-agnostic BatchNorm that to_torch builds
    produces=["BatchNormalization"],
)  # fmt: skip
def batch_norm(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    if mod.running_mean is None:
        raise _unsupported("BatchNorm without running statistics (track_running_stats=False)")
    c = mod.num_features
    w = {
        "scale": mod.weight if mod.weight is not None else _ones(c, mod.running_mean),
        "bias": mod.bias if mod.bias is not None else _zeros(c, mod.running_mean),
        "mean": mod.running_mean,
        "var": mod.running_var,
    }
    return [cx.add1("BatchNormalization", [cx.t(p["input"])], attrs={"epsilon": float(mod.eps)}, weights=w, id=fqn)]


@MODULE_EXPORTERS.register(f"{_NN}.normalization.LayerNorm", produces=["LayerNormalization"])
def layer_norm(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    import torch

    shape = tuple(mod.normalized_shape)
    w: dict[str, Any] = {"scale": mod.weight if mod.weight is not None else torch.ones(shape)}
    if mod.bias is not None:
        w["bias"] = mod.bias
    attrs = {"axis": -len(shape), "epsilon": float(mod.eps)}
    return [cx.add1("LayerNormalization", [cx.t(p["input"])], attrs=attrs, weights=w, id=fqn)]


@MODULE_EXPORTERS.register(f"{_NN}.normalization.RMSNorm", produces=["RMSNormalization"])
def rms_norm(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    import torch

    shape = tuple(mod.normalized_shape)
    fake = cx.fake(p["input"])
    eps = mod.eps if mod.eps is not None else torch.finfo(fake.dtype).eps
    w = {"scale": mod.weight if mod.weight is not None else torch.ones(shape, dtype=fake.dtype)}
    attrs = {"axis": -len(shape), "epsilon": float(eps)}
    return [cx.add1("RMSNormalization", [cx.t(p["input"])], attrs=attrs, weights=w, id=fqn)]


@MODULE_EXPORTERS.register(f"{_NN}.normalization.GroupNorm", produces=["GroupNormalization"])
def group_norm(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    c = mod.num_channels
    w = {
        "scale": mod.weight if mod.weight is not None else _ones(c, None),
        "bias": mod.bias if mod.bias is not None else _zeros(c, None),
    }
    attrs = {"num_groups": int(mod.num_groups), "epsilon": float(mod.eps)}
    return [cx.add1("GroupNormalization", [cx.t(p["input"])], attrs=attrs, weights=w, id=fqn)]


@MODULE_EXPORTERS.register(
    f"{_NN}.instancenorm.InstanceNorm1d", f"{_NN}.instancenorm.InstanceNorm2d", f"{_NN}.instancenorm.InstanceNorm3d",
    produces=["InstanceNormalization"],
)  # fmt: skip
def instance_norm(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    if mod.track_running_stats:
        raise _unsupported("InstanceNorm with track_running_stats=True")
    c = mod.num_features
    w = {
        "scale": mod.weight if mod.weight is not None else _ones(c, None),
        "bias": mod.bias if mod.bias is not None else _zeros(c, None),
    }
    return [cx.add1("InstanceNormalization", [cx.t(p["input"])], attrs={"epsilon": float(mod.eps)}, weights=w, id=fqn)]


@MODULE_EXPORTERS.register(f"{_NN}.sparse.Embedding", produces=["Embedding"])
def embedding(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    if mod.max_norm is not None:
        raise _unsupported("Embedding with max_norm (it renormalises the weights while running)")
    return [cx.add1("Embedding", [cx.t(p["input"])], weights={"weight": mod.weight}, id=fqn)]


@MODULE_EXPORTERS.register(f"{_NN}.activation.PReLU", produces=["PRelu"])
def prelu(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    rank = cx.rank(p["input"])
    slope = mod.weight.detach()
    if slope.numel() > 1 and rank > 2:
        slope = slope.reshape(slope.numel(), *([1] * (rank - 2)))
    return [cx.add1("PRelu", [cx.t(p["input"])], weights={"slope": slope}, id=fqn)]


# --- attention ---------------------------------------------------------------------------------------------------
@MODULE_EXPORTERS.register(f"{_NN}.activation.MultiheadAttention", produces=["MultiHeadAttention", "Transpose"])
def multihead_attention(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    if mod.bias_k is not None or mod.add_zero_attn:
        raise _unsupported("MultiheadAttention with add_bias_kv or add_zero_attn")
    if len(used) > 1 and used[1]:
        raise _unsupported("reading MultiheadAttention's attention weights (call it with need_weights=False)")
    e = mod.embed_dim
    if cx.rank(p["query"]) != 3:
        raise _unsupported("unbatched MultiheadAttention input")
    seen: dict[str, str] = {}

    def bf(v: Any, what: str) -> str:
        name = cx.t(v)
        if mod.batch_first:
            return name
        if name not in seen:
            seen[name] = cx.add1("Transpose", [name], attrs={"perm": [1, 0, 2]}, id=f"{fqn}.{what}_bf")
        return seen[name]

    q, k, v = bf(p["query"], "query"), bf(p["key"], "key"), bf(p["value"], "value")
    weights: dict[str, Any] = {}
    if mod._qkv_same_embed_dim:
        wq, wk, wv = mod.in_proj_weight.detach().split(e, dim=0)
    else:
        wq, wk, wv = mod.q_proj_weight.detach(), mod.k_proj_weight.detach(), mod.v_proj_weight.detach()
    weights.update(q_weight=wq, k_weight=wk, v_weight=wv)
    if mod.in_proj_bias is not None:
        bq, bk, bv = mod.in_proj_bias.detach().split(e)
        weights.update(q_bias=bq, k_bias=bk, v_bias=bv)
    weights["out_weight"] = mod.out_proj.weight
    if mod.out_proj.bias is not None:
        weights["out_bias"] = mod.out_proj.bias

    mask = p.get("attn_mask")
    kpm = p.get("key_padding_mask")
    causal = bool(p.get("is_causal"))
    if causal and mask is None:
        raise ConversionError("is_causal=True needs attn_mask (as torch requires)")
    if causal and kpm is None and not p.get("need_weights", True):
        mask = None
    else:
        causal = False
    mask_name = ""
    if mask is not None:
        mask_name = cx.t(mask)
        fake = cx.fake(mask)
        if fake is not None and fake.dim() == 3:
            dims = [-1, mod.num_heads, *fake.shape[1:]]
            mask_name = cx.add1("Reshape", [mask_name, cx.shape_tensor(dims)], id=f"{fqn}.mask")
    kpm_name = ""
    if kpm is not None:
        fake = cx.fake(kpm)
        if fake is not None and fake.dtype.is_floating_point:
            raise _unsupported("a float key_padding_mask (use a bool mask, True = padding)")
        kpm_name = cx.t(kpm)
    attrs = {"num_heads": int(mod.num_heads), "causal": int(causal)}
    y = cx.add1("MultiHeadAttention", [q, k, v, mask_name, kpm_name], attrs=attrs, weights=weights, id=fqn)
    if not mod.batch_first:
        y = cx.add1("Transpose", [y], attrs={"perm": [1, 0, 2]}, id=f"{fqn}.out")
    return [y, None]


# --- recurrent layers --------------------------------------------------------------------------------------------
# PyTorch gate order -> ONNX gate order, as indices into PyTorch's chunks
_GATES = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}  # LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h


def _reorder(w: Any, kind: str, hidden: int) -> Any:
    import torch

    order = _GATES[kind]
    chunks = w.detach().split(hidden, dim=0)
    return torch.cat([chunks[i] for i in order], dim=0)


def rnn_weights(mod: Any, kind: str, layer: int) -> dict[str, Any]:
    """ONNX-layout W [D, G*H, in], R [D, G*H, H] and B [D, 2*G*H] of one layer of a PyTorch RNN module."""
    import torch

    h = mod.hidden_size
    dirs = ["", "_reverse"] if mod.bidirectional else [""]
    ws, rs, bs = [], [], []
    for sfx in dirs:
        ws.append(_reorder(getattr(mod, f"weight_ih_l{layer}{sfx}"), kind, h))
        rs.append(_reorder(getattr(mod, f"weight_hh_l{layer}{sfx}"), kind, h))
        if mod.bias:
            bi = _reorder(getattr(mod, f"bias_ih_l{layer}{sfx}"), kind, h)
            bh = _reorder(getattr(mod, f"bias_hh_l{layer}{sfx}"), kind, h)
            bs.append(torch.cat([bi, bh]))
    out = {"W": torch.stack(ws), "R": torch.stack(rs)}
    if bs:
        out["B"] = torch.stack(bs)
    return out


def _rnn(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool], kind: str) -> list[Any]:
    """One k5 node per layer, in ONNX layout 0 (sequence first; what every ONNX runtime supports).

    A batch-first module gets a Transpose before the first layer and after the last one. Between layers, Y
    ``[T, D, B, H]`` becomes ``[T, B, D*H]`` (Squeeze when D=1, else Transpose + Reshape). States keep PyTorch's
    ``[L*D, B, H]`` form: layer i reads the Slice ``[i*D, (i+1)*D)``, and h_n/c_n concatenate the layers' Y_h/Y_c.
    """
    if kind == "LSTM" and mod.proj_size:
        raise _unsupported("LSTM with proj_size")
    if cx.rank(p["input"]) != 3:
        raise _unsupported(f"unbatched {kind} input (rank {cx.rank(p['input'])})")
    n_dir = 2 if mod.bidirectional else 1
    hx = p.get("hx")
    h0 = c0 = None
    if hx is not None:
        if kind == "LSTM":
            h0, c0 = hx
        else:
            h0 = hx
    attrs: dict[str, Any] = {
        "hidden_size": int(mod.hidden_size),
        "direction": "bidirectional" if n_dir == 2 else "forward",
    }
    if kind == "GRU":
        attrs["linear_before_reset"] = 1
    if kind == "RNN":
        act = "Relu" if mod.nonlinearity == "relu" else "Tanh"
        attrs["activations"] = [act] * n_dir

    def state_in(s: Any, layer: int, what: str) -> str:
        if s is None:
            return ""
        src = cx.t(s)
        if mod.num_layers == 1:
            return src
        starts, ends = cx.ints([layer * n_dir]), cx.ints([(layer + 1) * n_dir])
        return cx.add1("Slice", [src, starts, ends, cx.ints([0])], id=f"{fqn}.l{layer}.{what}")

    cur = cx.t(p["input"])
    if mod.batch_first:
        cur = cx.add1("Transpose", [cur], attrs={"perm": [1, 0, 2]}, id=f"{fqn}.seq_first")
    hs: list[str] = []
    cs: list[str] = []
    n_out = ["Y", "Y_h", "Y_c"] if kind == "LSTM" else ["Y", "Y_h"]
    for layer in range(mod.num_layers):
        ins = [cur, "", "", "", "", state_in(h0, layer, "h0")]
        if kind == "LSTM":
            ins.append(state_in(c0, layer, "c0"))
        lid = fqn if mod.num_layers == 1 else f"{fqn}.l{layer}"
        outs = cx.add(kind, ins, attrs=attrs, weights=rnn_weights(mod, kind, layer), id=lid, outputs=n_out)
        y = outs[0]
        if n_dir == 1:
            cur = cx.add1("Squeeze", [y, cx.ints([1])], id=f"{lid}.y")
        else:
            y = cx.add1("Transpose", [y], attrs={"perm": [0, 2, 1, 3]}, id=f"{lid}.y_t")
            cur = cx.add1("Reshape", [y, cx.ints([0, 0, -1])], id=f"{lid}.y")
        hs.append(outs[1])
        if kind == "LSTM":
            cs.append(outs[2])
    if mod.batch_first:
        cur = cx.add1("Transpose", [cur], attrs={"perm": [1, 0, 2]}, id=f"{fqn}.batch_first")

    def stack(states: list[str], what: str) -> str:
        if len(states) == 1:
            return states[0]
        return cx.add1("Concat", states, attrs={"axis": 0}, id=f"{fqn}.{what}")

    results: list[Any] = [cur]
    results.append(stack(hs, "h_n") if len(used) > 1 and used[1] else None)
    if kind == "LSTM":
        results.append(stack(cs, "c_n") if len(used) > 2 and used[2] else None)
    return results


@MODULE_EXPORTERS.register(f"{_NN}.rnn.LSTM", produces=["LSTM", "Reshape", "Transpose", "Concat", "Slice"])
def lstm(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    return _rnn(cx, fqn, mod, p, used, "LSTM")


@MODULE_EXPORTERS.register(f"{_NN}.rnn.GRU", produces=["GRU", "Reshape", "Transpose", "Concat", "Slice"])
def gru(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    return _rnn(cx, fqn, mod, p, used, "GRU")


@MODULE_EXPORTERS.register(f"{_NN}.rnn.RNN", produces=["RNN", "Reshape", "Transpose", "Concat", "Slice"])
def rnn(cx: Exporter, fqn: str, mod: Any, p: dict[str, Any], used: list[bool]) -> list[Any]:
    return _rnn(cx, fqn, mod, p, used, "RNN")
