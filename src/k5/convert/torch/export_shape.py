"""ATen converters for shapes, data movement and indexing: reshape, permute, slice, cat, split, expand, pad,
fills, ``arange``, resize, ``gather``, advanced indexing (``x[idx]``), ``diff``, and bit logic (``&``/``|``).

Same contract as :mod:`.export_aten`: ``fn(cx, node) -> value``, registered in
:data:`~k5.convert.torch.registry.ATEN_EXPORTERS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from k5.convert.torch.dtypes import k5_dtype
from k5.convert.torch.export_aten import args, cast, operand, reg
from k5.convert.torch.export_context import Exporter, Sym
from k5.errors import ConversionError

__all__: list[str] = []

INT64_MAX = 2**63 - 1



def wrap_axis(d: int, rank: int) -> int:
    """A PyTorch dim (negative counts from the end) as a non-negative axis; 0 for a scalar."""
    return d % rank if rank else 0


def _out_dtype(n: Any) -> str:
    return k5_dtype(n.meta["val"].dtype)


# --- shape and data movement -------------------------------------------------------------------------------------
@reg("view.default", "reshape.default", "_unsafe_view.default", "flatten.using_ints", "unflatten.int",
     produces=["Reshape"])  # fmt: skip
def reshape(cx: Exporter, n: Any) -> Any:
    src = n.args[0]
    out = n.meta["val"]
    if list(out.shape) == list(cx.fake(src).shape):
        return cx.t(src)
    dims = cx.reshape_dims(src, list(out.shape))
    shape = dims if isinstance(dims, str) else cx.ints(dims)
    return cx.add1("Reshape", [cx.t(src), shape])


@reg("permute.default", produces=["Transpose"])
def permute(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    perm = [wrap_axis(d, rank) for d in a["dims"]]
    if perm == list(range(rank)):
        return cx.t(a["self"])
    return cx.add1("Transpose", [cx.t(a["self"])], attrs={"perm": perm})


@reg("transpose.int", produces=["Transpose"])
def transpose(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    perm = list(range(rank))
    d0, d1 = wrap_axis(a["dim0"], rank), wrap_axis(a["dim1"], rank)
    if d0 == d1:
        return cx.t(a["self"])
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return cx.add1("Transpose", [cx.t(a["self"])], attrs={"perm": perm})


@reg("t.default", "numpy_T.default", produces=["Transpose"])
def t(cx: Exporter, n: Any) -> Any:
    rank = cx.rank(n.args[0])
    if rank < 2:
        return cx.t(n.args[0])
    return cx.add1("Transpose", [cx.t(n.args[0])], attrs={"perm": list(reversed(range(rank)))})


@reg("unsqueeze.default", produces=["Unsqueeze"])
def unsqueeze(cx: Exporter, n: Any) -> Any:
    a = args(n)
    d = wrap_axis(a["dim"], cx.rank(a["self"]) + 1)
    return cx.add1("Unsqueeze", [cx.t(a["self"]), cx.ints([d])])


@reg("squeeze.dim", "squeeze.dims", "squeeze.default", produces=["Squeeze"])
def squeeze(cx: Exporter, n: Any) -> Any:
    a = args(n)
    fake = cx.fake(a["self"])
    rank = fake.dim()
    dims = a.get("dim", None)
    if dims is None:
        dims = range(rank)
    dims = [dims] if isinstance(dims, int) else list(dims)
    axes = [wrap_axis(d, rank) for d in dims if fake.shape[wrap_axis(d, rank)] == 1]
    if not axes:
        return cx.t(a["self"])
    return cx.add1("Squeeze", [cx.t(a["self"]), cx.ints(axes)])


@reg("select.int", produces=["Gather"])
def select(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    idx = cx.value(a["index"]) if not isinstance(a["index"], int) else a["index"]
    if isinstance(idx, int):
        index = cx.const(np.asarray(idx, np.int64), cx.scoped("index"))
    else:
        index = cx.add1("Squeeze", [cx.t(idx), cx.ints([0])])
    return cx.add1("Gather", [cx.t(a["self"]), index], attrs={"axis": wrap_axis(a["dim"], rank)})


@reg("index_select.default", produces=["Gather"])
def index_select(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    return cx.add1("Gather", [cx.t(a["self"]), cx.t(a["index"])], attrs={"axis": wrap_axis(a["dim"], rank)})


def _bound(cx: Exporter, v: Any, default: int) -> Any:
    v = cx.value(v) if not isinstance(v, (int, type(None))) else v
    if v is None:
        return default
    if isinstance(v, Sym):
        return v
    return int(v)


@reg("slice.Tensor", produces=["Slice"])
def slice_(cx: Exporter, n: Any) -> Any:
    a = args(n)
    fake = cx.fake(a["self"])
    rank = fake.dim()
    d = wrap_axis(a["dim"], rank)
    start = _bound(cx, a["start"], 0)
    end = _bound(cx, a["end"], INT64_MAX)
    step = int(a["step"] or 1)
    size = fake.shape[d]
    if (
        start == 0
        and step == 1
        and (end == INT64_MAX or (isinstance(end, int) and isinstance(size, int) and end >= size))
    ):
        return cx.t(a["self"])
    starts = cx.shape_tensor([start])
    ends = cx.shape_tensor([min(end, INT64_MAX) if isinstance(end, int) else end])
    return cx.add1("Slice", [cx.t(a["self"]), starts, ends, cx.ints([d]), cx.ints([step])])


@reg("narrow.default", produces=["Slice"])
def narrow(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    d = wrap_axis(a["dim"], rank)
    start = _bound(cx, a["start"], 0)
    length = _bound(cx, a["length"], 0)
    if not isinstance(start, int) or not isinstance(length, int):
        raise ConversionError("narrow with a run-time start or length")
    ins = [cx.t(a["self"]), cx.ints([start]), cx.ints([start + length]), cx.ints([d])]
    return cx.add1("Slice", ins)


@reg("cat.default", "concat.default", produces=["Concat"])
def cat(cx: Exporter, n: Any) -> Any:
    a = args(n)
    tensors = [x for x in a["tensors"] if cx.fake(x) is None or cx.fake(x).numel() != 0]
    rank = cx.rank(tensors[0])
    if len(tensors) == 1:
        return cx.t(tensors[0])
    dt = _out_dtype(n)
    return cx.add1("Concat", [operand(cx, x, dt) for x in tensors], attrs={"axis": wrap_axis(a["dim"], rank)})


@reg("stack.default", produces=["Unsqueeze", "Concat"])
def stack(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["tensors"][0]) + 1
    d = wrap_axis(a["dim"], rank)
    parts = [cx.add1("Unsqueeze", [cx.t(x), cx.ints([d])]) for x in a["tensors"]]
    return cx.add1("Concat", parts, attrs={"axis": d})


@reg("split.Tensor", "split_with_sizes.default", "chunk.default", "unbind.int", "split.sizes",
     "tensor_split.sections", produces=["Split", "Squeeze"])  # fmt: skip
def split(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    d = wrap_axis(a["dim"], rank)
    outs = n.meta["val"]
    sizes = [int(o.shape[d]) if "unbind" not in str(n.target) else 1 for o in outs]
    names = cx.add(
        "Split",
        [cx.t(a["self"]), cx.ints(sizes)],
        attrs={"axis": d},
        outputs=len(sizes) if len(sizes) > 1 else 1,
    )
    if "unbind" in str(n.target):
        names = [cx.add1("Squeeze", [x, cx.ints([d])]) for x in names]
    for name, o in zip(names, outs, strict=True):
        cx.meta[name] = o
    return names


@reg("expand.default", "expand_as.default", produces=["Expand"])
def expand(cx: Exporter, n: Any) -> Any:
    src = n.args[0]
    shape = list(n.meta["val"].shape)
    if shape == list(cx.fake(src).shape):
        return cx.t(src)
    return cx.add1("Expand", [cx.t(src), cx.shape_tensor(shape)])


@reg("_to_copy.default", "to.dtype", "to.dtype_layout", "type_as.default", "to.device", produces=["Cast"])
def to_dtype(cx: Exporter, n: Any) -> Any:
    src = n.args[0]
    want = _out_dtype(n)
    have = k5_dtype(cx.fake(src).dtype)
    return cast(cx, cx.t(src), want, have)


@reg("tril.default", "triu.default", produces=["Trilu"])
def trilu(cx: Exporter, n: Any) -> Any:
    a = args(n)
    upper = int("triu" in str(n.target))
    k = cx.const(np.asarray(int(a["diagonal"]), np.int64), cx.scoped("k"))
    return cx.add1("Trilu", [cx.t(a["self"]), k], attrs={"upper": upper})


@reg("constant_pad_nd.default", "pad.default", produces=["Pad"])
def pad(cx: Exporter, n: Any) -> Any:
    a = args(n)
    rank = cx.rank(a["self"])
    torch_pads = [int(p) for p in a["pad"]]
    begin, end = [0] * rank, [0] * rank
    for i in range(len(torch_pads) // 2):
        axis = rank - 1 - i
        begin[axis], end[axis] = torch_pads[2 * i], torch_pads[2 * i + 1]
    mode = a.get("mode", "constant") or "constant"
    modes = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
    ins = [cx.t(a["self"]), cx.ints([*begin, *end])]
    value = a.get("value")
    if mode == "constant" and value:
        ins.append(cx.const(np.asarray(value), cx.scoped("value"), dtype=_out_dtype(n)))
    return cx.add1("Pad", ins, attrs={"mode": modes[mode]})


def _fill(cx: Exporter, n: Any, value: float) -> Any:
    out = n.meta["val"]
    dt = k5_dtype(out.dtype)
    from k5.format.dtypes import dtype_of

    v = np.asarray([value]).astype(dtype_of(dt).numpy)
    shape = cx.shape_tensor(list(out.shape))
    return cx.add1("ConstantOfShape", [shape], weights={"value": v})


@reg("zeros.default", "zeros_like.default", "new_zeros.default", "empty.memory_format", "empty_like.default",
     "new_empty.default", produces=["ConstantOfShape"])  # fmt: skip
def zeros(cx: Exporter, n: Any) -> Any:
    return _fill(cx, n, 0)


@reg("ones.default", "ones_like.default", "new_ones.default", produces=["ConstantOfShape"])
def ones(cx: Exporter, n: Any) -> Any:
    return _fill(cx, n, 1)


@reg("full.default", "full_like.default", "new_full.default", produces=["ConstantOfShape"])
def full(cx: Exporter, n: Any) -> Any:
    return _fill(cx, n, float(args(n)["fill_value"]))


@reg("arange.default", "arange.start", "arange.start_step", produces=["Range"])
def arange(cx: Exporter, n: Any) -> Any:
    a = args(n)
    dt = _out_dtype(n)
    start = a.get("start", 0) if "start" in a else 0
    end = a["end"]
    step = a.get("step", 1) or 1

    def scalar(v: Any) -> str:
        v = cx.value(v) if not isinstance(v, (int, float)) else v
        if isinstance(v, Sym):
            s = cx.add1("Squeeze", [cx.t(v), cx.ints([0])])
            return cast(cx, s, dt, "int64")
        return cx.const(np.asarray(v), cx.scoped("range"), dtype=dt)

    return cx.add1("Range", [scalar(start), scalar(end), scalar(step)])


@reg("pixel_shuffle.default", produces=["DepthToSpace"])
def pixel_shuffle(cx: Exporter, n: Any) -> Any:
    a = args(n)
    return cx.add1("DepthToSpace", [cx.t(a["self"])], attrs={"blocksize": int(a["upscale_factor"]), "mode": "CRD"})


def _resize(cx: Exporter, n: Any, mode: str) -> Any:
    a = args(n)
    out = n.meta["val"]
    x = cx.t(a["input"])
    sizes = cx.shape_tensor(list(out.shape))
    attrs: dict[str, Any] = {"mode": mode}
    if mode == "nearest":
        attrs.update(coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    else:
        align = bool(a.get("align_corners"))
        attrs["coordinate_transformation_mode"] = "align_corners" if align else "pytorch_half_pixel"
    scales = a.get("scale_factors")
    if a.get("output_size") is None and scales is not None and mode == "nearest":
        rank = out.dim()
        sc = np.asarray([1.0, 1.0, *[float(s) for s in scales]][:rank], np.float32)
        return cx.add1("Resize", [x, "", cx.const(sc, cx.scoped("scales"))], attrs=attrs)
    return cx.add1("Resize", [x, "", "", sizes], attrs=attrs)


@reg("upsample_nearest1d.vec", "upsample_nearest2d.vec", "upsample_nearest3d.vec", produces=["Resize"])
def upsample_nearest(cx: Exporter, n: Any) -> Any:
    return _resize(cx, n, "nearest")


@reg("upsample_bilinear2d.vec", "upsample_linear1d.vec", "upsample_trilinear3d.vec", produces=["Resize"])
def upsample_linear(cx: Exporter, n: Any) -> Any:
    return _resize(cx, n, "linear")


@reg("sym_size.int", "sym_numel.default", produces=[])
def sym_size(cx: Exporter, n: Any) -> Any:
    v = n.meta["val"]
    return int(v) if isinstance(v, int) else Sym(v)


# --- indexing ----------------------------------------------------------------------------------------------------


@reg("gather.default", produces=["GatherElements"])
def gather(cx: Exporter, n: Any) -> Any:
    a = args(n)
    axis = wrap_axis(a["dim"], cx.rank(a["self"]))
    return cx.add1("GatherElements", [cx.t(a["self"]), cx.t(a["index"])], attrs={"axis": axis})


@reg("index.Tensor", produces=["GatherND", "Expand", "Unsqueeze", "Concat", "Transpose", "Cast"])
def index(cx: Exporter, n: Any) -> Any:
    """``x[i, j]`` with integer index tensors (``None`` for a full slice), as PyTorch places the result's axes."""
    a = args(n)
    x, indices = a["self"], list(a["indices"])
    rank = cx.rank(x)
    axes = [d for d, i in enumerate(indices) if i is not None]
    for d in axes:
        f = cx.fake(indices[d])
        if f is not None and (f.dtype.is_floating_point or str(f.dtype) == "torch.bool"):
            raise ConversionError(f"indexing with a {f.dtype} tensor (k5 supports integer indices only)")
    out = n.meta["val"]
    k = len(axes)
    n_idx = max(cx.rank(indices[d]) for d in axes)
    adjacent = axes == list(range(axes[0], axes[0] + k))
    front = 0 if not adjacent else axes[0]  # where the index dims land in the result
    bshape = list(out.shape[front : front + n_idx])
    target = cx.shape_tensor(bshape)
    rest = [d for d in range(rank) if d not in axes]
    data = cx.t(x)
    if axes != list(range(k)):
        data = cx.add1("Transpose", [data], attrs={"perm": axes + rest})
    cols = []
    for d in axes:
        i = cx.t(indices[d])
        f = cx.fake(indices[d])
        i = cast(cx, i, "int64", k5_dtype(f.dtype) if f is not None else None)
        if f is None or list(f.shape) != bshape:
            i = cx.add1("Expand", [i, target])
        cols.append(cx.add1("Unsqueeze", [i, cx.ints([-1])]))
    idx = cols[0] if k == 1 else cx.add1("Concat", cols, attrs={"axis": -1})
    y = cx.add1("GatherND", [data, idx])
    if front:
        perm = [n_idx + i for i in range(front)] + list(range(n_idx)) + [n_idx + i for i in range(front, len(rest))]
        y = cx.add1("Transpose", [y], attrs={"perm": perm})
    return y


