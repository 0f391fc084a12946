"""Lua ``nn`` modules -> k5 nodes, one converter per module class (see :mod:`.tables` for the signature).

Lua semantics assumed throughout: inputs are batched (``[N, C, H, W]`` images, ``[N, features]`` vectors), as
OpenCV's importer assumes too. Where Lua decides batch mode from the input's rank (``View``, ``Transpose``,
``SoftMax``), the rank the importer tracks for every tensor decides. Node ids are the container path of the module
(1-based Lua indices, ``2.3``) and the k5 op in lower case (``2.3.conv``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from k5.convert.torch7.context import ImportContext, Value, children, module_error
from k5.convert.torch7.reader import T7Object, T7Storage
from k5.convert.torch7.tables import IMPORTERS

__all__: list[str] = []


def _join(path: str, i: int) -> str:
    return f"{path}.{i}" if path else str(i)


def _nid(path: str, op: str) -> str:
    return f"{path}.{op.lower()}" if path else op.lower()


def _int(mod: T7Object, key: str, path: str, default: int | None = None) -> int:
    value = mod.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        if default is not None and value is None:
            return default
        raise module_error(path, mod, f"field {key!r} must be a number. Received: {value!r}")
    return int(value)


def _float(mod: T7Object, key: str, path: str, default: float | None = None) -> float:
    value = mod.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise module_error(path, mod, f"field {key!r} must be a number. Received: {value!r}")
    return float(value)


def _ints(value: Any) -> list[int] | None:
    if isinstance(value, T7Storage | np.ndarray):
        arr = value.data if isinstance(value, T7Storage) else value
        return [int(v) for v in np.asarray(arr).reshape(-1)]
    if hasattr(value, "array"):
        items = value.array()
        if items is not None and all(isinstance(v, int | float) for v in items):
            return [int(v) for v in items]
    return None


# -- containers -------------------------------------------------------------------------------------------------
@IMPORTERS.register("Sequential")
def sequential(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    for i, child in enumerate(children(mod), 1):
        x = cx.module(child, _join(path, i), x)
    return x


@IMPORTERS.register("ConcatTable")
def concat_table(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    return [cx.module(child, _join(path, i), x) for i, child in enumerate(children(mod), 1)]


@IMPORTERS.register("ParallelTable")
def parallel_table(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    xs = cx.table(x, path, mod)
    mods = children(mod)
    if len(xs) < len(mods):
        raise module_error(path, mod, f"has {len(mods)} branches but receives a table of {len(xs)} values")
    return [cx.module(child, _join(path, i), xs[i - 1]) for i, child in enumerate(mods, 1)]


def _join_axis(cx: ImportContext, mod: T7Object, path: str, first: str, key: str) -> int:
    """Lua's 1-based ``dimension`` -> a 0-based axis; ``nInputDims`` shifts it by one for a batched input."""
    dim = _int(mod, key, path)
    n_input_dims = mod.get("nInputDims")
    rank = cx.rank.get(first)
    if dim < 0:
        return dim  # counted from the end, as Lua does (-1 is the last dimension)
    if isinstance(n_input_dims, int | float) and rank is not None and rank == int(n_input_dims) + 1:
        dim += 1
    return dim - 1


