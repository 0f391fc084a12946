"""k5 -> Lua Torch7 ``.t7``: lay a k5 graph out as a tree of ``nn`` containers and write it as ``torch.save`` would.

Lua's ``nn`` has no graph: a network is a tree of containers. The graph is decomposed series-parallel:

- a chain of one-input nodes becomes an ``nn.Sequential``;
- where a tensor feeds several branches that meet again in one ``Add``/``Sum``/``Mul``/``Concat`` node, the branches
  become an ``nn.ConcatTable`` (an input used as is becomes ``nn.Identity``) followed by ``nn.CAddTable`` /
  ``nn.CMulTable`` / ``nn.JoinTable``; branches nest.

``Constant`` nodes feed the layouts (``Reshape`` shapes, ``Pad`` pads, ``Resize`` scales, ``Mul`` scalars). Graphs
that are not series-parallel (one value used by two branches that meet in different places), graphs with several
inputs or outputs, and ops without a layout (listed all at once) are a :class:`ConversionError`.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np

from k5.convert.torch7.context import ExportContext
from k5.convert.torch7.export_modules import mul_constant, nn_module
from k5.convert.torch7.reader import T7Object, T7Table
from k5.convert.torch7.tables import EXPORTERS
from k5.convert.torch7.writer import write_t7
from k5.errors import ConversionError, UnsupportedOpsError
from k5.format.model import DEFAULT_DOMAIN, Model, Node, as_array
from k5.ops import get_schema

__all__ = ["model_to_t7", "to_torch7"]

_JOINS = {"Add", "Sum", "Mul", "Concat"}


def _shapes(model: Model, consts: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, from one run of the reference runtime on the validation input (or zeros)."""
    from k5.runtime.interpreter import run

    graph = model.graph
    feeds: dict[str, np.ndarray] = {}
    for info in graph.inputs:
        if model.validation is not None and info.name in model.validation.inputs:
            feeds[info.name] = np.asarray(model.validation.inputs[info.name])
            continue
        if info.shape is None:
            raise ConversionError(f"graph input {info.name!r} has no shape; give it one (or a validation pair)")
        dims = [d if isinstance(d, int) else (1 if i == 0 else 32) for i, d in enumerate(info.shape)]
        feeds[info.name] = np.zeros(dims, dtype=info.dtype or "float32")
    values = run(model, feeds, intermediate=True)
    return {k: tuple(np.shape(v)) for k, v in values.items()}


