"""The shared context of the k5 -> PyTorch builders: the :class:`Builder` they add to, and the values they pass.

A builder is ``fn(b, node, ins, attrs) -> output value(s)`` (see :data:`BuildFn`): ``ins`` holds, per node input, an
FX node, a :class:`ConstValue` (a value known while building) or None; ``attrs`` are the node's attributes resolved by
its op schema (defaults included). Builders call torch functions through :meth:`Builder.call` (which folds constant
inputs) or add PyTorch layers with :meth:`Builder.module`, and return what they computed.

This module imports no driver and no builder: the builder modules and the driver (:mod:`.importer`) import it.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from k5.convert.torch.dtypes import from_numpy
from k5.errors import ConversionError
from k5.format.hdf5 import CopyOnWrite, LazyTensor
from k5.format.model import Model, Node, as_array

__all__ = [
    "Attrs", "BuildFn", "Builder", "ConstValue", "Unavailable", "ident", "meta_module", "unsupported",
]  # fmt: skip

#: a node's attributes as its op schema resolves them (checked, coerced, completed with the declared defaults)
Attrs = dict[str, Any]


@dataclass(eq=False)
class ConstValue:
    """A value known while building: a tensor from a ``Constant`` node or a folded operation."""

    value: Any  # torch.Tensor
    path: str = ""  # where to register it if the graph needs it as a tensor
    trainable: bool = False
    users: int = 0
    fx: Any = field(default=None, repr=False)  # the get_attr node once materialised
    adopted: bool = False


class Builder:
    """Builds the FX graph and the module tree of the generated module."""

    def __init__(self, model: Model) -> None:
        import torch
        import torch.fx

        self.torch = torch
        self.model = model
        self.root = torch.nn.Module()
        self.graph = torch.fx.Graph()
        self.env: dict[str, Any] = {}
        self.users: dict[str, int] = {}
        self.node: Node | None = None
        self.skip: set[str] = set()  # node ids already handled (folded recurrent chains)
        self.cow = CopyOnWrite()  # memory-mapped weights are handed to torch without a copy (see weight_tensor)

    # -- module tree -------------------------------------------------------------------------------------------
    def place(self, path: str, value: Any, kind: str) -> str:
        """Register ``value`` (module, parameter or buffer) at ``path``; returns the path actually used."""
        torch = self.torch
        parts = [ident(p) for p in path.split(".")] if path else ["node"]
        owner = self.root
        ok = True
        for p in parts[:-1]:
            child = owner._modules.get(p)
            if child is None:
                if hasattr(owner, p):
                    ok = False
                    break
                child = torch.nn.Module()
                owner.add_module(p, child)
            owner = child
        leaf = parts[-1]
        if ok and not hasattr(owner, leaf):
            self._register(owner, leaf, value, kind)
            return ".".join(parts)
        flat = "_".join(parts)
        candidate, n = flat, 1
        while hasattr(self.root, candidate):
            n += 1
            candidate = f"{flat}_{n}"
        self._register(self.root, candidate, value, kind)
        return candidate

    def _register(self, owner: Any, name: str, value: Any, kind: str) -> None:
        if kind == "module":
            owner.add_module(name, value)
        elif kind == "param":
            owner.register_parameter(name, self.torch.nn.Parameter(value, requires_grad=value.is_floating_point()))
        else:
            owner.register_buffer(name, value)

    def module(self, path: str, mod: Any, *args: Any, **kwargs: Any) -> Any:
        """Add ``mod`` at ``path`` and call it; returns the FX node of the call."""
        where = self.place(path, mod, "module")
        return self.graph.call_module(where, tuple(self.fx_args(args)), {k: self.fx_arg(v) for k, v in kwargs.items()})

    # -- values ------------------------------------------------------------------------------------------------
    def tensor(self, v: Any) -> Any:
        """An FX node (or None) for a value; constants are registered as parameters/buffers on first use."""
        if v is None or not isinstance(v, ConstValue):
            return v
        if v.fx is None:
            t = v.value
            if not isinstance(t, self.torch.Tensor):
                t = self.torch.as_tensor(t)
            kind = "param" if v.trainable else "buffer"
            where = self.place(v.path or "const", t, kind)
            v.fx = self.graph.get_attr(where)
        return v.fx

    def fx_arg(self, a: Any) -> Any:
        if isinstance(a, ConstValue):
            return self.tensor(a)
        if isinstance(a, (list, tuple)):
            return type(a)(self.fx_arg(x) for x in a)
        return a

    def fx_args(self, args: Sequence[Any]) -> list[Any]:
        return [self.fx_arg(a) for a in args]

    def is_fx(self, a: Any) -> bool:
        import torch.fx

        if isinstance(a, torch.fx.Node):
            return True
        if isinstance(a, (list, tuple)):
            return any(self.is_fx(x) for x in a)
        if isinstance(a, dict):
            return any(self.is_fx(x) for x in a.values())
        return False

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a torch function: now if every argument is known (folding), else as an FX node."""
        if not self.is_fx(args) and not self.is_fx(kwargs):
            values = [_real(a) for a in args]
            with self.torch.no_grad():
                out = fn(*values, **{k: _real(v) for k, v in kwargs.items()})
            return _wrap(out, self.node.id if self.node else "const")
        return self.graph.call_function(fn, tuple(self.fx_args(args)), {k: self.fx_arg(v) for k, v in kwargs.items()})

    def item(self, v: Any, i: int) -> Any:
        """Output ``i`` of a multi-output value (tuple from a call)."""
        import operator

        if isinstance(v, (list, tuple)):
            return v[i]
        return self.graph.call_function(operator.getitem, (v, i))

    def static(self, v: Any, *, what: str = "input") -> list[Any] | None:
        """A constant integer tensor input as a Python list (shapes, axes, pads); None if absent."""
        if v is None:
            return None
        if isinstance(v, ConstValue):
            return [int(x) if not isinstance(x, float) else x for x in np.asarray(_real(v)).reshape(-1).tolist()]
        if isinstance(v, (list, tuple)):
            return list(v)
        return None

    def weight(self, node: Node, name: str, index: int, ins: list[Any], *, required: bool = True) -> Any:
        """A parameter of ``node`` as a torch tensor: node-owned, or adopted from a Constant edge; else None."""
        if name in node.weights:
            return self.weight_tensor(node.weights[name])
        v = ins[index] if index < len(ins) else None
        if isinstance(v, ConstValue) and v.fx is None and v.users <= 1:
            v.adopted = True
            return v.value
        if v is None and not required:
            return None
        return _NotStatic

    def weight_tensor(self, value: Any) -> Any:
        """A stored weight as a torch tensor. A memory-mapped weight is shared, not copied: the tensor views a
        private copy-on-write map of the file, so training writes only into this process's pages, never the file
        (and ``k5.run`` on the same loaded model keeps reading the file's bytes)."""
        return from_numpy(self.cow.array(value) if isinstance(value, LazyTensor) else as_array(value))

    def owns(self, node: Node, ins: list[Any], specs: Sequence[tuple[str, int, bool]]) -> dict[str, Any] | None:
        """Every listed (name, input index, required) parameter as a tensor, or None if one is a run-time edge."""
        out: dict[str, Any] = {}
        for name, idx, required in specs:
            w = self.weight(node, name, idx, ins, required=required)
            if w is _NotStatic:
                for _name, i2, _ in specs:  # give back what was adopted
                    v = ins[i2] if i2 < len(ins) else None
                    if isinstance(v, ConstValue):
                        v.adopted = False
                return None
            out[name] = w
        return out


