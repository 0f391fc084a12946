"""Keras core layers: Dense, activations, merging, reshaping, embedding, normalization, preprocessing, no-ops."""

from __future__ import annotations

import numpy as np

from k5.convert.keras.activations import activation_name, apply_activation, softmax
from k5.convert.keras.graph import Builder, LayerCall, Val, axis_in, to_k_perm
from k5.convert.keras.tables import LAYERS, NO_OPS

__all__: list[str] = []

_ACT_OPS = ("Relu", "Sigmoid", "Tanh", "Elu", "Selu", "Softplus", "Softsign", "Exp", "Gelu", "HardSigmoid",
            "HardSwish", "LeakyRelu", "Abs", "Mul", "Clip", "Softmax", "LogSoftmax", "Constant")


def _rank(call: LayerCall, i: int = 0) -> int | None:
    shape = call.in_shapes[i] if i < len(call.in_shapes) else None
    return len(shape) if shape is not None else call.inputs[i].rank


def _with_activation(b: Builder, call: LayerCall, y: Val) -> Val:
    act = activation_name(call.config.get("activation", "linear"))
    if act == "linear":
        return y
    return apply_activation(b, y, act, f"{call.name}.{act}")


@LAYERS.register(*sorted(NO_OPS), produces=())
def _no_op(b: Builder, call: LayerCall) -> list[Val]:
    return [call.inputs[0]]


@LAYERS.register("Dense", produces=("Linear", "Flatten", "Reshape", "Transpose", *_ACT_OPS))
def _dense(b: Builder, call: LayerCall) -> list[Val]:
    x = call.inputs[0]
    kernel = call.weight(0)
    weights = {}
    if x.layout == "flatcf":  # fold the channels-first flatten into the kernel's rows
        shape = x.flat_shape
        kernel = kernel.reshape(*shape, -1).transpose(len(shape) - 1, *range(len(shape) - 1), len(shape))
        kernel = kernel.reshape(-1, kernel.shape[-1])
        xin = x.name
    else:
        xin = b.get(x, "k")
    weights["weight"] = np.ascontiguousarray(kernel.T)
    if call.config.get("use_bias", True):
        weights["bias"] = call.weight(1)
    y = Val(b.add1("Linear", [xin], id=call.name, weights=weights), "k", _rank(call))
    return [_with_activation(b, call, y)]


@LAYERS.register("Activation", produces=_ACT_OPS)
def _activation(b: Builder, call: LayerCall) -> list[Val]:
    act = activation_name(call.config.get("activation"))
    return [apply_activation(b, call.inputs[0], act, call.name)]


@LAYERS.register("ReLU", produces=("Relu", "Clip", "LeakyRelu", "Constant"))
def _relu(b: Builder, call: LayerCall) -> list[Val]:
    cfg, x = call.config, call.inputs[0]
    max_value, slope, threshold = cfg.get("max_value"), cfg.get("negative_slope", 0.0), cfg.get("threshold", 0.0)
    if threshold:
        raise call.error(f"threshold={threshold} has no k5 form; only threshold=0 is converted")
    if max_value is None and not slope:
        return [apply_activation(b, x, "relu", call.name)]
    if max_value is None:
        return [Val(b.add1("LeakyRelu", [x.name], id=call.name, attrs={"alpha": float(slope)}), x.layout, x.rank,
                    x.flat_shape)]
    if slope:
        raise call.error("max_value together with negative_slope has no k5 form")
    lo, hi = b.const(0.0, "zero"), b.const(float(max_value), f"{call.name}.max_value")
    return [Val(b.add1("Clip", [x.name, lo, hi], id=call.name), x.layout, x.rank, x.flat_shape)]


@LAYERS.register("LeakyReLU", produces=("LeakyRelu",))
def _leaky(b: Builder, call: LayerCall) -> list[Val]:
    x = call.inputs[0]
    alpha = float(call.config.get("negative_slope", call.config.get("alpha", 0.3)))
    return [Val(b.add1("LeakyRelu", [x.name], id=call.name, attrs={"alpha": alpha}), x.layout, x.rank,
                x.flat_shape)]


@LAYERS.register("ELU", produces=("Elu",))
def _elu(b: Builder, call: LayerCall) -> list[Val]:
    x = call.inputs[0]
    alpha = float(call.config.get("alpha", 1.0))
    return [Val(b.add1("Elu", [x.name], id=call.name, attrs={"alpha": alpha}), x.layout, x.rank, x.flat_shape)]