class _Layout:
    def __init__(self, model: Model) -> None:
        graph = model.graph
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise ConversionError(
                f"Torch7 networks take one input and give one output. Received: {len(graph.inputs)} inputs, "
                f"{len(graph.outputs)} outputs"
            )
        self.consts = {n.outputs[0]: np.asarray(as_array(n.weights["value"])) for n in graph.nodes
                       if n.op == "Constant" and n.domain == DEFAULT_DOMAIN}  # fmt: skip
        self.nodes = [n for n in graph.nodes if not (n.op == "Constant" and n.domain == DEFAULT_DOMAIN)]
        self.order = {n.id: i for i, n in enumerate(self.nodes)}
        self.producer = {o: n for n in self.nodes for o in n.outputs if o}
        self.src = graph.inputs[0].name
        self.dst = graph.outputs[0].name
        self._check_ops()
        self.cx = ExportContext(self.consts, _shapes(model, self.consts))
        self.laid: set[str] = set()

    def _check_ops(self) -> None:
        missing: Counter[str] = Counter()
        for n in self.nodes:
            if n.domain != DEFAULT_DOMAIN or n.op not in EXPORTERS:
                missing[n.op if n.domain == DEFAULT_DOMAIN else f"{n.domain}.{n.op}"] += 1
        if missing:
            raise UnsupportedOpsError("Torch7 export", dict(missing))

    def data_inputs(self, n: Node) -> list[str]:
        """The inputs that are computed tensors (not constants, not omitted)."""
        if n.op == "Mul" and any(i in self.consts for i in n.inputs):
            return [i for i in n.inputs if i and i not in self.consts]
        if n.op in _JOINS:
            return list(n.inputs)
        return [n.inputs[0]] if n.inputs else []

    # -- series-parallel decomposition -------------------------------------------------------------------------
    def _region(self, src: str, dst: str) -> list[Node]:
        """Nodes on a path from ``src`` to ``dst``, in graph order."""
        ancestors: set[str] = set()
        stack = [dst]
        while stack:
            t = stack.pop()
            n = self.producer.get(t)
            if t == src or n is None or n.id in ancestors:
                continue
            ancestors.add(n.id)
            stack.extend(self.data_inputs(n))
        region = [n for n in self.nodes if n.id in ancestors]
        inside = {o for n in region for o in n.outputs} | {src}
        for n in region:
            for t in self.data_inputs(n):
                if t not in inside:
                    raise ConversionError(
                        f"{n.label} reads {t!r}, which is computed outside its branch; the graph is not a "
                        "nesting of sequences and branches that Lua's nn containers can express"
                    )
        return region

    def build(self, src: str, dst: str) -> T7Object:
        region = self._region(src, dst)
        mods: list[T7Object] = []
        cur = src
        while cur != dst:
            users = [n for n in region if cur in self.data_inputs(n)]
            if not users:
                raise ConversionError(f"tensor {cur!r} does not lead to {dst!r}")
            if len(users) == 1 and self.data_inputs(users[0]) == [cur]:
                mods.append(self.layout(users[0]))
                cur = users[0].outputs[0]
                continue
            join = self._join(cur, region)
            branches = [nn_module("Identity") if t == cur else self.build(cur, t) for t in self.data_inputs(join)]
            mods.append(nn_module("ConcatTable", modules=T7Table({float(i + 1): b for i, b in enumerate(branches)})))
            mods.append(self.layout(join))
            cur = join.outputs[0]
        return nn_module("Sequential", modules=T7Table({float(i + 1): m for i, m in enumerate(mods)}))

    def _join(self, fork: str, region: list[Node]) -> Node:
        """The first node after ``fork`` where every branch leaving it has met again."""
        pending = Counter(t for n in region for t in self.data_inputs(n))
        live = {fork}
        for n in region:
            ins = self.data_inputs(n)
            if not any(t in live for t in ins):
                continue
            for t in ins:
                pending[t] -= 1
                if pending[t] == 0:
                    live.discard(t)
            live.add(n.outputs[0])
            if len(live) == 1 and len(ins) >= 2:
                return n
        raise ConversionError(f"the branches leaving {fork!r} never meet again in one node")

    def layout(self, n: Node) -> T7Object:
        if n.id in self.laid:
            raise ConversionError("is reached by two branches; Lua's nn containers would run it twice",
                                  where=n.label)  # fmt: skip
        self.laid.add(n.id)
        if n.op == "Mul" and any(i in self.consts for i in n.inputs):
            value = next(self.consts[i] for i in n.inputs if i in self.consts)
            return mul_constant(value, n)
        fn = EXPORTERS.get(n.op)
        assert fn is not None
        attrs = get_schema(n.op, n.domain, where=n.label).resolve_attrs(n)
        mod: T7Object = fn(self.cx, n, attrs)
        return mod


def model_to_t7(model: Model) -> T7Object:
    """The ``nn`` module tree (a :class:`T7Object`) that computes ``model``."""
    layout = _Layout(model)
    if layout.src == layout.dst:
        return nn_module("Sequential", modules=T7Table({1.0: nn_module("Identity")}))
    return layout.build(layout.src, layout.dst)


def to_torch7(model: Model | str | os.PathLike[str], path: str | os.PathLike[str], *, long_size: int = 8) -> None:
    """Write ``model`` (a :class:`Model` or a ``.k5`` path) as a Lua Torch7 network file, atomically.

    The file is what Lua Torch's ``torch.save(path, net)`` writes (binary, 8-byte longs unless ``long_size=4``);
    ``torch.load`` and OpenCV's ``cv2.dnn.readNetFromTorch`` read it. Raises :class:`UnsupportedOpsError` listing
    every op without a Lua ``nn`` module.
    """
    if not isinstance(model, Model):
        from k5.format.hdf5 import load

        model = load(os.fspath(model))
    tree = model_to_t7(model)
    write_t7(tree, path, long_size=long_size)
