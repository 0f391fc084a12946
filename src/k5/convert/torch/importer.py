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

from typing import Any

from k5.convert.torch.import_context import Builder, ConstValue, Unavailable, ident
from k5.convert.torch.registry import IMPORTERS
from k5.errors import ConversionError, K5Error, UnsupportedOpsError
from k5.format.model import Graph, Model, Node
from k5.ops.registry import get_schema

__all__ = ["to_torch"]


def to_torch(model: Model | str, *, trainable: bool = True) -> Any:
    """Build a ``torch.nn.Module`` (a ``torch.fx.GraphModule``) that computes ``model`` with PyTorch.

    ``model``: a :class:`Model` or a path to a ``.k5`` file. The module takes the graph inputs positionally (in
    order) and returns one tensor, or a tuple in the graph's output order. Raises :class:`UnsupportedOpsError`
    listing every op it cannot build.
    """
    if not isinstance(model, Model):
        from k5.format.hdf5 import load

        model = load(model)
    _check_supported(model)
    b = Builder(model)
    _bind_inputs(b, model.graph)
    for nd in model.graph.nodes:
        if nd.id not in b.skip:
            _build_node(b, nd, trainable=trainable)
    return _finish(b, model.graph)


def _key(node: Node) -> str:
    return node.op if node.domain == "k5" else f"{node.domain}.{node.op}"


def _check_supported(model: Model) -> None:
    """Raise :class:`UnsupportedOpsError` listing every op (with counts) that has no builder."""
    missing: dict[str, int] = {}
    for nd in model.graph.nodes:
        key = _key(nd)
        if nd.op != "Constant" and key not in IMPORTERS:
            missing[key] = missing.get(key, 0) + 1
    if missing:
        raise UnsupportedOpsError("k5 -> PyTorch", missing, where=model.path or None)


def _bind_inputs(b: Builder, g: Graph) -> None:
    """Count the readers of every value (constants used once may be adopted as weights) and add the placeholders."""
    for nd in g.nodes:
        for i in nd.inputs:
            if i:
                b.users[i] = b.users.get(i, 0) + 1
    for t in g.inputs:
        b.env[t.name] = b.graph.placeholder(ident(t.name))


def _build_node(b: Builder, nd: Node, *, trainable: bool) -> None:
    """Add one node to the graph (or fold it into a constant) and bind its outputs in ``b.env``.

    Any failure becomes a :class:`K5Error` naming the node and its op: a ``K5Error`` from the schema or a builder
    keeps its class, anything else (a torch error on inconsistent weights, a bug) becomes a :class:`ConversionError`
    that quotes the original exception, chained to it.
    """
    b.node = nd
    try:
        outs = _node_outputs(b, nd, trainable=trainable)
    except K5Error as e:
        raise e if e.where else e.located(nd.label) from None
    except Exception as e:
        raise ConversionError(f"to_torch could not build this node: {type(e).__name__}: {e}", where=nd.label) from e
    outs = outs if isinstance(outs, list) else [outs]
    for name, v in zip(nd.outputs, outs, strict=False):
        if name:
            b.env[name] = v


def _node_outputs(b: Builder, nd: Node, *, trainable: bool) -> Any:
    """The value(s) of ``nd``'s outputs: a constant, the glue of a folded chain, or what its builder returns."""
    if nd.op == "Constant":
        if "value" not in nd.weights:
            raise ConversionError("Constant without a 'value' weight")
        value = b.weight_tensor(nd.weights["value"])
        trainable = trainable and value.is_floating_point() and value.numel() > 1
        return ConstValue(value, nd.id, trainable, users=b.users.get(nd.outputs[0], 0))
    for name in nd.inputs:
        if name and name not in b.env:
            raise ConversionError(f"input {name!r} is not computed by any earlier node")
    ins = [b.env[i] if i else None for i in nd.inputs]
    if any(isinstance(v, Unavailable) for v in ins):  # glue inside a folded recurrent chain
        return [ins[0]] * len(nd.outputs)
    fn = IMPORTERS.get(_key(nd))
    assert fn is not None  # _check_supported ran
    attrs = get_schema(nd.op, nd.domain, b.model.opset.get(nd.domain)).resolve_attrs(nd)
    return fn(b, nd, ins, attrs)


def _finish(b: Builder, g: Graph) -> Any:
    """The graph's outputs, then the ``GraphModule`` in eval mode, carrying the k5 input/output names."""
    import torch.fx

    for o in g.outputs:
        if o.name not in b.env:
            raise ConversionError(f"graph output {o.name!r} is not computed by any node")
    results = [b.tensor(b.env[o.name]) for o in g.outputs]
    b.graph.output(results[0] if len(results) == 1 else tuple(results))
    gm = torch.fx.GraphModule(b.root, b.graph, class_name=ident(g.name or "K5Module"))
    gm.eval()  # inference semantics, like the file; call .train() to fine-tune
    # nn.Module keeps any plain attribute, but torch's stub types Module.__setattr__ for Tensor | Module values only
    gm.k5_input_names = [t.name for t in g.inputs]  # type: ignore[assignment]
    gm.k5_output_names = [t.name for t in g.outputs]  # type: ignore[assignment]
    return gm