@LAYERS.register("PReLU", produces=("PRelu", "Transpose"))
def _prelu(b: Builder, call: LayerCall) -> list[Val]:
    x = b.get(call.inputs[0], "k")
    slope = call.weight(0, 1)
    return [Val(b.add1("PRelu", [x], id=call.name, weights={"slope": slope}), "k", _rank(call))]


@LAYERS.register("Softmax", produces=("Softmax", "Transpose", "Flatten", "Reshape", "Constant"))
def _softmax_layer(b: Builder, call: LayerCall) -> list[Val]:
    axis = call.config.get("axis", -1)
    if isinstance(axis, list):
        if len(axis) != 1:
            raise call.error(f"softmax over several axes {axis} has no k5 form")
        axis = axis[0]
    if len(call.inputs) > 1:
        raise call.error("a Softmax mask input is not converted")
    return [softmax(b, call.inputs[0], call.name, int(axis))]


_MERGE = {"Add": "Add", "Multiply": "Mul", "Maximum": "Max", "Minimum": "Min"}


@LAYERS.register("Add", "Multiply", "Maximum", "Minimum", "Subtract", "Average",
                 produces=("Add", "Mul", "Max", "Min", "Sub", "Mean", "Transpose", "Reshape", "Flatten", "Constant"))
def _merge(b: Builder, call: LayerCall) -> list[Val]:
    names, layout = b.common(call.inputs)
    first = call.inputs[0]
    rank, flat = first.rank, first.flat_shape
    if call.class_name == "Subtract":
        if len(names) != 2:
            raise call.error(f"expects 2 inputs. Received: {len(names)}")
        out = b.add1("Sub", names, id=call.name)
    elif call.class_name == "Average":
        out = b.add1("Mean", names, id=call.name)
    elif call.class_name in ("Maximum", "Minimum"):
        out = b.add1(_MERGE[call.class_name], names, id=call.name)
    else:
        op = _MERGE[call.class_name]
        acc = names[0]
        for i, n in enumerate(names[1:], start=1):
            last = i == len(names) - 1
            acc = b.add1(op, [acc, n], id=call.name if last else f"{call.name}.{i}")
        out = acc
    return [Val(out, layout, rank, flat if layout == "flatcf" else ())]


@LAYERS.register("Concatenate", produces=("Concat", "Transpose", "Reshape", "Flatten", "Constant"))
def _concat(b: Builder, call: LayerCall) -> list[Val]:
    rank = _rank(call)
    if rank is None:
        raise call.error("needs the rank of its inputs")
    inputs = call.inputs
    if any(v.layout == "flatcf" for v in inputs):
        names, layout = [b.get(v, "k") for v in inputs], "k"
    else:
        names, layout = b.common(inputs)
    axis = axis_in(layout, int(call.config.get("axis", -1)), rank)
    return [Val(b.add1("Concat", names, id=call.name, attrs={"axis": axis}), layout, rank)]


@LAYERS.register("Reshape", produces=("Reshape", "Transpose", "Flatten", "Constant"))
def _reshape(b: Builder, call: LayerCall) -> list[Val]:
    x = b.get(call.inputs[0], "k")
    target = [int(d) if d is not None else -1 for d in call.config["target_shape"]]
    if len(target) > 1 and all(d == 1 for d in target[:-1]):  # [N, 1, 1, C]: channels-first is [N, C, 1, 1]
        shape = b.ints([0, target[-1], *target[:-1]], f"{call.name}.shape")
        return [Val(b.add1("Reshape", [x, shape], id=call.name), "cf", len(target) + 1)]
    shape = b.ints([0, *target], f"{call.name}.shape")
    return [Val(b.add1("Reshape", [x, shape], id=call.name), "k", len(target) + 1)]


@LAYERS.register("Flatten", produces=("Flatten", "Transpose", "Reshape", "Constant"))
def _flatten(b: Builder, call: LayerCall) -> list[Val]:
    x = call.inputs[0]
    shape = call.in_shapes[0]
    if call.config.get("data_format", "channels_last") == "channels_first":
        raise call.error("data_format='channels_first' is not converted")
    if x.layout == "cf" and shape is not None and all(isinstance(d, int) for d in shape[1:]) and len(shape) > 2:
        out = b.add1("Flatten", [x.name], id=call.name, attrs={"axis": 1})
        if all(d == 1 for d in shape[1:-1]):  # [N, 1, 1, C]: both orders flatten alike
            return [Val(out, "k", 2)]
        return [Val(out, "flatcf", 2, tuple(d for d in shape[1:] if isinstance(d, int)))]
    return [Val(b.add1("Flatten", [b.get(x, "k")], id=call.name, attrs={"axis": 1}), "k", 2)]


