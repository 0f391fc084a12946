"""k5 -> PyTorch: build a ``torch.fx.GraphModule`` that runs a k5 graph with real PyTorch layers.

- Layer nodes that own their weights become PyTorch modules (``nn.Conv2d``, ``nn.Linear``, ``nn.LSTM``,
  ``nn.MultiheadAttention``...) holding the weights as ``nn.Parameter``; every other op is a call of a torch function.
  No op falls back to NumPy.
- Module paths follow node ids: the node ``layer1.0.conv1`` becomes the submodule ``layer1.0.conv1``, so
  ``state_dict()`` has ``layer1.0.conv1.weight`` (the parameter names are PyTorch's own). A float ``Constant`` node
  with more than one element (a weight used as an edge, e.g. an ONNX initializer) becomes a parameter whose key is
  the node id itself; other constants become buffers, or Python values where the op takes a static list (shapes,
  axes). When a node id clashes with an existing path (a parameter where a module is needed, or the reverse), the
  dots of the clashing id become underscores at the top level.
- Operations whose inputs are all constants are evaluated while building (constant folding), with torch.
- A layer whose weights arrive as edges from ``Constant`` nodes adopts them when nothing else reads them.
- A chain of one-layer ``LSTM``/``GRU``/``RNN`` nodes written by :func:`k5.from_torch` for a multi-layer module
  (ids ``<module>.l0``, ``<module>.l1``... joined by its reshape glue) is folded back into one multi-layer module
  at ``<module>``; any other recurrent node becomes its own single-layer module.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from k5.convert.torch.registry import IMPORTERS
from k5.errors import ConversionError, UnsupportedOpsError
from k5.format.hdf5 import CopyOnWrite, LazyTensor
from k5.format.model import Model, Node, as_array
from k5.ops.registry import get_schema

__all__ = ["Attrs", "Builder", "Const", "to_torch"]

#: a node's attributes as the op schema resolves them (checked, coerced, completed with the declared defaults)
Attrs = dict[str, Any]


@dataclass(eq=False)
class Const:
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
    def _place(self, path: str, value: Any, kind: str) -> str:
        """Register ``value`` (module, parameter or buffer) at ``path``; returns the path actually used."""
        torch = self.torch
        parts = [_ident(p) for p in path.split(".")] if path else ["node"]
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
        where = self._place(path, mod, "module")
        return self.graph.call_module(where, tuple(self.fx_args(args)), {k: self.fx_arg(v) for k, v in kwargs.items()})

    # -- values ------------------------------------------------------------------------------------------------
    def tensor(self, v: Any) -> Any:
        """An FX node (or None) for a value; constants are registered as parameters/buffers on first use."""
        if v is None or not isinstance(v, Const):
            return v
        if v.fx is None:
            t = v.value
            if not isinstance(t, self.torch.Tensor):
                t = self.torch.as_tensor(t)
            kind = "param" if v.trainable else "buffer"
            where = self._place(v.path or "const", t, kind)
            v.fx = self.graph.get_attr(where)
        return v.fx

    def fx_arg(self, a: Any) -> Any:
        if isinstance(a, Const):
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
            real = [_real(a) for a in args]
            with self.torch.no_grad():
                out = fn(*real, **{k: _real(v) for k, v in kwargs.items()})
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
        if isinstance(v, Const):
            return [int(x) if not isinstance(x, float) else x for x in np.asarray(_real(v)).reshape(-1).tolist()]
        if isinstance(v, (list, tuple)):
            return list(v)
        return None

    def weight(self, node: Node, name: str, index: int, ins: list[Any], *, required: bool = True) -> Any:
        """A parameter of ``node`` as a torch tensor: node-owned, or adopted from a Constant edge; else None."""
        if name in node.weights:
            return self.weight_tensor(node.weights[name])
        v = ins[index] if index < len(ins) else None
        if isinstance(v, Const) and v.fx is None and v.users <= 1:
            v.adopted = True
            return v.value
        if v is None and not required:
            return None
        return _NotStatic

    def weight_tensor(self, value: Any) -> Any:
        """A stored weight as a torch tensor. A memory-mapped weight is shared, not copied: the tensor views a
        private copy-on-write map of the file, so training writes only into this process's pages, never the file
        (and ``k5.run`` on the same loaded model keeps reading the file's bytes)."""
        from k5.convert.torch.dtypes import from_numpy

        return from_numpy(self.cow.array(value) if isinstance(value, LazyTensor) else as_array(value))

    def owns(self, node: Node, ins: list[Any], specs: Sequence[tuple[str, int, bool]]) -> dict[str, Any] | None:
        """Every listed (name, input index, required) parameter as a tensor, or None if one is a run-time edge."""
        out: dict[str, Any] = {}
        for name, idx, required in specs:
            w = self.weight(node, name, idx, ins, required=required)
            if w is _NotStatic:
                for _name, i2, _ in specs:  # give back what was adopted
                    v = ins[i2] if i2 < len(ins) else None
                    if isinstance(v, Const):
                        v.adopted = False
                return None
            out[name] = w
        return out


class _NotStaticType:
    pass


_NotStatic = _NotStaticType()


def _real(a: Any) -> Any:
    if isinstance(a, Const):
        return a.value
    if isinstance(a, (list, tuple)):
        return type(a)(_real(x) for x in a)
    return a


def _wrap(out: Any, path: str) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return Const(out, path)
    if isinstance(out, (list, tuple)):
        return [_wrap(o, path) for o in out]
    return out


_IDENT_BAD = re.compile(r"[^0-9A-Za-z_]")


def _ident(part: str) -> str:
    part = _IDENT_BAD.sub("_", part) or "_"
    if keyword.iskeyword(part):
        part += "_"
    return part


def _materialize_weights(model: Model) -> None:
    """Nothing to do: weights are read per node (lazy tensors are read once, when their module is built)."""


def to_torch(model: Model | str, *, trainable: bool = True) -> Any:
    """Build a ``torch.nn.Module`` (a ``torch.fx.GraphModule``) that computes ``model`` with PyTorch.

    ``model``: a :class:`Model` or a path to a ``.k5`` file. The module takes the graph inputs positionally (in
    order) and returns one tensor, or a tuple in the graph's output order. Raises :class:`UnsupportedOpsError`
    listing every op it cannot build.
    """
    import torch
    import torch.fx

    from k5.convert.torch import import_ops  # noqa: F401 - registers the op builders

    if not isinstance(model, Model):
        from k5.format.hdf5 import load

        model = load(model)
    g = model.graph
    missing: dict[str, int] = {}
    for nd in g.nodes:
        key = nd.op if nd.domain == "k5" else f"{nd.domain}.{nd.op}"
        if nd.op != "Constant" and key not in IMPORTERS:
            missing[key] = missing.get(key, 0) + 1
    if missing:
        raise UnsupportedOpsError("k5 -> PyTorch", missing, where=model.path or None)
    b = Builder(model)
    for nd in g.nodes:
        for i in nd.inputs:
            if i:
                b.users[i] = b.users.get(i, 0) + 1
    for t in g.inputs:
        b.env[t.name] = b.graph.placeholder(_ident(t.name))
    for nd in g.nodes:
        if nd.id in b.skip:
            continue
        b.node = nd
        if nd.op == "Constant":
            value = b.weight_tensor(nd.weights["value"]) if "value" in nd.weights else None
            if value is None:
                raise ConversionError("Constant without a 'value' weight", where=nd.label)
            trainable = trainable and value.is_floating_point() and value.numel() > 1
            b.env[nd.outputs[0]] = Const(value, nd.id, trainable, users=b.users.get(nd.outputs[0], 0))
            continue
        ins = [b.env[i] if i else None for i in nd.inputs]
        if any(type(v).__name__ == "_Unavailable" for v in ins):  # glue inside a folded recurrent chain
            for name in nd.outputs:
                b.env[name] = ins[0]
            continue
        fn = IMPORTERS.get(nd.op if nd.domain == "k5" else f"{nd.domain}.{nd.op}")
        assert fn is not None
        attrs = get_schema(nd.op, nd.domain, model.opset.get(nd.domain), where=nd.label).resolve_attrs(nd)
        try:
            outs = fn(b, nd, ins, attrs)
        except ConversionError as e:
            raise e if e.where else e.located(nd.label) from None
        except KeyError as e:
            raise ConversionError(f"input {e} is not computed before this node", where=nd.label) from None
        outs = outs if isinstance(outs, list) else [outs]
        for name, v in zip(nd.outputs, outs, strict=False):
            if name:
                b.env[name] = v
    results = [b.tensor(b.env[o.name]) for o in g.outputs]
    b.graph.output(results[0] if len(results) == 1 else tuple(results))
    gm = torch.fx.GraphModule(b.root, b.graph, class_name=_ident(g.name or "K5Module"))
    gm.eval()  # inference semantics, like the file; call .train() to fine-tune
    gm.k5_input_names = [t.name for t in g.inputs]
    gm.k5_output_names = [t.name for t in g.outputs]
    return gm
