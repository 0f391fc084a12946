"""Keras convolution, pooling, padding, cropping and upsampling layers: channels-first k5 layer ops.

Each converter asks for its input in channels-first layout (``Builder.get(x, "cf")``), so a run of these layers
shares one Transpose in. Keras' ``padding="same"`` is TensorFlow's SAME (the odd pixel at the end), written as
explicit ``pads``; ``"causal"`` pads the front only.
"""

from __future__ import annotations

import math

import numpy as np

from k5.convert.keras.activations import activation_name, apply_activation
from k5.convert.keras.graph import Builder, LayerCall, Val
from k5.convert.keras.tables import LAYERS

__all__: list[str] = []

_ACTS = ("Relu", "Sigmoid", "Tanh", "Elu", "Selu", "Softplus", "Softsign", "Exp", "Gelu", "HardSigmoid",
         "HardSwish", "LeakyRelu", "Abs", "Mul", "Clip", "Softmax", "LogSoftmax", "Constant", "Transpose")


def _tuple(v: object, n: int) -> list[int]:
    if isinstance(v, (list, tuple)):
        if len(v) == 1 and n > 1:
            return [int(v[0])] * n
        return [int(d) for d in v]
    return [int(v)] * n  # type: ignore[call-overload]


def _spatial(call: LayerCall) -> tuple[int, list[int | None] | None]:
    shape = call.in_shapes[0]
    rank = len(shape) if shape is not None else call.inputs[0].rank
    if rank is None:
        raise call.error("needs the rank of its input")
    return rank - 2, (list(shape[1:-1]) if shape is not None else None)


def _check_format(call: LayerCall) -> None:
    if call.config.get("data_format", "channels_last") not in ("channels_last", None):
        raise call.error("data_format='channels_first' is not converted (k5 expects Keras' default channels_last)")