@LAYERS.register("Permute", produces=("Transpose",))
def _permute(b: Builder, call: LayerCall) -> list[Val]:
    x = call.inputs[0]
    perm = [0, *(int(d) for d in call.config["dims"])]
    if x.layout == "cf" and x.rank and x.rank > 2:  # compose with the channels-first -> channels-last transpose
        back = to_k_perm(x.rank)
        perm = [back[p] for p in perm]
        src = x.name
    else:
        src = b.get(x, "k")
    return [Val(b.add1("Transpose", [src], id=call.name, attrs={"perm": perm}), "k", len(perm))]


@LAYERS.register("RepeatVector", produces=("Unsqueeze", "Expand", "Constant", "Reshape", "Transpose", "Flatten"))
def _repeat(b: Builder, call: LayerCall) -> list[Val]:
    x = b.get(call.inputs[0], "k")
    n = int(call.config["n"])
    u = b.add1("Unsqueeze", [x, b.ints([1], "axes_1")], id=f"{call.name}.unsqueeze")
    return [Val(b.add1("Expand", [u, b.ints([1, n, 1], f"{call.name}.shape")], id=call.name), "k", 3)]


@LAYERS.register("Rescaling", produces=("Mul", "Add", "Constant", "Transpose", "Reshape", "Flatten"))
def _rescaling(b: Builder, call: LayerCall) -> list[Val]:
    x = call.inputs[0]
    scale = np.asarray(call.config.get("scale", 1.0), dtype=np.float32)
    offset = np.asarray(call.config.get("offset", 0.0), dtype=np.float32)
    if scale.ndim or offset.ndim:
        xn, layout = b.get(x, "k"), "k"
    else:
        xn, layout = x.name, x.layout
    y = b.add1("Mul", [xn, b.const(scale, f"{call.name}.scale")], id=f"{call.name}.scale"
               if offset.any() else call.name)
    if offset.any():
        y = b.add1("Add", [y, b.const(offset, f"{call.name}.offset")], id=call.name)
    return [Val(y, layout, x.rank, x.flat_shape if layout == "flatcf" else ())]


@LAYERS.register("Normalization", produces=("Sub", "Div", "Constant", "Transpose", "Reshape", "Flatten"))
def _normalization(b: Builder, call: LayerCall) -> list[Val]:
    cfg = call.config
    if cfg.get("invert"):
        raise call.error("invert=True is not converted")
    x = b.get(call.inputs[0], "k")
    if cfg.get("mean") is not None:
        mean, var = np.asarray(cfg["mean"], np.float32), np.asarray(cfg["variance"], np.float32)
    else:
        mean, var = call.weight(0).astype(np.float32), call.weight(1).astype(np.float32)
    rank = _rank(call) or mean.ndim + 1
    axis = cfg.get("axis", -1)
    axes = [a % rank for a in ([axis] if isinstance(axis, int) else (axis or []))]
    shape = [1] * rank
    for a in axes:
        shape[a] = -1
    mean = mean.reshape(shape) if mean.size > 1 else mean.reshape(())
    std = np.sqrt(np.maximum(var, np.finfo(np.float32).eps)).reshape(mean.shape)
    y = b.add1("Sub", [x, b.const(mean, f"{call.name}.mean")], id=f"{call.name}.center")
    return [Val(b.add1("Div", [y, b.const(std, f"{call.name}.std")], id=call.name), "k", rank)]


@LAYERS.register("Embedding", produces=("Embedding", "Cast"))
def _embedding(b: Builder, call: LayerCall) -> list[Val]:
    x = call.inputs[0]
    src = b.get(x, "k")
    if (call.in_dtypes[0] if call.in_dtypes else None) != "int64":
        src = b.add1("Cast", [src], id=f"{call.name}.to_int", attrs={"to": "int64"})
    table = call.weight(0)
    rank = (x.rank or 1) + 1
    return [Val(b.add1("Embedding", [src], id=call.name, weights={"weight": table}), "k", rank)]


