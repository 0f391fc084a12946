"""to_torch builders of the layers that own weights: linear, convolution, normalization, embedding, attention.

Each becomes a real PyTorch module (``nn.Linear``, ``nn.Conv2d``...) holding the node's weights as parameters, or a
functional call when a weight arrives at run time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from k5.convert.torch.import_context import Attrs, Builder, ConstValue, meta_module, unsupported
from k5.convert.torch.import_runtime import (
    AnyRankBatchNorm,
    k5_conv,
    k5_conv_transpose,
    k5_embedding,
    k5_gemm,
    k5_layer_norm,
    k5_mha,
    torch_pads,
)
from k5.convert.torch.registry import register_builder
from k5.format.model import Node

__all__: list[str] = []


@register_builder("Linear", how="nn.Linear")
def linear(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    w = b.owns(node, ins, [("weight", 1, True), ("bias", 2, False)])
    if w is None:
        return b.call(torch.nn.functional.linear, ins[0], ins[1], ins[2] if len(ins) > 2 else None)
    weight, bias = w["weight"], w["bias"]
    state = {"weight": weight} | ({"bias": bias} if bias is not None else {})
    m = meta_module(
        lambda: torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype), state
    )
    return b.module(node.id, m, ins[0])


@register_builder("Gemm", how="nn.Linear (transB=1) / matmul")
def gemm(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    alpha, beta, ta, tb = attrs["alpha"], attrs["beta"], attrs["transA"], attrs["transB"]
    w = b.owns(node, ins, [("B", 1, True), ("C", 2, False)])
    if w is not None and alpha == 1.0 and beta == 1.0 and not ta and (w["C"] is None or w["C"].dim() <= 1):
        weight = w["B"] if tb else w["B"].t().contiguous()
        bias = w["C"]
        if bias is not None and bias.numel() != weight.shape[0]:
            bias = bias.expand(weight.shape[0]).contiguous()
        state = {"weight": weight} | ({"bias": bias} if bias is not None else {})
        m = meta_module(
            lambda: torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype), state
        )
        return b.module(node.id, m, ins[0])
    if w is not None:  # give the adopted constants back; they are used as tensors
        for i in (1, 2):
            if i < len(ins) and isinstance(ins[i], ConstValue):
                ins[i].adopted = False
        bw = ins[1] if len(ins) > 1 and ins[1] is not None else ConstValue(w["B"], node.id + ".B", True)
        cw = (
            ins[2]
            if len(ins) > 2 and ins[2] is not None
            else (ConstValue(w["C"], node.id + ".C", True) if w["C"] is not None else None)
        )
        return b.call(k5_gemm, ins[0], bw, cw, alpha, beta, ta, tb)
    return b.call(k5_gemm, ins[0], ins[1], ins[2] if len(ins) > 2 else None, alpha, beta, ta, tb)


@register_builder("Einsum", how="torch.einsum")
def einsum(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    return b.call(torch.einsum, attrs["equation"], *ins)


def _conv_attrs(node: Node, attrs: Attrs, nd: int) -> tuple[list[int], list[int], list[int], int]:
    if attrs["auto_pad"] not in ("NOTSET", "VALID"):
        raise unsupported(node, f"auto_pad={attrs['auto_pad']!r} (use explicit pads)")
    strides: list[int] = attrs["strides"] or [1] * nd  # absent: 1 per spatial axis of the weight's rank
    pads: list[int] = attrs["pads"] or [0] * (2 * nd)
    dil: list[int] = attrs["dilations"] or [1] * nd
    return strides, pads, dil, attrs["group"]


@register_builder("Conv", how="nn.Conv1d/2d/3d")
def conv(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    w = b.owns(node, ins, [("weight", 1, True), ("bias", 2, False)])
    if w is None:
        wt = ins[1]
        nd = len(attrs["kernel_shape"] or []) or (wt.value.dim() - 2 if isinstance(wt, ConstValue) else 2)
        strides, pads, dil, group = _conv_attrs(node, attrs, nd)
        return b.call(k5_conv, ins[0], ins[1], ins[2] if len(ins) > 2 else None, strides, pads, dil, group)
    weight, bias = w["weight"], w["bias"]
    nd = weight.dim() - 2
    strides, pads, dil, group = _conv_attrs(node, attrs, nd)
    x = ins[0]
    if pads[:nd] != pads[nd:]:
        x = b.call(torch.nn.functional.pad, x, torch_pads(pads, nd))
        pads = [0] * (2 * nd)
    # picked by the weight's rank, so called with per-axis tuples of that rank (the stubs type each class alone)
    cls: Callable[..., torch.nn.Module] = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)[nd - 1]
    state = {"weight": weight} | ({"bias": bias} if bias is not None else {})
    m = meta_module(
        lambda: cls(
            weight.shape[1] * group, weight.shape[0], tuple(weight.shape[2:]), tuple(strides), tuple(pads[:nd]),
            tuple(dil), group, bias is not None, dtype=weight.dtype,
        ),
        state,
    )  # fmt: skip
    return b.module(node.id, m, x)


@register_builder("ConvTranspose", how="nn.ConvTranspose1d/2d/3d")
def conv_transpose(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    if attrs["output_shape"]:
        raise unsupported(node, "ConvTranspose with output_shape")
    w = b.owns(node, ins, [("weight", 1, True), ("bias", 2, False)])
    wt = w["weight"] if w is not None else (ins[1].value if isinstance(ins[1], ConstValue) else None)
    nd = len(attrs["kernel_shape"] or []) or (wt.dim() - 2 if wt is not None else 2)
    strides, pads, dil, group = _conv_attrs(node, attrs, nd)
    out_pad: list[int] = attrs["output_padding"] or [0] * nd
    if pads[:nd] != pads[nd:]:
        raise unsupported(node, f"ConvTranspose with asymmetric pads {pads}")
    if w is None:
        return b.call(
            k5_conv_transpose, ins[0], ins[1], ins[2] if len(ins) > 2 else None, strides, pads, out_pad, dil, group
        )
    weight, bias = w["weight"], w["bias"]
    cls: Callable[..., torch.nn.Module] = (
        torch.nn.ConvTranspose1d,
        torch.nn.ConvTranspose2d,
        torch.nn.ConvTranspose3d,
    )[nd - 1]
    state = {"weight": weight} | ({"bias": bias} if bias is not None else {})
    m = meta_module(
        lambda: cls(
            weight.shape[0], weight.shape[1] * group, tuple(weight.shape[2:]), tuple(strides), tuple(pads[:nd]),
            tuple(out_pad), group, bias is not None, tuple(dil), dtype=weight.dtype,
        ),
        state,
    )  # fmt: skip
    return b.module(node.id, m, ins[0])


@register_builder("BatchNormalization", how="nn.BatchNorm (eval statistics)")
def batch_norm(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    eps = attrs["epsilon"]
    if attrs["training_mode"]:
        raise unsupported(node, "BatchNormalization with training_mode=1")
    specs = [("scale", 1, True), ("bias", 2, True), ("mean", 3, True), ("var", 4, True)]
    w = b.owns(node, ins, specs)
    if w is None:
        return b.call(torch.nn.functional.batch_norm, ins[0], ins[3], ins[4], ins[1], ins[2], False, 0.0, eps)
    c = w["scale"].numel()
    state = {
        "weight": w["scale"], "bias": w["bias"], "running_mean": w["mean"], "running_var": w["var"],
        "num_batches_tracked": torch.tensor(0),
    }  # fmt: skip
    m = meta_module(lambda: AnyRankBatchNorm.get()(c, eps=eps, dtype=w["scale"].dtype), state)
    return b.module(node.id, m, ins[0])


@register_builder("LayerNormalization", how="nn.LayerNorm")
def layer_norm(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    axis, eps = attrs["axis"], attrs["epsilon"]
    w = b.owns(node, ins, [("scale", 1, True), ("bias", 2, False)])
    if w is not None and axis < 0 and w["scale"].dim() == -axis:
        scale, bias = w["scale"], w["bias"]
        state = {"weight": scale} | ({"bias": bias} if bias is not None else {})
        m = meta_module(
            lambda: torch.nn.LayerNorm(tuple(scale.shape), eps=eps, bias=bias is not None, dtype=scale.dtype), state
        )
        return b.module(node.id, m, ins[0])
    if w is not None:
        scale = ConstValue(w["scale"], node.id + ".scale", True)
        bias = ConstValue(w["bias"], node.id + ".bias", True) if w["bias"] is not None else None
        return b.call(k5_layer_norm, ins[0], scale, bias, axis, eps)
    return b.call(k5_layer_norm, ins[0], ins[1], ins[2] if len(ins) > 2 else None, axis, eps)


@register_builder("RMSNormalization", how="nn.RMSNorm")
def rms_norm(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    axis, eps = attrs["axis"], attrs["epsilon"]
    w = b.owns(node, ins, [("scale", 1, True)])
    if w is None or axis >= 0 or w["scale"].dim() != -axis:
        raise unsupported(node, "RMSNormalization with a run-time or broadcast scale")
    scale = w["scale"]
    m = meta_module(lambda: torch.nn.RMSNorm(tuple(scale.shape), eps=eps, dtype=scale.dtype), {"weight": scale})
    return b.module(node.id, m, ins[0])


@register_builder("GroupNormalization", "InstanceNormalization", how="nn.GroupNorm")
def group_norm(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    eps = attrs["epsilon"]
    w = b.owns(node, ins, [("scale", 1, True), ("bias", 2, True)])
    if w is None:
        raise unsupported(node, f"{node.op} with run-time scale/bias")
    c = w["scale"].numel()
    groups = c if node.op == "InstanceNormalization" else attrs["num_groups"]
    if node.op == "GroupNormalization" and c != w["bias"].numel():
        raise unsupported(node, "GroupNormalization with per-group scale (ONNX opset < 21 form)")
    state = {"weight": w["scale"], "bias": w["bias"]}
    m = meta_module(lambda: torch.nn.GroupNorm(groups, c, eps=eps, dtype=w["scale"].dtype), state)
    return b.module(node.id, m, ins[0])


@register_builder("Embedding", how="nn.Embedding")
def embedding(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    w = b.owns(node, ins, [("weight", 1, True)])
    if w is None:
        return b.call(k5_embedding, ins[0], ins[1])
    weight = w["weight"]
    m = meta_module(
        lambda: torch.nn.Embedding(weight.shape[0], weight.shape[1], dtype=weight.dtype), {"weight": weight}
    )
    return b.module(node.id, m, ins[0])


@register_builder("MultiHeadAttention", how="nn.MultiheadAttention")
def multi_head_attention(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    names = ["q_weight", "k_weight", "v_weight", "q_bias", "k_bias", "v_bias", "out_weight", "out_bias"]
    specs = [(n, 5 + i, i in (0, 1, 2, 6)) for i, n in enumerate(names)]
    w = b.owns(node, ins, specs)
    if w is None:
        raise unsupported(node, "MultiHeadAttention with run-time weights")
    heads, causal = attrs["num_heads"], attrs["causal"]
    e, kdim, vdim = w["q_weight"].shape[0], w["k_weight"].shape[1], w["v_weight"].shape[1]
    scale = attrs["scale"]
    if scale is not None and not math.isclose(scale, 1.0 / math.sqrt(e // heads), rel_tol=1e-6):
        raise unsupported(node, f"MultiHeadAttention with scale={scale}")
    has_bias = any(w[n] is not None for n in ("q_bias", "k_bias", "v_bias", "out_bias"))
    dt = w["q_weight"].dtype

    def bias(n: str, size: int) -> Any:
        return w[n] if w[n] is not None else torch.zeros(size, dtype=dt)

    state: dict[str, Any] = {"out_proj.weight": w["out_weight"]}
    if kdim == e and vdim == e:
        state["in_proj_weight"] = torch.cat([w["q_weight"], w["k_weight"], w["v_weight"]])
    else:
        state.update(q_proj_weight=w["q_weight"], k_proj_weight=w["k_weight"], v_proj_weight=w["v_weight"])
    if has_bias:
        state["in_proj_bias"] = torch.cat([bias("q_bias", e), bias("k_bias", e), bias("v_bias", e)])
        state["out_proj.bias"] = bias("out_bias", e)
    m = meta_module(
        lambda: torch.nn.MultiheadAttention(e, heads, bias=has_bias, kdim=kdim, vdim=vdim, batch_first=True, dtype=dt),
        state,
    )
    where = b.place(node.id, m, "module")
    mha = b.graph.get_attr(where)
    q, k, v = ins[0], ins[1], ins[2]
    mask = ins[3] if len(ins) > 3 else None
    kpm = ins[4] if len(ins) > 4 else None
    return b.call(k5_mha, mha, q, k, v, mask, kpm, heads, causal)