@reg("diff.default", produces=["Concat", "Slice", "Sub"])
def diff(cx: Exporter, n: Any) -> Any:
    """``x[..., 1:] - x[..., :-1]`` along ``dim``, ``n`` times, after concatenating ``prepend``/``append``."""
    a = args(n)
    rank = cx.rank(a["self"])
    d = wrap_axis(a["dim"], rank)
    dt = k5_dtype(n.meta["val"].dtype)
    x = cx.t(a["self"])
    parts = [*([cx.t(a["prepend"])] if a["prepend"] is not None else []), x]
    parts += [cx.t(a["append"])] if a["append"] is not None else []
    if len(parts) > 1:
        x = cx.add1("Concat", parts, attrs={"axis": d})
    big = 2**62
    for _ in range(int(a["n"])):
        hi = cx.add1("Slice", [x, cx.ints([1]), cx.ints([big]), cx.ints([d])])
        lo = cx.add1("Slice", [x, cx.ints([0]), cx.ints([-1]), cx.ints([d])])
        x = cx.add1("Sub", [hi, lo]) if dt != "bool" else cx.add1("Xor", [hi, lo])
    return x


def _bitwise(bool_op: str, int_op: str) -> Any:
    def convert(cx: Exporter, n: Any) -> Any:
        a = args(n)
        dt = k5_dtype(n.meta["val"].dtype)
        op = bool_op if dt == "bool" else int_op
        return cx.add1(op, [operand(cx, a["self"], dt), operand(cx, a["other"], dt)])

    return convert


reg("__and__.Tensor", "__and__.Scalar", produces=["And", "BitwiseAnd"])(_bitwise("And", "BitwiseAnd"))
reg("__or__.Tensor", "__or__.Scalar", produces=["Or", "BitwiseOr"])(_bitwise("Or", "BitwiseOr"))