def _norm_params(call: LayerCall, channels: int) -> tuple[dict[str, np.ndarray], int]:
    """gamma/beta by the center/scale flags; returns the weights and how many were consumed."""
    i = 0
    out: dict[str, np.ndarray] = {}
    dtype: np.dtype = np.dtype(np.float32)
    if call.config.get("scale", True):
        out["scale"] = call.weight(i)
        dtype = out["scale"].dtype
        i += 1
    if call.config.get("center", True):
        out["bias"] = call.weight(i)
        i += 1
    out.setdefault("scale", np.ones(channels, dtype))
    out.setdefault("bias", np.zeros(channels, dtype))
    return out, i


def _channel_axis(call: LayerCall, rank: int) -> int:
    axis = call.config.get("axis", -1)
    if isinstance(axis, list):
        if len(axis) != 1:
            raise call.error(f"normalizing over several axes {axis} is not converted")
        axis = axis[0]
    return int(axis) % rank


@LAYERS.register("BatchNormalization", produces=("BatchNormalization", "Transpose", "Reshape", "Flatten",
                                                 "Constant"))
def _batchnorm(b: Builder, call: LayerCall) -> list[Val]:
    cfg = call.config
    if cfg.get("renorm") or cfg.get("synchronized"):
        pass  # inference uses the moving statistics either way
    x = call.inputs[0]
    rank = _rank(call) or 2
    axis = _channel_axis(call, rank)
    if axis == rank - 1:
        src, layout = (b.get(x, "cf"), "cf") if rank > 2 else (b.get(x, "k"), "k")
    elif axis == 1:
        src, layout = b.get(x, "k"), "k"
    else:
        raise call.error(f"axis={cfg.get('axis')} of a rank-{rank} input is not converted (only the last or 1)")
    mean = call.weight(len(call.weights) - 2)
    params, _ = _norm_params(call, mean.shape[0])
    weights = {**params, "mean": mean, "var": call.weight(len(call.weights) - 1)}
    y = b.add1("BatchNormalization", [src], id=call.name, weights=weights,
               attrs={"epsilon": float(cfg.get("epsilon", 1e-3))})
    return [Val(y, layout, rank)]


@LAYERS.register("LayerNormalization", produces=("LayerNormalization", "Transpose", "Reshape", "Flatten",
                                                 "Constant"))
def _layernorm(b: Builder, call: LayerCall) -> list[Val]:
    cfg = call.config
    if cfg.get("rms_scaling"):
        raise call.error("rms_scaling=True is not converted")
    rank = _rank(call) or 2
    axis = cfg.get("axis", -1)
    axes = sorted(a % rank for a in ([axis] if isinstance(axis, int) else axis))
    if axes != list(range(axes[0], rank)):
        raise call.error(f"axis={axis}: only trailing axes are converted")
    shape = call.in_shapes[0]
    norm_shape = [int(d) for d in shape[axes[0]:]] if shape is not None else None  # type: ignore[arg-type]
    src = b.get(call.inputs[0], "k")
    weights: dict[str, np.ndarray] = {}
    i = 0
    if cfg.get("scale", True):
        weights["scale"] = call.weight(i)
        i += 1
    if cfg.get("center", True):
        weights["bias"] = call.weight(i)
    if "scale" not in weights:
        if norm_shape is None:
            raise call.error("scale=False needs the input shape")
        weights["scale"] = np.ones(norm_shape, np.float32)
    y = b.add1("LayerNormalization", [src], id=call.name, weights=weights,
               attrs={"axis": axes[0], "epsilon": float(cfg.get("epsilon", 1e-3))})
    return [Val(y, "k", rank)]


@LAYERS.register("GroupNormalization", produces=("GroupNormalization", "Transpose", "Reshape", "Flatten",
                                                 "Constant"))
def _groupnorm(b: Builder, call: LayerCall) -> list[Val]:
    cfg = call.config
    rank = _rank(call) or 2
    if _channel_axis(call, rank) != rank - 1:
        raise call.error("only axis=-1 (channels last) is converted")
    x = call.inputs[0]
    src, layout = (b.get(x, "cf"), "cf") if rank > 2 else (b.get(x, "k"), "k")
    shape = call.in_shapes[0]
    last = shape[-1] if shape else None
    channels = int(last) if last is not None else int(call.weight(0).shape[0])
    params, _ = _norm_params(call, channels)
    groups = int(cfg.get("groups", 32))
    y = b.add1("GroupNormalization", [src], id=call.name, weights=params,
               attrs={"epsilon": float(cfg.get("epsilon", 1e-3)), "num_groups": channels if groups == -1 else groups})
    return [Val(y, layout, rank)]
