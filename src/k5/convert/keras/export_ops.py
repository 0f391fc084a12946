"""The per-op builders of :func:`k5.convert.keras.to_keras`: k5 op -> Keras layers (``EXPORTERS`` table).

Each builder gets the context, the node and its attributes resolved by the op registry, and returns the node's
output values (KerasTensors). Weights go into the layer with ``set_weights`` after the layer is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from k5.convert.keras.exporter import Ctx, channels_last
from k5.convert.keras.tables import EXPORTERS
from k5.errors import ConversionError
from k5.format.model import Node, as_array

__all__: list[str] = []


def _w(node: Node, name: str) -> np.ndarray | None:
    v = node.weights.get(name)
    return None if v is None else np.asarray(as_array(v))


def _check(cx: Ctx, node: Node, i: int = 0) -> str:
    v = cx.values.get(node.inputs[i]) if i < len(node.inputs) and node.inputs[i] else None
    if v is None or isinstance(v, np.ndarray):
        raise ConversionError(f"input {i} must be a computed tensor", where=node.label)
    return node.inputs[i]


def _x(cx: Ctx, node: Node, i: int = 0) -> Any:
    """Input ``i`` as the k5 value (channels-first where k5 is)."""
    return cx.view(_check(cx, node, i), None, node.id)


def _cl(cx: Ctx, node: Node) -> tuple[Any, list[int]]:
    """Input 0 channels-last, and the perm its channels-last result is stored with."""
    t = cx.cl(_check(cx, node), node.id)
    return t, channels_last(len(t.shape))


def _same(cx: Ctx, node: Node) -> tuple[Any, list[int] | None]:
    """Input 0 in whatever layout it is held (for elementwise layers)."""
    name = _check(cx, node)
    return cx.values[name], cx.perms.get(name)


def _apply(cx: Ctx, node: Node, layer: Any, *xs: Any, weights: list[np.ndarray] | None = None) -> Any:
    y = layer(*xs)
    if weights is not None:
        layer.set_weights(weights)
    return y


def _fmt(n: int) -> str:
    if n not in (1, 2, 3):
        raise ConversionError(f"{n} spatial dims: Keras has 1-D, 2-D and 3-D layers only")
    return f"{n}D"


def _pad_cl(cx: Ctx, node: Node, x: Any, pads: list[int], value: float = 0.0) -> Any:
    """Pad the spatial axes of a channels-last tensor by k5 ``pads`` [begins..., ends...]."""
    if not any(pads):
        return x
    n = len(pads) // 2
    full = [0, *pads[:n], 0, 0, *pads[n:], 0]
    return cx.custom.K5Pad(full, value, name=cx.layer_name(f"{node.id}.pad"))(x)


def _spatial_pads(attrs: dict[str, Any], n: int, node: Node) -> list[int]:
    if attrs["auto_pad"] not in ("NOTSET", "VALID"):
        raise ConversionError(f"auto_pad={attrs['auto_pad']!r} is not converted to Keras", where=node.label)
    return list(attrs.get("pads") or [0] * (2 * n))


@EXPORTERS.register("Linear")
def _linear(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    w, b = _w(node, "weight"), _w(node, "bias")
    assert w is not None
    layer = cx.keras.layers.Dense(w.shape[0], use_bias=b is not None, name=cx.layer_name(node.id))
    return [_apply(cx, node, layer, _x(cx, node), weights=[w.T] + ([b] if b is not None else []))]


@EXPORTERS.register("Conv")
def _conv(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    L = cx.keras.layers
    w, b = _w(node, "weight"), _w(node, "bias")
    assert w is not None
    n = w.ndim - 2
    group = int(attrs["group"])
    x, perm = _cl(cx, node)
    x = _pad_cl(cx, node, x, _spatial_pads(attrs, n, node))
    extra = [b] if b is not None else []
    common = dict(strides=attrs.get("strides") or [1] * n, dilation_rate=attrs.get("dilations") or [1] * n,
                  padding="valid", use_bias=b is not None, name=cx.layer_name(node.id))
    in_ch = w.shape[1] * group
    if group > 1 and group == in_ch and n in (1, 2):  # depthwise: k5 [C*M, 1, *k] -> Keras [*k, C, M]
        mult = w.shape[0] // in_ch
        kernel = w.reshape(in_ch, mult, *w.shape[2:]).transpose(*range(2, n + 2), 0, 1)
        layer = getattr(L, f"DepthwiseConv{_fmt(n)}")(list(w.shape[2:]), depth_multiplier=mult, **common)
        return [(_apply(cx, node, layer, x, weights=[kernel, *extra]), perm)]
    kernel = w.transpose(*range(2, n + 2), 1, 0)  # [*k, in/g, out]
    layer = getattr(L, f"Conv{_fmt(n)}")(w.shape[0], list(w.shape[2:]), groups=group, **common)
    return [(_apply(cx, node, layer, x, weights=[kernel, *extra]), perm)]


@EXPORTERS.register("ConvTranspose")
def _conv_transpose(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    w, b = _w(node, "weight"), _w(node, "bias")
    assert w is not None
    n = w.ndim - 2
    if int(attrs["group"]) != 1 or attrs.get("output_shape"):
        raise ConversionError("group > 1 or output_shape is not converted to Keras", where=node.label)
    pads = _spatial_pads(attrs, n, node)
    out_pad = attrs.get("output_padding") or [0] * n
    layer = getattr(cx.keras.layers, f"Conv{_fmt(n)}Transpose")(
        w.shape[1], list(w.shape[2:]), strides=attrs.get("strides") or [1] * n, padding="valid",
        dilation_rate=attrs.get("dilations") or [1] * n, use_bias=b is not None,
        output_padding=out_pad if any(out_pad) else None, name=cx.layer_name(node.id))
    kernel = w.transpose(*range(2, n + 2), 1, 0)  # k5 [in, out, *k] -> Keras [*k, out, in]
    x, perm = _cl(cx, node)
    y = _apply(cx, node, layer, x, weights=[kernel] + ([b] if b is not None else []))
    if any(pads):
        big = 1 << 62
        y = cx.custom.K5Slice(pads[:n], [-e if e else big for e in pads[n:]], list(range(1, n + 1)), [1] * n,
                              name=cx.layer_name(f"{node.id}.crop"))(y)
    return [(y, perm)]


@EXPORTERS.register("MaxPool", "AveragePool")
def _pool(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    ks = list(attrs["kernel_shape"])
    n = len(ks)
    if attrs.get("ceil_mode") or any(d != 1 for d in (attrs.get("dilations") or [1] * n)):
        raise ConversionError("ceil_mode or dilations are not converted to Keras", where=node.label)
    pads = _spatial_pads(attrs, n, node)
    x, perm = _cl(cx, node)
    is_max = node.op == "MaxPool"
    if any(pads):
        if not is_max and not attrs.get("count_include_pad"):
            raise ConversionError("padded AveragePool without count_include_pad is not converted to Keras",
                                  where=node.label)
        x = _pad_cl(cx, node, x, pads, -np.inf if is_max else 0.0)
    cls = getattr(cx.keras.layers, f"{'Max' if is_max else 'Average'}Pooling{_fmt(n)}")
    layer = cls(ks, strides=attrs.get("strides") or [1] * n, padding="valid", name=cx.layer_name(node.id))
    return [(layer(x), perm)]


@EXPORTERS.register("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    x, perm = _cl(cx, node)
    n = len(x.shape) - 2
    kind = "Average" if node.op == "GlobalAveragePool" else "Max"
    layer = getattr(cx.keras.layers, f"Global{kind}Pooling{_fmt(n)}")(keepdims=True, name=cx.layer_name(node.id))
    return [(layer(x), perm)]


@EXPORTERS.register("BatchNormalization")
def _batchnorm(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    if attrs.get("training_mode"):
        raise ConversionError("training_mode=1 is not converted", where=node.label)
    ws = [_w(node, k) for k in ("scale", "bias", "mean", "var")]
    x, perm = _cl(cx, node)
    layer = cx.keras.layers.BatchNormalization(axis=-1, epsilon=float(attrs["epsilon"]),
                                               name=cx.layer_name(node.id))
    return [(_apply(cx, node, layer, x, weights=ws), perm)]  # type: ignore[arg-type]


@EXPORTERS.register("LayerNormalization")
def _layernorm(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    x = _x(cx, node)
    rank = len(x.shape)
    axis = int(attrs["axis"]) % rank
    scale, bias = _w(node, "scale"), _w(node, "bias")
    norm_shape = tuple(x.shape[axis:])
    layer = cx.keras.layers.LayerNormalization(axis=list(range(axis, rank)) if rank - axis > 1 else -1,
                                               epsilon=float(attrs["epsilon"]), center=bias is not None,
                                               scale=scale is not None, name=cx.layer_name(node.id))
    ws = [] if scale is None else [np.broadcast_to(scale, norm_shape).copy()]
    if bias is not None:
        ws.append(np.broadcast_to(bias, norm_shape).copy())
    return [_apply(cx, node, layer, x, weights=ws)]


@EXPORTERS.register("GroupNormalization")
def _groupnorm(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    x, perm = _cl(cx, node)
    layer = cx.keras.layers.GroupNormalization(groups=int(attrs["num_groups"]), axis=-1,
                                               epsilon=float(attrs["epsilon"]), name=cx.layer_name(node.id))
    return [(_apply(cx, node, layer, x, weights=[_w(node, "scale"), _w(node, "bias")]), perm)]  # type: ignore


@EXPORTERS.register("PRelu")
def _prelu(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    x = _x(cx, node)
    slope = _w(node, "slope")
    if slope is None or None in x.shape[1:]:
        raise ConversionError("needs a stored slope and a static input shape", where=node.label)
    alpha = np.broadcast_to(slope, x.shape[1:]).astype(np.float32)
    layer = cx.keras.layers.PReLU(name=cx.layer_name(node.id))
    return [_apply(cx, node, layer, x, weights=[alpha])]


@EXPORTERS.register("Embedding")
def _embedding(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    table = _w(node, "weight")
    assert table is not None
    if node.inputs and cx.is_const(node.inputs[0]):  # constant indices (positions): the rows are a constant
        idx = cx.const(node.inputs[0], node).astype(np.int64)
        if idx.size and (idx.min() < -table.shape[0] or idx.max() >= table.shape[0]):
            raise ConversionError(f"index out of range for a table of {table.shape[0]} rows", where=node.label)
        return [np.ascontiguousarray(table[idx])]
    layer = cx.keras.layers.Embedding(table.shape[0], table.shape[1], name=cx.layer_name(node.id))
    return [_apply(cx, node, layer, _x(cx, node), weights=[table])]


_UNARY = ("Relu", "Sigmoid", "Tanh", "Elu", "Selu", "Softplus", "Softsign", "Exp", "Log", "Abs", "Neg", "Sqrt",
          "Erf", "Reciprocal", "Gelu", "LeakyRelu", "HardSigmoid", "HardSwish", "Softmax", "LogSoftmax", "Identity",
          "Flatten", "Cast", "Not")


@EXPORTERS.register(*_UNARY)
def _unary(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    keep = {k: v for k, v in attrs.items() if v is not None and k in ("alpha", "beta", "axis", "approximate", "to")}
    if node.op == "Flatten":
        if int(attrs["axis"]) != 1:
            raise ConversionError("Flatten with axis != 1 is not converted", where=node.label)
        return [cx.custom.K5Unary("Flatten", {}, name=cx.layer_name(node.id))(_x(cx, node))]
    x, perm = _same(cx, node)
    if "axis" in keep and perm is not None:  # the k5 axis, found in the held layout
        keep["axis"] = perm.index(int(keep["axis"]) % len(perm))
    return [(cx.custom.K5Unary(node.op, keep, name=cx.layer_name(node.id))(x), perm)]


@EXPORTERS.register("Clip")
def _clip(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    bounds: dict[str, Any] = {}
    for i, key in ((1, "min"), (2, "max")):
        if len(node.inputs) > i and node.inputs[i]:
            bounds[key] = float(cx.const(node.inputs[i], node))
    x, perm = _same(cx, node)
    return [(cx.custom.K5Unary("Clip", bounds, name=cx.layer_name(node.id))(x), perm)]


@EXPORTERS.register("Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "MatMul", "Sum", "Mean", "Equal", "Greater",
                    "Less", "GreaterOrEqual", "LessOrEqual")
def _binary(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    op = {"Sum": "Add", "Mean": "Add"}.get(node.op, node.op)
    names = [n for n in node.inputs if n]
    consts = [cx.is_const(n) for n in names]
    if all(consts):
        raise ConversionError("every operand is a constant (fold it first)", where=node.label)
    if len(names) == 2 and any(consts):
        ci = consts.index(True)
        value = cx.const(names[ci], node).astype(np.float32)
        layer = cx.custom.K5Binary(op, ci, list(value.shape), name=cx.layer_name(node.id))
        if value.size == 1:  # a scalar: any layout
            x, perm = cx.values[names[1 - ci]], cx.perms.get(names[1 - ci])
            return [(_apply(cx, node, layer, x, weights=[value.reshape(value.shape)]), perm)]
        return [_apply(cx, node, layer, _x(cx, node, 1 - ci), weights=[value])]
    if any(consts):
        raise ConversionError("constants among more than two operands are not converted", where=node.label)
    held = {str(cx.perms.get(n)) for n in names}
    if len(held) == 1 and op != "MatMul":  # every operand held alike: compute in that layout
        perm = cx.perms.get(names[0])
        xs = [cx.values[n] for n in names]
    else:
        perm = None
        xs = [_x(cx, node, i) for i in range(len(node.inputs)) if node.inputs[i]]
    acc = xs[0]
    for i, x in enumerate(xs[1:], start=1):
        last = i == len(names) - 1 and node.op != "Mean"
        acc = cx.custom.K5Binary(op, name=cx.layer_name(node.id if last else f"{node.id}.{i}"))(acc, x)
    if node.op == "Mean":
        value = np.asarray(1.0 / len(names), np.float32)
        layer = cx.custom.K5Binary("Mul", 1, [], name=cx.layer_name(node.id))
        acc = _apply(cx, node, layer, acc, weights=[value])
    return [(acc, perm)]


@EXPORTERS.register("Concat")
def _concat(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    xs = [_x(cx, node, i) for i in range(len(node.inputs))]
    return [cx.keras.layers.Concatenate(axis=int(attrs["axis"]), name=cx.layer_name(node.id))(xs)]


@EXPORTERS.register("Transpose")
def _transpose(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    """No layer: the output is the input's KerasTensor with a composed perm (made real only when needed)."""
    t = cx.values[_check(cx, node)]
    rank = len(t.shape)
    q = list(attrs.get("perm") or list(range(rank))[::-1])
    have = cx.perms.get(node.inputs[0]) or list(range(rank))
    inv = [0] * rank
    for i, p in enumerate(have):
        inv[p] = i
    c = [inv[i] for i in q]  # out = t.T(c)
    r = [0] * rank
    for i, p in enumerate(c):
        r[p] = i  # t = out.T(inverse(c))
    return [(t, r)]


