"""ATen converters for indexing and bit logic: ``gather``, advanced indexing (``x[idx]``), ``diff`` and ``&``/``|``.

Same contract as :mod:`.export_aten`: ``fn(cx, node) -> value``, registered in
:data:`~k5.convert.torch.registry.ATEN_EXPORTERS`.
"""

from __future__ import annotations

from typing import Any

from k5.convert.torch.dtypes import k5_dtype
from k5.convert.torch.export_aten import args, cast, operand, reg
from k5.convert.torch.exporter import Exporter
from k5.errors import ConversionError

__all__: list[str] = []


def _axis(d: int, rank: int) -> int:
    return d % rank if rank else 0


@reg("gather.default", produces=["GatherElements"])
def gather(cx: Exporter, n: Any) -> Any:
    a = args(n)
    axis = _axis(a["dim"], cx.rank(a["self"]))
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
    d = _axis(a["dim"], rank)
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