def same_pads(call: LayerCall, sizes: list[int | None] | None, kernel: list[int], strides: list[int],
              dilations: list[int]) -> list[int]:
    """TensorFlow SAME padding as explicit [begins..., ends...]."""
    begins, ends = [], []
    for i, (k, s, d) in enumerate(zip(kernel, strides, dilations, strict=True)):
        eff = (k - 1) * d + 1
        if s == 1:
            total = eff - 1
        else:
            size = sizes[i] if sizes is not None else None
            if size is None:
                raise call.error("padding='same' with strides > 1 needs the input's spatial size")
            total = max((math.ceil(size / s) - 1) * s + eff - size, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return begins + ends


def _pads(call: LayerCall, kernel: list[int], strides: list[int], dilations: list[int]) -> list[int]:
    n, sizes = _spatial(call)
    padding = str(call.config.get("padding", "valid")).lower()
    if padding == "valid":
        return [0] * (2 * n)
    if padding == "same":
        return same_pads(call, sizes, kernel, strides, dilations)
    if padding == "causal":
        return [(kernel[0] - 1) * dilations[0], 0]
    raise call.error(f"padding={padding!r} is not converted")


def _finish(b: Builder, call: LayerCall, y: str, rank: int) -> list[Val]:
    out = Val(y, "cf", rank)
    act = activation_name(call.config.get("activation", "linear"))
    if act != "linear":
        out = apply_activation(b, out, act, f"{call.name}.{act}")
    return [out]


def _conv_node(b: Builder, src: str, node_id: str, weight: np.ndarray, bias: np.ndarray | None, *,
               strides: list[int], dilations: list[int], pads: list[int], group: int) -> str:
    weights = {"weight": np.ascontiguousarray(weight)}
    if bias is not None:
        weights["bias"] = bias
    attrs = {"kernel_shape": list(weight.shape[2:]), "strides": strides, "dilations": dilations, "pads": pads,
             "group": group}
    return b.add1("Conv", [src], id=node_id, weights=weights, attrs=attrs)


@LAYERS.register("Conv1D", "Conv2D", "Conv3D", produces=("Conv", *_ACTS))
def _conv(b: Builder, call: LayerCall) -> list[Val]:
    _check_format(call)
    n, _ = _spatial(call)
    cfg = call.config
    kernel = call.weight(0)  # [*k, in/group, out]
    ks, strides = list(kernel.shape[:n]), _tuple(cfg.get("strides", 1), n)
    dil = _tuple(cfg.get("dilation_rate", 1), n)
    pads = _pads(call, ks, strides, dil)
    if str(cfg.get("padding")).lower() == "causal" and any(s != 1 for s in strides):
        pass
    weight = kernel.transpose(n + 1, n, *range(n))
    bias = call.weight(1) if cfg.get("use_bias", True) else None
    src = b.get(call.inputs[0], "cf")
    y = _conv_node(b, src, call.name, weight, bias, strides=strides, dilations=dil, pads=pads,
                   group=int(cfg.get("groups", 1)))
    return _finish(b, call, y, n + 2)


def _depthwise_weight(kernel: np.ndarray, n: int) -> np.ndarray:
    """Keras depthwise kernel [*k, in, mult] -> k5 grouped Conv weight [in*mult, 1, *k] (channel i*mult + m)."""
    inner = kernel.transpose(n, n + 1, *range(n))  # [in, mult, *k]
    return inner.reshape(inner.shape[0] * inner.shape[1], 1, *inner.shape[2:])


@LAYERS.register("DepthwiseConv1D", "DepthwiseConv2D", produces=("Conv", *_ACTS))
def _depthwise(b: Builder, call: LayerCall) -> list[Val]:
    _check_format(call)
    n, _ = _spatial(call)
    cfg = call.config
    kernel = call.weight(0)
    ks, strides = list(kernel.shape[:n]), _tuple(cfg.get("strides", 1), n)
    dil = _tuple(cfg.get("dilation_rate", 1), n)
    pads = _pads(call, ks, strides, dil)
    bias = call.weight(1) if cfg.get("use_bias", True) else None
    src = b.get(call.inputs[0], "cf")
    y = _conv_node(b, src, call.name, _depthwise_weight(kernel, n), bias, strides=strides, dilations=dil,
                   pads=pads, group=int(kernel.shape[n]))
    return _finish(b, call, y, n + 2)


@LAYERS.register("SeparableConv1D", "SeparableConv2D", produces=("Conv", *_ACTS))
def _separable(b: Builder, call: LayerCall) -> list[Val]:
    _check_format(call)
    n, _ = _spatial(call)
    cfg = call.config
    depth, point = call.weight(0), call.weight(1)  # [*k, in, mult], [*1, in*mult, out]
    ks, strides = list(depth.shape[:n]), _tuple(cfg.get("strides", 1), n)
    dil = _tuple(cfg.get("dilation_rate", 1), n)
    pads = _pads(call, ks, strides, dil)
    bias = call.weight(2) if cfg.get("use_bias", True) else None
    src = b.get(call.inputs[0], "cf")
    d = _conv_node(b, src, f"{call.name}.depthwise", _depthwise_weight(depth, n), None, strides=strides,
                   dilations=dil, pads=pads, group=int(depth.shape[n]))
    y = _conv_node(b, d, call.name, point.transpose(n + 1, n, *range(n)), bias, strides=[1] * n,
                   dilations=[1] * n, pads=[0] * (2 * n), group=1)
    return _finish(b, call, y, n + 2)


@LAYERS.register("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
                 produces=("ConvTranspose", "Slice", *_ACTS))
def _conv_transpose(b: Builder, call: LayerCall) -> list[Val]:
    _check_format(call)
    n, _ = _spatial(call)
    cfg = call.config
    kernel = call.weight(0)  # [*k, out, in]
    ks, strides = list(kernel.shape[:n]), _tuple(cfg.get("strides", 1), n)
    dil = _tuple(cfg.get("dilation_rate", 1), n)
    if cfg.get("output_padding") is not None:
        raise call.error("output_padding is not converted")
    padding = str(cfg.get("padding", "valid")).lower()
    begins, ends, out_pad = [], [], []
    for k, s, d in zip(ks, strides, dil, strict=True):
        total = (k - 1) * d + 1 - s if padding == "same" else 0
        if total < 0:
            begins.append(0)
            ends.append(0)
            out_pad.append(-total)
        else:
            begins.append(total // 2)
            ends.append(total - total // 2)
            out_pad.append(0)
    weights = {"weight": np.ascontiguousarray(kernel.transpose(n + 1, n, *range(n)))}
    if cfg.get("use_bias", True):
        weights["bias"] = call.weight(1)
    # SAME puts the odd cropped pixel at the end; the symmetric part goes in ``pads`` and the rest is a Slice, so
    # frameworks with symmetric-only transposed convolutions (PyTorch) run it as one layer
    sym = [min(a, e) for a, e in zip(begins, ends, strict=True)]
    extra_b = [a - c for a, c in zip(begins, sym, strict=True)]
    extra_e = [e - c for e, c in zip(ends, sym, strict=True)]
    attrs = {"kernel_shape": ks, "strides": strides, "dilations": dil, "pads": sym + sym}
    if any(out_pad):
        attrs["output_padding"] = out_pad
    src = b.get(call.inputs[0], "cf")
    cropped = any(extra_b) or any(extra_e)
    y = b.add1("ConvTranspose", [src], id=call.name, weights=weights, attrs=attrs,
               out=f"{call.name}.uncropped" if cropped else None)
    if cropped:
        big = np.iinfo(np.int64).max
        ends_ = [-e if e else big for e in extra_e]
        y = b.add1("Slice", [y, b.ints(extra_b, f"{call.name}.starts"), b.ints(ends_, f"{call.name}.ends"),
                             b.ints(list(range(2, n + 2)), f"{call.name}.axes")], id=f"{call.name}.crop")
    return _finish(b, call, y, n + 2)


@LAYERS.register("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
                 "AveragePooling3D", produces=("MaxPool", "AveragePool", "Transpose"))
def _pool(b: Builder, call: LayerCall) -> list[Val]:
    _check_format(call)
    n, _ = _spatial(call)
    cfg = call.config
    ks = _tuple(cfg["pool_size"], n)
    strides = _tuple(cfg.get("strides") or ks, n)
    pads = _pads(call, ks, strides, [1] * n)
    op = "MaxPool" if call.class_name.startswith("Max") else "AveragePool"
    src = b.get(call.inputs[0], "cf")
    y = b.add1(op, [src], id=call.name, attrs={"kernel_shape": ks, "strides": strides, "pads": pads})
    return [Val(y, "cf", n + 2)]


@LAYERS.register("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
                 "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
                 produces=("GlobalAveragePool", "GlobalMaxPool", "Flatten", "ReduceMean", "ReduceMax", "Constant"))
def _global_pool(b: Builder, call: LayerCall) -> list[Val]:
    _check_format(call)
    n, _ = _spatial(call)
    keep = bool(call.config.get("keepdims", False))
    is_avg = "Average" in call.class_name
    x = call.inputs[0]
    if len(call.inputs) > 1:
        raise call.error("a mask input is not converted")
    if x.layout == "cf":
        op = "GlobalAveragePool" if is_avg else "GlobalMaxPool"
        if keep:
            return [Val(b.add1(op, [x.name], id=call.name), "cf", n + 2)]
        g = b.add1(op, [x.name], id=f"{call.name}.pool")
        return [Val(b.add1("Flatten", [g], id=call.name, attrs={"axis": 1}), "k", 2)]
    src = b.get(x, "k")
    op = "ReduceMean" if is_avg else "ReduceMax"
    axes = b.ints(list(range(1, n + 1)), f"{call.name}.axes")
    y = b.add1(op, [src, axes], id=call.name, attrs={"keepdims": int(keep)})
    return [Val(y, "k", n + 2 if keep else 2)]


def _pairs(v: object, n: int) -> list[tuple[int, int]]:
    if isinstance(v, int):
        return [(v, v)] * n
    items = list(v)  # type: ignore[call-overload]
    if n == 1 and len(items) == 2 and all(isinstance(i, int) for i in items):
        return [(int(items[0]), int(items[1]))]
    return [(int(p), int(p)) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in items]


@LAYERS.register("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", produces=("Pad", "Constant", "Transpose"))
def _zero_pad(b: Builder, call: LayerCall) -> list[Val]:
    _check_format(call)
    n, _ = _spatial(call)
    pairs = _pairs(call.config["padding"], n)
    src = b.get(call.inputs[0], "cf")
    pads = [0, 0, *(p[0] for p in pairs), 0, 0, *(p[1] for p in pairs)]
    y = b.add1("Pad", [src, b.ints(pads, f"{call.name}.pads")], id=call.name)
    return [Val(y, "cf", n + 2)]


@LAYERS.register("Cropping1D", "Cropping2D", "Cropping3D", produces=("Slice", "Constant", "Transpose"))
def _crop(b: Builder, call: LayerCall) -> list[Val]:
    _check_format(call)
    n, _ = _spatial(call)
    pairs = _pairs(call.config["cropping"], n)
    src = b.get(call.inputs[0], "cf")
    starts = [p[0] for p in pairs]
    ends = [-p[1] if p[1] else np.iinfo(np.int64).max for p in pairs]
    axes = list(range(2, n + 2))
    y = b.add1("Slice", [src, b.ints(starts, f"{call.name}.starts"), b.ints(ends, f"{call.name}.ends"),
                         b.ints(axes, f"{call.name}.axes")], id=call.name)
    return [Val(y, "cf", n + 2)]


@LAYERS.register("UpSampling1D", "UpSampling2D", "UpSampling3D", produces=("Resize", "Constant", "Transpose"))
def _upsample(b: Builder, call: LayerCall) -> list[Val]:
    _check_format(call)
    n, _ = _spatial(call)
    cfg = call.config
    size = _tuple(cfg.get("size", 2), n)
    interp = cfg.get("interpolation", "nearest")
    if interp == "nearest":
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    elif interp == "bilinear":
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    else:
        raise call.error(f"interpolation={interp!r} is not converted (nearest, bilinear)")
    src = b.get(call.inputs[0], "cf")
    scales = b.const(np.asarray([1.0, 1.0, *size], np.float32), f"{call.name}.scales")
    y = b.add1("Resize", [src, "", scales], id=call.name, attrs=attrs)
    return [Val(y, "cf", n + 2)]


@LAYERS.register("Resizing", produces=("Resize", "Constant", "Transpose"))
def _resizing(b: Builder, call: LayerCall) -> list[Val]:
    """tf.image.resize semantics (half_pixel centres, no antialiasing) to a fixed height and width."""
    _check_format(call)
    cfg = call.config
    if cfg.get("crop_to_aspect_ratio") or cfg.get("pad_to_aspect_ratio") or cfg.get("antialias"):
        raise call.error("crop_to_aspect_ratio, pad_to_aspect_ratio and antialias are not converted")
    interp = cfg.get("interpolation", "bilinear")
    modes = {"bilinear": {"mode": "linear"}, "nearest": {"mode": "nearest", "nearest_mode": "round_prefer_ceil"}}
    if interp not in modes:
        raise call.error(f"interpolation={interp!r} is not converted (bilinear, nearest)")
    attrs = {**modes[interp], "coordinate_transformation_mode": "half_pixel"}
    src = b.get(call.inputs[0], "cf")
    shape = call.in_shapes[0]
    if shape is None or shape[-1] is None:
        raise call.error("needs the channel count of its input")
    if any(d is None for d in shape[1:3]):
        raise call.error("needs the input's height and width")
    scales = [1.0, 1.0, int(cfg["height"]) / int(shape[1]), int(cfg["width"]) / int(shape[2])]  # type: ignore
    y = b.add1("Resize", [src, "", b.const(np.asarray(scales, np.float32), f"{call.name}.scales")], id=call.name,
               attrs=attrs)
    return [Val(y, "cf", 4)]