@EXPORTERS.register("Reshape")
def _reshape(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    shape = [int(d) for d in cx.const(node.inputs[1], node).ravel()]
    return [cx.custom.K5Reshape(shape, name=cx.layer_name(node.id))(_x(cx, node))]


@EXPORTERS.register("Unsqueeze", "Squeeze")
def _squeeze(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    if len(node.inputs) < 2 or not node.inputs[1]:
        raise ConversionError("axes must be given", where=node.label)
    axes = [int(a) for a in cx.const(node.inputs[1], node).ravel()]
    return [cx.custom.K5Unary(node.op, {"axes": axes}, name=cx.layer_name(node.id))(_x(cx, node))]


@EXPORTERS.register("Gather")
def _gather(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    """Gather with constant indices (``y[:, -1]``); negative indices resolved by the static dim."""
    x = _x(cx, node)
    axis = int(attrs["axis"]) % len(x.shape)
    idx = cx.const(node.inputs[1], node).astype(np.int64)
    dim = x.shape[axis]
    if (idx < 0).any():
        if dim is None:
            raise ConversionError("negative indices along a dynamic axis are not converted", where=node.label)
        idx = np.where(idx < 0, idx + dim, idx)
    attrs_ = {"indices": idx.tolist(), "axis": axis}
    return [cx.custom.K5Unary("Gather", attrs_, name=cx.layer_name(node.id))(x)]


@EXPORTERS.register("Expand")
def _expand(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    shape = [int(d) for d in cx.const(node.inputs[1], node).ravel()]
    return [cx.custom.K5Unary("Expand", {"shape": shape}, name=cx.layer_name(node.id))(_x(cx, node))]


@EXPORTERS.register("Pad")
def _pad(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    if attrs["mode"] != "constant" or (len(node.inputs) > 3 and node.inputs[3]):
        raise ConversionError("only constant padding of every axis is converted", where=node.label)
    pads = [int(p) for p in cx.const(node.inputs[1], node).ravel()]
    value = float(cx.const(node.inputs[2], node)) if len(node.inputs) > 2 and node.inputs[2] else 0.0
    x, perm = _same(cx, node)
    if perm is not None:  # pads of the k5 axes, moved to where the held layout keeps them
        r = len(perm)
        pads = [pads[perm[j]] for j in range(r)] + [pads[r + perm[j]] for j in range(r)]
    return [(cx.custom.K5Pad(pads, value, name=cx.layer_name(node.id))(x), perm)]


@EXPORTERS.register("Slice")
def _slice(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    _check(cx, node)
    ints = [[int(v) for v in cx.const(n, node).ravel()] if n else None for n in node.inputs[1:5]]
    ints += [None] * (4 - len(ints))
    starts, ends, axes, steps = ints
    assert starts is not None and ends is not None
    axes = axes or list(range(len(starts)))
    steps = steps or [1] * len(starts)
    if any(s not in (1, -1) for s in steps):
        raise ConversionError("steps other than 1 and -1 are not converted", where=node.label)
    held, perm = _same(cx, node)
    if perm is not None:
        axes = [perm.index(a % len(perm)) for a in axes]
    return [(cx.custom.K5Slice(starts, ends, axes, steps, name=cx.layer_name(node.id))(held), perm)]


@EXPORTERS.register("Where")
def _where(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    """``Where(cond, a, b)`` in k5 order; constant operands become weights of :class:`K5Where`."""
    names = list(node.inputs[:3])
    if len(names) != 3 or not all(names):
        raise ConversionError("expects 3 inputs", where=node.label)
    consts = [cx.is_const(n) for n in names]
    if all(consts):
        raise ConversionError("every operand is a constant (fold it first)", where=node.label)
    values = [cx.const(n, node).astype(np.float32) if c else None for n, c in zip(names, consts, strict=True)]
    layer = cx.custom.K5Where([None if v is None else list(v.shape) for v in values], name=cx.layer_name(node.id))
    tensors = [_x(cx, node, i) for i, c in enumerate(consts) if not c]
    y = layer(*tensors)
    layer.set_weights([v for v in values if v is not None])
    return [y]


@EXPORTERS.register("Split")
def _split(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    """Split into static pieces: one :class:`K5Slice` per output (k5 order)."""
    x = _x(cx, node)
    axis = int(attrs["axis"]) % len(x.shape)
    dim = x.shape[axis]
    if len(node.inputs) > 1 and node.inputs[1]:
        sizes = [int(v) for v in cx.const(node.inputs[1], node).ravel()]
    elif attrs.get("num_outputs") and dim is not None:
        n = int(attrs["num_outputs"])
        chunk = -(-int(dim) // n)
        sizes = [chunk] * (n - 1) + [int(dim) - chunk * (n - 1)]
    else:
        raise ConversionError("a Split needs constant sizes or num_outputs over a static dim", where=node.label)
    outs, start = [], 0
    for i, size in enumerate(sizes):
        layer = cx.custom.K5Slice([start], [start + size], [axis], [1], name=cx.layer_name(f"{node.id}_{i}"))
        outs.append(layer(x))
        start += size
    return outs


@EXPORTERS.register("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd")
def _reduce(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    x = _x(cx, node)
    if len(node.inputs) > 1 and node.inputs[1]:
        axes = [int(a) for a in cx.const(node.inputs[1], node).ravel()]
    else:
        axes = list(range(len(x.shape)))
    return [cx.custom.K5Reduce(node.op, axes, bool(attrs["keepdims"]), name=cx.layer_name(node.id))(x)]


@EXPORTERS.register("Resize")
def _resize(cx: Ctx, node: Node, attrs: dict[str, Any]) -> list[Any]:
    x, perm = _cl(cx, node)
    n = len(x.shape) - 2
    if len(node.inputs) < 3 or not node.inputs[2]:
        raise ConversionError("only Resize by constant scales is converted", where=node.label)
    scales = cx.const(node.inputs[2], node).ravel()
    mode, coord = attrs.get("mode"), attrs.get("coordinate_transformation_mode")
    name = cx.layer_name(node.id)
    if list(scales[:2]) != [1, 1]:
        raise ConversionError(f"scales {list(scales)} resize the batch or channel axis", where=node.label)
    if any(s != int(s) or s < 1 for s in scales[2:]):  # a fixed output size: keras.layers.Resizing (2-D)
        dims = x.shape[1:-1]
        nearest = (mode, attrs.get("nearest_mode")) == ("nearest", "round_prefer_ceil")
        if n != 2 or coord != "half_pixel" or not (mode == "linear" or nearest) or None in dims:
            raise ConversionError(f"Resize mode={mode!r} ({coord}) by {list(scales)} is not converted",
                                  where=node.label)
        out = [int(np.floor(d * s)) for d, s in zip(dims, scales[2:], strict=True)]
        layer = cx.keras.layers.Resizing(*out, interpolation="bilinear" if mode == "linear" else "nearest", name=name)
        return [(layer(x), perm)]
    size = [int(s) for s in scales[2:]]
    if mode == "nearest" and (coord, attrs.get("nearest_mode")) in (("asymmetric", "floor"),
                                                                    ("half_pixel", "round_prefer_floor")):
        interp = "nearest"  # the same pixels for integer scales
    elif mode == "linear" and coord in ("half_pixel", "pytorch_half_pixel") and n == 2:
        interp = "bilinear"
    else:
        raise ConversionError(f"Resize mode={mode!r} ({coord}) is not converted", where=node.label)
    if n == 1:
        return [(cx.keras.layers.UpSampling1D(size[0], name=name)(x), perm)]
    kw = {"interpolation": interp} if n == 2 else {}
    return [(getattr(cx.keras.layers, f"UpSampling{_fmt(n)}")(size, name=name, **kw)(x), perm)]