@IMPORTERS.register("Concat", produces=["Concat"])
def concat(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    outs = [cx.tensor(cx.module(c, _join(path, i), x), path, mod) for i, c in enumerate(children(mod), 1)]
    axis = _join_axis(cx, mod, path, outs[0], "dimension")
    return cx.add("Concat", outs, _nid(path, "Concat"), attrs={"axis": axis})


@IMPORTERS.register("JoinTable", produces=["Concat"])
def join_table(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    xs = [cx.tensor(v, path, mod) for v in cx.table(x, path, mod)]
    axis = _join_axis(cx, mod, path, xs[0], "dimension")
    return cx.add("Concat", xs, _nid(path, "Concat"), attrs={"axis": axis})


@IMPORTERS.register("CAddTable", produces=["Add", "Sum"])
def cadd_table(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    xs = [cx.tensor(v, path, mod) for v in cx.table(x, path, mod)]
    return cx.add("Add" if len(xs) == 2 else "Sum", xs, _nid(path, "Add"))


@IMPORTERS.register("CMulTable", produces=["Mul"])
def cmul_table(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    xs = [cx.tensor(v, path, mod) for v in cx.table(x, path, mod)]
    out = xs[0]
    for i, other in enumerate(xs[1:], 1):
        out = cx.add("Mul", [out, other], _nid(path, "Mul") + (f"_{i}" if i > 1 else ""))
    return out


@IMPORTERS.register("SelectTable")
def select_table(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    xs = cx.table(x, path, mod)
    index = _int(mod, "index", path)
    i = index - 1 if index > 0 else len(xs) + index
    if not 0 <= i < len(xs):
        raise module_error(path, mod, f"selects entry {index} of a table of {len(xs)}")
    return xs[i]


@IMPORTERS.register("Identity", "Dropout", "SpatialDropout", produces=["Identity", "Mul"])
def identity(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    if not isinstance(x, str):
        return x  # Identity passes a table through
    name = mod.class_name.rsplit(".", 1)[-1]
    if name != "Identity" and not (name == "Dropout" and mod.get("v2") is True):
        # inference: Dropout without v2 (files saved before 2015) and SpatialDropout scale by (1 - p)
        keep = 1.0 - _float(mod, "p", path, 0.5)
        if keep != 1.0:
            scale = cx.const(np.asarray(keep, dtype=cx.dtype), _nid(path, "Mul") + ".scale")
            return cx.add("Mul", [x, scale], _nid(path, "Mul"))
    return cx.add("Identity", [x], _nid(path, "Identity"))


# -- layers with weights ----------------------------------------------------------------------------------------
def _wb(cx: ImportContext, mod: T7Object, path: str) -> dict[str, np.ndarray]:
    out = {"weight": cx.weight(mod, "weight", path)}
    bias = cx.weight(mod, "bias", path, required=False)
    if bias is not None:
        out["bias"] = bias
    return out  # type: ignore[return-value]


@IMPORTERS.register("Linear", produces=["Linear"])
def linear(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    w = _wb(cx, mod, path)
    if w["weight"].ndim != 2:
        raise module_error(path, mod, f"weight must be 2-D. Received: shape {w['weight'].shape}")
    return cx.add("Linear", [cx.tensor(x, path, mod)], _nid(path, "Linear"), weights=w)


def _kernel(mod: T7Object, path: str) -> tuple[list[int], list[int], list[int]]:
    k = [_int(mod, "kH", path), _int(mod, "kW", path)]
    s = [_int(mod, "dH", path, 1), _int(mod, "dW", path, 1)]
    p = [_int(mod, "padH", path, 0), _int(mod, "padW", path, 0)]
    return k, s, p


@IMPORTERS.register(
    "SpatialConvolution", "SpatialConvolutionMM", "SpatialDilatedConvolution", produces=["Conv"]
)  # fmt: skip
def conv(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    w = _wb(cx, mod, path)
    k, s, p = _kernel(mod, path)
    groups = _int(mod, "groups", path, 1)
    n_out = _int(mod, "nOutputPlane", path, w["weight"].shape[0])
    if w["weight"].ndim == 2:  # SpatialConvolutionMM keeps [nOut, nIn*kH*kW]
        w["weight"] = w["weight"].reshape(n_out, -1, k[0], k[1])
    if w["weight"].ndim != 4:
        raise module_error(path, mod, f"weight must be 4-D. Received: shape {w['weight'].shape}")
    attrs = {"kernel_shape": k, "strides": s, "pads": p + p, "group": groups}
    if "dilationH" in mod.fields or "dilationW" in mod.fields:
        attrs["dilations"] = [_int(mod, "dilationH", path, 1), _int(mod, "dilationW", path, 1)]
    return cx.add("Conv", [cx.tensor(x, path, mod)], _nid(path, "Conv"), attrs=attrs, weights=w)


@IMPORTERS.register("SpatialFullConvolution", produces=["ConvTranspose"])
def full_conv(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    w = _wb(cx, mod, path)
    k, s, p = _kernel(mod, path)
    adj = [_int(mod, "adjH", path, 0), _int(mod, "adjW", path, 0)]
    groups = _int(mod, "groups", path, 1)
    if w["weight"].ndim != 4:  # [nIn, nOut/groups, kH, kW], ONNX's ConvTranspose layout
        raise module_error(path, mod, f"weight must be 4-D. Received: shape {w['weight'].shape}")
    attrs = {"kernel_shape": k, "strides": s, "pads": p + p, "output_padding": adj, "group": groups}
    return cx.add("ConvTranspose", [cx.tensor(x, path, mod)], _nid(path, "ConvTranspose"), attrs=attrs, weights=w)


@IMPORTERS.register("BatchNormalization", "SpatialBatchNormalization", produces=["BatchNormalization"])
def batch_norm(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    eps = _float(mod, "eps", path, 1e-5)
    mean = cx.weight(mod, "running_mean", path)
    assert mean is not None
    var = cx.weight(mod, "running_var", path, required=False)
    if var is None:  # files from before 2016 keep 1 / sqrt(var + eps)
        std = cx.weight(mod, "running_std", path)
        assert std is not None
        var = (1.0 / np.square(std.astype(np.float64)) - eps).astype(cx.dtype)
    c = mean.shape[0]
    scale = cx.weight(mod, "weight", path, required=False)
    bias = cx.weight(mod, "bias", path, required=False)
    weights = {
        "scale": scale if scale is not None else np.ones(c, cx.dtype),
        "bias": bias if bias is not None else np.zeros(c, cx.dtype),
        "mean": mean,
        "var": var,
    }
    return cx.add("BatchNormalization", [cx.tensor(x, path, mod)], _nid(path, "BatchNormalization"),
                  attrs={"epsilon": eps}, weights=weights)  # fmt: skip


@IMPORTERS.register("InstanceNormalization", produces=["InstanceNormalization"])
def instance_norm(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    # fast-neural-style's module: statistics of each instance, at inference too (as OpenCV runs it)
    eps = _float(mod, "eps", path, 1e-5)
    scale = cx.weight(mod, "weight", path, required=False)
    bias = cx.weight(mod, "bias", path, required=False)
    c = _int(mod, "nOutput", path, scale.shape[0] if scale is not None else 0)
    weights = {
        "scale": scale if scale is not None else np.ones(c, cx.dtype),
        "bias": bias if bias is not None else np.zeros(c, cx.dtype),
    }
    return cx.add("InstanceNormalization", [cx.tensor(x, path, mod)], _nid(path, "InstanceNormalization"),
                  attrs={"epsilon": eps}, weights=weights)  # fmt: skip


@IMPORTERS.register("PReLU", produces=["PRelu"])
def prelu(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    t = cx.tensor(x, path, mod)
    slope = cx.weight(mod, "weight", path)
    assert slope is not None
    n = _int(mod, "nOutputPlane", path, 0)
    rank = cx.rank.get(t)
    if n > 0 and rank is not None and rank > 2:  # one slope per channel (axis 1 of a batched input)
        slope = slope.reshape(n, *([1] * (rank - 2)))
    elif n == 0:
        slope = slope.reshape(1)
    return cx.add("PRelu", [t], _nid(path, "PRelu"), weights={"slope": slope})


# -- activations -------------------------------------------------------------------------------------------------
def _simple(op: str) -> Any:
    def convert(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
        return cx.add(op, [cx.tensor(x, path, mod)], _nid(path, op))

    return convert


for _name, _op in (("ReLU", "Relu"), ("Tanh", "Tanh"), ("Sigmoid", "Sigmoid")):
    IMPORTERS.register(_name, produces=[_op])(_simple(_op))


@IMPORTERS.register("ELU", produces=["Elu"])
def elu(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    alpha = _float(mod, "alpha", path, 1.0)
    return cx.add("Elu", [cx.tensor(x, path, mod)], _nid(path, "Elu"), attrs={"alpha": alpha})


@IMPORTERS.register("LeakyReLU", produces=["LeakyRelu"])
def leaky_relu(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    alpha = _float(mod, "negval", path, 0.01)
    return cx.add("LeakyRelu", [cx.tensor(x, path, mod)], _nid(path, "LeakyRelu"), attrs={"alpha": alpha})


def _softmax_axis(cx: ImportContext, t: str) -> int:
    # Lua: 1-D and 3-D inputs (unbatched) normalise dimension 1; 2-D and 4-D (batched) dimension 2
    rank = cx.rank.get(t)
    return 0 if rank in (1, 3) else 1


@IMPORTERS.register("SoftMax", produces=["Softmax"])
def softmax(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    t = cx.tensor(x, path, mod)
    return cx.add("Softmax", [t], _nid(path, "Softmax"), attrs={"axis": _softmax_axis(cx, t)})


@IMPORTERS.register("LogSoftMax", produces=["LogSoftmax"])
def log_softmax(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    t = cx.tensor(x, path, mod)
    return cx.add("LogSoftmax", [t], _nid(path, "LogSoftmax"), attrs={"axis": _softmax_axis(cx, t)})


# -- pooling ------------------------------------------------------------------------------------------------------
@IMPORTERS.register("SpatialMaxPooling", "SpatialAveragePooling", produces=["MaxPool", "AveragePool"])
def pooling(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    k, s, p = _kernel(mod, path)
    ceil = int(bool(mod.get("ceil_mode")))
    attrs: dict[str, Any] = {"kernel_shape": k, "strides": s, "pads": p + p, "ceil_mode": ceil}
    if mod.class_name.endswith("AveragePooling"):
        if mod.get("divide") is False:
            raise module_error(path, mod, "divide=false (sum pooling) is not supported")
        attrs["count_include_pad"] = int(mod.get("count_include_pad", True) is not False)  # Lua's default: true
        op = "AveragePool"
    else:
        op = "MaxPool"
    return cx.add(op, [cx.tensor(x, path, mod)], _nid(path, op), attrs=attrs)


# -- shapes -------------------------------------------------------------------------------------------------------
@IMPORTERS.register("View", "Reshape", produces=["Reshape", "Constant"])
def view(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    t = cx.tensor(x, path, mod)
    sizes = _ints(mod.get("size"))
    if sizes is None:
        raise module_error(path, mod, "has no 'size'")
    rank = cx.rank.get(t)
    if mod.class_name.endswith("Reshape"):
        shape = sizes if mod.get("batchMode") is False else [0, *sizes]
    elif -1 in sizes:
        n_dims = mod.get("numInputDims")
        batched = isinstance(n_dims, int | float) and rank is not None and rank > int(n_dims)
        shape = [0, *sizes] if batched else sizes  # Lua keeps the batch only when numInputDims says so
    else:
        shape = [-1, *sizes]  # the leading dims collapse into the batch (kept even when it is 1; see docs)
    shape_name = cx.const(np.asarray(shape, dtype=np.int64), _nid(path, "Reshape") + ".shape")
    return cx.add("Reshape", [t, shape_name], _nid(path, "Reshape"), rank=len(shape))


@IMPORTERS.register("Transpose", produces=["Transpose"])
def transpose(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    t = cx.tensor(x, path, mod)
    rank = cx.rank.get(t)
    if rank is None:
        raise module_error(path, mod, "needs the input's rank (give from_torch7 an input_shape)")
    pairs = mod.get("permutations")
    swaps = pairs.array() if hasattr(pairs, "array") else None
    if swaps is None:
        raise module_error(path, mod, "has no 'permutations' array")
    shift = 0
    n_dims = mod.get("numInputDims")
    if isinstance(n_dims, int | float) and rank > int(n_dims):
        shift = rank - int(n_dims)
    perm = list(range(rank))
    for pair in swaps:
        ab = _ints(pair)
        if ab is None or len(ab) != 2 or not all(1 <= d + shift <= rank for d in ab):
            raise module_error(path, mod, f"bad permutation {ab} for a rank-{rank} input")
        a, b = ab[0] - 1 + shift, ab[1] - 1 + shift
        perm[a], perm[b] = perm[b], perm[a]
    return cx.add("Transpose", [t], _nid(path, "Transpose"), attrs={"perm": perm})


@IMPORTERS.register("SpatialZeroPadding", "SpatialReflectionPadding", "SpatialReplicationPadding",
                    produces=["Pad", "Constant"])  # fmt: skip
def spatial_padding(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    t = cx.tensor(x, path, mod)
    rank = cx.rank.get(t) or 4
    left, right = _int(mod, "pad_l", path), _int(mod, "pad_r", path, 0)
    top, bottom = _int(mod, "pad_t", path, 0), _int(mod, "pad_b", path, 0)
    lead = [0] * (rank - 2)
    pads = np.asarray([*lead, top, left, *lead, bottom, right], dtype=np.int64)  # negative pads crop, as in Lua
    mode = {"SpatialZeroPadding": "constant", "SpatialReflectionPadding": "reflect",
            "SpatialReplicationPadding": "edge"}[mod.class_name.rsplit(".", 1)[-1]]  # fmt: skip
    pads_name = cx.const(pads, _nid(path, "Pad") + ".pads")
    return cx.add("Pad", [t, pads_name], _nid(path, "Pad"), attrs={"mode": mode})


@IMPORTERS.register("SpatialUpSamplingNearest", produces=["Resize", "Constant"])
def upsampling_nearest(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    t = cx.tensor(x, path, mod)
    s = _float(mod, "scale_factor", path)
    rank = cx.rank.get(t) or 4
    scales = cx.const(np.asarray([1.0] * (rank - 2) + [s, s], dtype=np.float32), _nid(path, "Resize") + ".scales")
    attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    return cx.add("Resize", [t, "", scales], _nid(path, "Resize"), attrs=attrs)


@IMPORTERS.register("MulConstant", produces=["Mul", "Constant"])
def mul_constant(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    t = cx.tensor(x, path, mod)
    c = cx.const(np.asarray(_float(mod, "constant_scalar", path), dtype=cx.dtype), _nid(path, "Mul") + ".constant")
    return cx.add("Mul", [t, c], _nid(path, "Mul"))


@IMPORTERS.register("Normalize", produces=["LpNormalization"])
def normalize(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    p = _float(mod, "p", path, 2.0)
    if p not in (1.0, 2.0):
        raise module_error(path, mod, f"p={p} is not supported. Expected 1 or 2")
    # Lua divides by (norm + eps), eps=1e-10; k5 divides by the norm (0 for a zero norm)
    return cx.add("LpNormalization", [cx.tensor(x, path, mod)], _nid(path, "LpNormalization"),
                  attrs={"axis": -1, "p": int(p)})  # fmt: skip


@IMPORTERS.register("SpatialCrossMapLRN", produces=["LRN"])
def cross_map_lrn(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    attrs = {"size": _int(mod, "size", path), "alpha": _float(mod, "alpha", path),
             "beta": _float(mod, "beta", path), "bias": _float(mod, "k", path, 1.0)}  # fmt: skip
    return cx.add("LRN", [cx.tensor(x, path, mod)], _nid(path, "LRN"), attrs=attrs)


# -- modules of the published Lua models (fast-neural-style, OpenFace) --------------------------------------------
@IMPORTERS.register("Inception", "Decorator", "SpatialLPPooling")
def decorator(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    """Containers that run their children in sequence (``Inception`` wraps a ``DepthConcat``)."""
    return sequential(cx, mod, path, x)


@IMPORTERS.register("DepthConcat", produces=["Concat"])
def depth_concat(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    # Lua zero-pads smaller branches to the largest spatial size; k5 joins branches of equal sizes (Concat checks)
    return concat(cx, mod, path, x)


@IMPORTERS.register("TotalVariation", produces=["Identity"])
def total_variation(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    """fast-neural-style's regulariser: identity forward."""
    return cx.add("Identity", [cx.tensor(x, path, mod)], _nid(path, "Identity"))


@IMPORTERS.register("ShaveImage", produces=["Pad", "Constant"])
def shave_image(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    """fast-neural-style's crop of ``size`` pixels from each side: a Pad by minus ``size``."""
    t = cx.tensor(x, path, mod)
    n = _int(mod, "size", path)
    rank = cx.rank.get(t) or 4
    lead = [0] * (rank - 2)
    pads = cx.const(np.asarray([*lead, -n, -n, *lead, -n, -n], dtype=np.int64), _nid(path, "Pad") + ".pads")
    return cx.add("Pad", [t, pads], _nid(path, "Pad"), attrs={"mode": "constant"})


@IMPORTERS.register("Square", "Sqrt", "Power", produces=["Mul", "Sqrt", "Pow", "Constant"])
def power(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    t = cx.tensor(x, path, mod)
    name = mod.class_name.rsplit(".", 1)[-1]
    if name == "Square":
        return cx.add("Mul", [t, t], _nid(path, "Mul"))
    if name == "Sqrt":
        return cx.add("Sqrt", [t], _nid(path, "Sqrt"))
    p = cx.const(np.asarray(_float(mod, "pow", path), dtype=cx.dtype), _nid(path, "Pow") + ".exponent")
    return cx.add("Pow", [t, p], _nid(path, "Pow"))


@IMPORTERS.register("Abs", produces=["Abs"])
def absolute(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    return cx.add("Abs", [cx.tensor(x, path, mod)], _nid(path, "Abs"))


@IMPORTERS.register("HardTanh", "Clamp", "ReLU6", produces=["Clip", "Constant"])
def hard_tanh(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    t = cx.tensor(x, path, mod)
    relu6 = mod.class_name.endswith("ReLU6")
    low = _float(mod, "min_val", path, 0.0 if relu6 else -1.0)
    high = _float(mod, "max_val", path, 6.0 if relu6 else 1.0)
    lo = cx.const(np.asarray(low, dtype=cx.dtype), _nid(path, "Clip") + ".min")
    hi = cx.const(np.asarray(high, dtype=cx.dtype), _nid(path, "Clip") + ".max")
    return cx.add("Clip", [t, lo, hi], _nid(path, "Clip"))


@IMPORTERS.register("SpatialSoftMax", produces=["Softmax"])
def spatial_softmax(cx: ImportContext, mod: T7Object, path: str, x: Value) -> Value:
    """Softmax over the channels at every position (axis 1 of a batched input)."""
    t = cx.tensor(x, path, mod)
    return cx.add("Softmax", [t], _nid(path, "Softmax"), attrs={"axis": 0 if cx.rank.get(t) == 3 else 1})
