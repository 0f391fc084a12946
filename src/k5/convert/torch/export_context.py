"""The shared context of a PyTorch -> k5 export: :class:`Exporter` (the state of one conversion, which every
converter receives), :class:`ExportConst` (a tensor known at export time) and :class:`Sym` (a size known at run time).

A leaf module: the converter modules (:mod:`.export_aten`, :mod:`.export_modules`...) and the driver
(:mod:`.exporter`) import it; it imports neither. ``torch`` is imported inside functions only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from k5.convert.naming import unique_name
from k5.convert.torch.dtypes import to_numpy
from k5.errors import ConversionError
from k5.format.model import Node
from k5.ops import find_schema

__all__ = ["ExportConst", "Exporter", "Sym", "aten_key", "module_key"]


def module_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def aten_key(target: Any) -> str:
    if isinstance(target, str):
        return target
    if callable(target) and getattr(target, "__module__", "") == "_operator":
        return f"operator.{target.__name__}"
    return str(target)


@dataclass
class ExportConst:
    """A tensor known at export time (a parameter, buffer, or a folded value); becomes a ``Constant`` on use."""

    value: Any  # torch.Tensor
    hint: str
    name: str | None = None  # the k5 tensor once materialised


@dataclass
class Sym:
    """A symbolic integer (dynamic size) known only at run time."""

    value: Any  # torch.SymInt


_ID_BAD = re.compile(r"[^A-Za-z0-9_.\-]")


class Exporter:
    """The state of one conversion: emitted nodes, names, and what each FX value became."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.ids: set[str] = set()
        self.names: set[str] = set()
        self.env: dict[str, Any] = {}  # FX node name -> k5 tensor name | ExportConst | Sym | python value | list
        self.meta: dict[str, Any] = {}  # k5 tensor name -> fake tensor (shape/dtype) when known
        self.scope = ""  # the module path the current FX node runs in
        self.fx_nodes: dict[str, Any] = {}  # FX node name -> FX node
        self.leaf_paths: set[str] = set()  # paths of modules without children
        self.reserved: set[str] = set()  # parameter/buffer paths: only their own Constant may take these ids
        self.sym_sources: dict[Any, tuple[str, int]] = {}  # sympy symbol -> (graph input, axis)
        self._sym_cache: dict[str, str] = {}
        self._const_cache: dict[tuple[str, bytes, tuple[int, ...]], str] = {}

    # -- naming ------------------------------------------------------------------------------------------------
    def new_id(self, base: str, *, owner: bool = False) -> str:
        """A unique node id from ``base``; ids reserved for parameters/buffers need ``owner=True``."""
        base = _ID_BAD.sub("_", base.strip(".")) or "node"
        return unique_name(base, self.ids, refused=None if owner else self.reserved.__contains__)

    def new_name(self, base: str) -> str:
        return unique_name(base, self.names)

    def scoped(self, what: str) -> str:
        return f"{self.scope}.{what}" if self.scope else what

    # -- emitting ----------------------------------------------------------------------------------------------
    def add(
        self,
        op: str,
        inputs: Sequence[str | None],
        *,
        attrs: Mapping[str, Any] | None = None,
        weights: Mapping[str, Any] | None = None,
        id: str | None = None,
        outputs: int | Sequence[str] = 1,
        meta: Any = None,
        own: bool = False,
    ) -> list[str]:
        """Append a node; returns its output tensor names. ``outputs``: a count, or output suffixes."""
        if id is None and op != "Constant" and self.scope in self.leaf_paths and self.scope not in self.ids:
            id = self.scope  # the only op of a leaf module (nn.ReLU, nn.GELU...) takes its path
        node_id = self.new_id(id if id is not None else self.scoped(op.lower()), owner=own)
        if isinstance(outputs, int):
            suffixes = [""] if outputs == 1 else [f":{i}" for i in range(outputs)]
        else:
            suffixes = [f":{s}" for s in outputs]
        outs = [self.new_name(node_id + s) for s in suffixes]
        _check_attrs(op, attrs or {}, node_id)
        weights = {k: to_numpy(v) if not isinstance(v, np.ndarray) else v for k, v in (weights or {}).items()}
        ins = [i or "" for i in inputs]
        while ins and not ins[-1]:
            ins.pop()
        self.nodes.append(Node(node_id, op, ins, outs, dict(attrs or {}), weights))
        if meta is not None and len(outs) == 1:
            self.meta[outs[0]] = meta
        return outs

    def add1(self, op: str, inputs: Sequence[str | None], **kw: Any) -> str:
        return self.add(op, inputs, **kw)[0]

    def const(self, value: Any, hint: str = "const", *, dtype: str | None = None, own: bool = False) -> str:
        """A ``Constant`` node holding ``value`` (array, tensor or python number/list); returns its output."""
        if hasattr(value, "detach"):
            arr = to_numpy(value)
        else:
            arr = np.asarray(value)
            if dtype is None and arr.dtype == np.float64:
                arr = arr.astype(np.float32)
        if dtype is not None:
            from k5.format.dtypes import dtype_of

            arr = arr.astype(dtype_of(dtype).numpy)
        small = arr.size <= 16
        key = (str(arr.dtype), arr.tobytes(), arr.shape) if small else None
        if key is not None and key in self._const_cache:
            return self._const_cache[key]
        value = np.asarray(arr, order="C")  # shares a C-contiguous tensor's memory (weights are not copied)
        out = self.add1("Constant", [], weights={"value": value}, id=hint, own=own)
        if key is not None:
            self._const_cache[key] = out
        return out

    def ints(self, values: Sequence[int], hint: str = "const") -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), hint)

    # -- reading FX values -------------------------------------------------------------------------------------
    def value(self, arg: Any) -> Any:
        """An FX argument as what it became (k5 name, Const, Sym, python value); lists recursively."""
        import torch.fx

        if isinstance(arg, torch.fx.Node):
            if arg.name not in self.env:
                raise ConversionError(f"FX value {arg.name!r} is used outside the layer that computes it")
            return self.env[arg.name]
        if isinstance(arg, (list, tuple)):
            return [self.value(a) for a in arg]
        return arg

    def t(self, arg: Any, *, dtype: str | None = None) -> str:
        """An FX argument as a k5 tensor name (constants and symbolic sizes are materialised)."""
        v = self.value(arg) if not isinstance(arg, (str, ExportConst, Sym)) else arg
        if isinstance(v, str):
            return v
        if isinstance(v, ExportConst):
            if v.name is None:
                v.name = self.const(v.value, v.hint, own=v.hint in self.reserved)
                self.meta[v.name] = v.value
            return v.name
        if isinstance(v, Sym):
            return self.sym(v.value)
        if isinstance(v, (bool, int, float)):
            return self.const(np.asarray(v), self.scoped("scalar"), dtype=dtype)
        if isinstance(v, list) and all(isinstance(x, (int, Sym)) for x in v):
            return self.shape_tensor(v)
        raise ConversionError(f"cannot use {v!r} as a tensor", where=f"module {self.scope or '(root)'}")

    def fake(self, arg: Any) -> Any:
        """The fake tensor (shape, dtype) of an FX node argument or a k5 tensor name."""
        import torch.fx

        if isinstance(arg, torch.fx.Node):
            return arg.meta.get("val")
        if isinstance(arg, ExportConst):
            return arg.value
        if isinstance(arg, str):
            return self.meta.get(arg)
        return None

    def rank(self, arg: Any) -> int:
        f = self.fake(arg)
        if f is None:
            raise ConversionError(f"rank of {arg} is unknown", where=f"module {self.scope or '(root)'}")
        return f.dim()

    # -- symbolic sizes ----------------------------------------------------------------------------------------
    def sym(self, s: Any) -> str:
        """A SymInt (or int) as a k5 int64 tensor of shape [1]."""
        import sympy

        if isinstance(s, int):
            return self.ints([s])
        expr = s.node.expr if hasattr(s, "node") else s
        return self._sym_expr(sympy.sympify(expr))

    def _sym_expr(self, expr: Any) -> str:
        import sympy

        key = str(expr)
        if key in self._sym_cache:
            return self._sym_cache[key]
        if expr.is_Integer:
            out = self.ints([int(expr)])
        elif expr.is_Symbol:
            if expr not in self.sym_sources:
                raise ConversionError(f"symbolic size {expr} does not come from an input shape")
            name, axis = self.sym_sources[expr]
            out = self.add1("Shape", [name], attrs={"start": axis, "end": axis + 1}, id=f"{name}.shape{axis}")
        elif isinstance(expr, sympy.Add):
            out = self._fold("Add", expr.args)
        elif isinstance(expr, sympy.Mul):
            out = self._fold("Mul", expr.args)
        elif type(expr).__name__ == "FloorDiv":
            a, b = (self._sym_expr(x) for x in expr.args)
            out = self.add1("Div", [a, b], id=f"sym.{key}")
        elif type(expr).__name__ in ("Mod", "PythonMod"):
            a, b = (self._sym_expr(x) for x in expr.args)
            out = self.add1("Mod", [a, b], id=f"sym.{key}")
        else:
            raise ConversionError(f"cannot express the symbolic size {expr} ({type(expr).__name__}) with k5 ops")
        self._sym_cache[key] = out
        return out

    def _fold(self, op: str, args: Sequence[Any]) -> str:
        out = self._sym_expr(args[0])
        for a in args[1:]:
            out = self.add1(op, [out, self._sym_expr(a)], id="sym")
        return out

    def shape_tensor(self, dims: Sequence[Any]) -> str:
        """An int64 1-D tensor from ints and SymInts/Sym values."""
        plain = [d.value if isinstance(d, Sym) else d for d in dims]
        if all(isinstance(d, int) for d in plain):
            return self.ints(plain)
        parts: list[str] = []
        run: list[int] = []
        for d in plain:
            if isinstance(d, int):
                run.append(d)
                continue
            if run:
                parts.append(self.ints(run))
                run = []
            parts.append(self.sym(d))
        if run:
            parts.append(self.ints(run))
        return self.add1("Concat", parts, attrs={"axis": 0}, id="shape")

    def reshape_dims(self, src: Any, dims: Sequence[Any]) -> list[int] | str:
        """Target dims for Reshape: all static, or with one dynamic dim as -1 or copied ones as 0."""
        plain = [d.value if isinstance(d, Sym) else d for d in dims]
        dynamic = [i for i, d in enumerate(plain) if not isinstance(d, int)]
        if not dynamic:
            return [int(d) for d in plain]
        src_shape = list(self.fake(src).shape) if self.fake(src) is not None else []
        out: list[Any] = list(plain)
        for i in dynamic:
            if i < len(src_shape) and _same_sym(src_shape[i], plain[i]):
                out[i] = 0
        still = [i for i in dynamic if out[i] != 0]
        if not still:
            return [int(d) for d in out]
        if len(still) == 1 and all(isinstance(d, int) and d != -1 for i, d in enumerate(out) if i != still[0]):
            out[still[0]] = -1
            return [int(d) for d in out]
        return self.shape_tensor(plain)


def _check_attrs(op: str, attrs: Mapping[str, Any], node_id: str) -> None:
    """The op and its attribute names as the op registry declares them (a converter typo fails here, not later)."""
    schema = find_schema(op)
    if schema is None:
        raise ConversionError(f"op {op!r} is not in the k5 op registry", where=f"node {node_id!r}")
    unknown = sorted(set(attrs) - set(schema.attrs))
    if unknown:
        raise ConversionError(
            f"{op} has no attribute(s) {unknown}; the registry declares {sorted(schema.attrs)}",
            where=f"node {node_id!r}",
        )


def _same_sym(a: Any, b: Any) -> bool:
    if isinstance(a, int) or isinstance(b, int):
        return False
    try:
        return str(a.node.expr) == str(b.node.expr)
    except AttributeError:
        return False