class _NotStaticType:
    """What :meth:`Builder.weight` returns for a parameter that arrives as a run-time edge."""


_NotStatic = _NotStaticType()


class Unavailable:
    """An intermediate Y of a folded recurrent chain: only the glue into the next layer reads it (checked)."""


def _real(a: Any) -> Any:
    if isinstance(a, ConstValue):
        return a.value
    if isinstance(a, (list, tuple)):
        return type(a)(_real(x) for x in a)
    return a


def _wrap(out: Any, path: str) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return ConstValue(out, path)
    if isinstance(out, (list, tuple)):
        return [_wrap(o, path) for o in out]
    return out


_IDENT_BAD = re.compile(r"[^0-9A-Za-z_]")


def ident(part: str) -> str:
    """``part`` as a Python identifier (a module path component or an FX placeholder name)."""
    part = _IDENT_BAD.sub("_", part) or "_"
    if keyword.iskeyword(part):
        part += "_"
    return part


#: a builder: (builder, node, input values, resolved attributes) -> output value, or a list (one per node output)
BuildFn = Callable[[Builder, Node, list[Any], Attrs], Any]


def unsupported(node: Node, what: str) -> ConversionError:
    """The error a builder raises for a configuration ``to_torch`` cannot build."""
    return ConversionError(f"{what} is not supported by to_torch", where=node.label)


def meta_module(factory: Callable[[], Any], state: dict[str, Any]) -> Any:
    """Build a module on the meta device (no random init) and give it ``state`` as its parameters."""
    import torch

    with torch.device("meta"):
        m = factory()
    m.load_state_dict({k: v.clone() if not v.is_contiguous() else v for k, v in state.items()}, assign=True)
    for p in m.parameters():
        p.requires_grad_(p.is_floating_point())
    return m
