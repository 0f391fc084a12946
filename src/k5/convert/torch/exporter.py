"""PyTorch -> k5: capture a module with ``torch.export`` and map it onto k5 ops, one node per layer.

How it works:

1. The module is exported (``strict=False``) in eval mode with ``preserve_module_call_signature`` for every
   submodule whose class has a module converter (``nn.Linear``, ``nn.Conv2d``, ``nn.LSTM``,
   ``nn.MultiheadAttention``...), then functionalised without decomposing (``run_decompositions({})``).
2. Each FX node carries ``nn_module_stack``: the nodes that run inside such a submodule form one group that is
   converted as a whole by its module converter (one k5 node named by the module path, owning the module's
   weights), reading the call's real arguments from the preserved call signature.
3. Every other node is mapped by its ATen converter. Nodes that do not depend on the graph inputs are evaluated
   now (constant folding); parameters used outside a converted layer become ``Constant`` nodes named by their path
   (sharing the tensor's memory). A node that reads a converted layer's output (a layer called on constants, such
   as T5's relative-position ``Embedding``) cannot be folded and is converted instead.
4. Symbolic sizes (dynamic shapes) become int64 ``[1]`` tensors computed from the ``Shape`` of a graph input.

The exported model records a validation pair: the example inputs and the module's outputs for them.

The conversion runs in named phases (:func:`_convert`): bind the graph inputs, plan (what folds, which layer
each node belongs to, what is unsupported), convert the nodes, bind the outputs, then prune and describe the graph.
The converters live in :mod:`.export_aten`, :mod:`.export_shape` and :mod:`.export_modules`, registered in the
tables of :mod:`.registry` when the package imports them; this driver reads the tables only.
"""

from __future__ import annotations

import inspect
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from k5.convert.naming import unique_name
from k5.convert.torch.dtypes import k5_dtype, to_numpy
from k5.convert.torch.export_calls import candidates as layer_candidates
from k5.convert.torch.export_calls import convert_call, inferred_calls, stack_paths
from k5.convert.torch.export_context import ExportConst, Exporter, Sym, aten_key
from k5.convert.torch.export_fold import NotFoldableError, evaluate, functional_key, is_symbolic
from k5.convert.torch.registry import ATEN_EXPORTERS
from k5.errors import ConversionError, K5Error, UnsupportedOpsError
from k5.format.model import Graph, Metadata, Model, Node, TensorInfo, ValidationPair

__all__ = ["from_torch", "save_torch"]

# ops that do nothing at inference time (or only re-lay memory): the value passes through unchanged
PASSTHROUGH = {
    "aten.contiguous.default", "aten.clone.default", "aten.alias.default", "aten.detach.default",
    "aten.lift_fresh_copy.default", "aten.dropout.default", "aten.feature_dropout.default",
    "aten.alpha_dropout.default", "aten._assert_tensor_metadata.default", "aten.lift_fresh.default",
}  # fmt: skip

# ops with no effect on values (assertions); skipped
IGNORED = {
    "aten._assert_scalar.default", "aten.sym_constrain_range_for_size.default", "aten._assert_async.msg",
    "aten.sym_constrain_range.default", "aten._assert_tensor_metadata.default",
}  # fmt: skip


@dataclass
class _Example:
    """The example inputs: positional ``args`` and keyword ``kwargs``, and the tensors among them in the order
    ``torch.export`` makes them graph inputs (positional first, then keywords in the order given), with names."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    names: list[str]  # the forward parameter name of each tensor input
    tensors: list[Any]

    @classmethod
    def of(cls, module: Any, example_inputs: Any) -> _Example:
        import torch

        if isinstance(example_inputs, Mapping):
            args: tuple[Any, ...] = ()
            kwargs = dict(example_inputs)
        elif isinstance(example_inputs, (tuple, list)):
            args, kwargs = tuple(example_inputs), {}
        else:
            args, kwargs = (example_inputs,), {}
        params = [p for p in inspect.signature(module.forward).parameters if p != "self"]
        named = [(params[i] if i < len(params) else f"input_{i}", a) for i, a in enumerate(args)]
        named += list(kwargs.items())
        tensors = [(n, v) for n, v in named if isinstance(v, torch.Tensor)]
        return cls(args, kwargs, [n for n, _ in tensors], [v for _, v in tensors])


def _dynamic_names(example: _Example, dynamic_shapes: Any) -> list[dict[int, str]]:
    """Per tensor input, axis -> dimension name from ``torch.export.Dim`` objects in ``dynamic_shapes``."""
    out: list[dict[int, str]] = [{} for _ in example.tensors]
    if dynamic_shapes is None:
        return out
    specs: list[Any]
    if isinstance(dynamic_shapes, Mapping):
        specs = [dynamic_shapes.get(name) for name in example.names]
    else:
        specs = list(dynamic_shapes)
    for i, spec in enumerate(specs[: len(out)]):
        items = spec.items() if isinstance(spec, Mapping) else enumerate(spec or [])
        for axis, dim in items:
            name = getattr(dim, "__name__", None)
            if isinstance(name, str) and name:
                out[i][int(axis)] = name
    return out


def _batch_shapes(example: _Example) -> Any:
    """``dynamic_shapes`` naming dimension 0 ``batch`` in every tensor input whose dim 0 has the first one's size
    (a tuple for positional inputs, a dict by parameter name when there are keyword inputs); None if no input has
    a dimension 0."""
    from torch.export import Dim

    ranked = [t for t in example.tensors if t.dim() > 0]
    if not ranked:
        return None
    size = ranked[0].shape[0]
    batch = Dim("batch")
    specs = [{0: batch} if t.dim() > 0 and t.shape[0] == size else None for t in example.tensors]
    if not example.kwargs:
        return tuple(specs)
    return dict(zip(example.names, specs, strict=True))


def _export(module: Any, example: _Example, dynamic_shapes: Any, fqns: Sequence[str]) -> Any:
    import torch

    try:
        prev = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # the fused encoder fast path hides the layers
    except AttributeError:  # pragma: no cover - older torch
        prev = None
    try:
        with warnings.catch_warnings():
            # nn.RNNBase re-assigns its _flat_weights list during capture; harmless here
            warnings.filterwarnings("ignore", message=r"The tensor attributes .*_flat_weights")
            return torch.export.export(
                module,
                example.args,
                kwargs=example.kwargs or None,
                dynamic_shapes=dynamic_shapes,
                strict=False,
                preserve_module_call_signature=tuple(fqns),
            )
    except Exception as e:
        if isinstance(e, ConversionError):
            raise
        raise ConversionError(f"torch.export could not capture {type(module).__name__}: {type(e).__name__}: {e}") from e
    finally:
        if prev is not None:
            torch.backends.mha.set_fastpath_enabled(prev)


def from_torch(
    module: Any,
    example_inputs: Any,
    *,
    dynamic_shapes: Any = None,
    dynamic_batch: bool = True,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    metadata: Metadata | None = None,
    validation: bool = True,
) -> Model:
    """Convert ``module`` (an ``nn.Module``) into a k5 :class:`Model`.

    ``example_inputs``: a tensor, a tuple of positional inputs, or a dict of keyword inputs (e.g.
    ``{"input_ids": ids, "attention_mask": mask}``; the graph inputs follow its order).

    The batch is dynamic by default: dimension 0 of every tensor input whose dimension 0 has the first input's size
    is named ``batch`` and left free (pass ``dynamic_batch=False`` to keep every size static); where
    ``torch.export`` cannot keep it free, the model is exported with static sizes and a warning says so.
    ``dynamic_shapes``, as for ``torch.export.export``, replaces that default (``torch.export.Dim("seq")`` names
    the dimension in the file).

    Inputs are named by ``input_names`` or by the ``forward`` parameters; outputs by ``output_names`` or by the
    module's output structure (dict keys, ``ModelOutput`` fields such as ``logits``), else ``output`` for a single
    tensor and ``output_<i>`` for the leaves of a tuple.

    The module is captured in eval mode (its training flag is restored afterwards). Layers with a converter (see
    :data:`k5.convert.torch.SUPPORTED`) become one node each, named by their module path. Raises
    :class:`UnsupportedOpsError` listing every unsupported op, and :class:`ConversionError` naming the FX node,
    module and op for any other failure.
    """
    import torch

    example = _Example.of(module, example_inputs)
    was_training = module.training
    module.eval()
    try:
        layers = layer_candidates(module)
        ep, dynamic_shapes = _export_with_batch(module, example, dynamic_shapes, dynamic_batch, list(layers))
        with torch.no_grad():
            reference = module(*example.args, **example.kwargs) if validation else None
    finally:
        module.train(was_training)
    model = _convert(ep, module, layers, example, dynamic_shapes, input_names, output_names)
    if metadata is not None:
        model.metadata = metadata
    if not model.metadata.producer:
        model.metadata.producer = f"k5 / torch {torch.__version__}"
    if reference is not None:
        model.validation = _validation_pair(model, example, reference)
    return model


def save_torch(module: Any, path: Any, example_inputs: Any, **kwargs: Any) -> Model:
    """:func:`from_torch`, then ``k5.save`` to ``path``; returns the model."""
    from k5.format.hdf5 import save

    model = from_torch(module, example_inputs, **kwargs)
    save(model, path)
    return model


def _export_with_batch(
    module: Any, example: _Example, dynamic_shapes: Any, dynamic_batch: bool, fqns: list[str]
) -> tuple[Any, Any]:
    """Phase 1: ``torch.export`` with the given dynamic shapes, else a dynamic ``batch`` (static as a fallback)."""
    batch = _batch_shapes(example) if dynamic_shapes is None and dynamic_batch else None
    if batch is None:
        return _export(module, example, dynamic_shapes, fqns), dynamic_shapes
    size = next(t.shape[0] for t in example.tensors if t.dim() > 0)
    if size == 1:
        reason = "the example's batch size is 1, which torch.export specialises; give an example batch of 2 or more"
    else:
        try:
            return _export(module, example, batch, fqns), batch
        except ConversionError as e:
            lines = [ln.strip(" -") for ln in str(e.__cause__ or e).strip().splitlines()]
            reason = next((ln for ln in lines if "specialized" in ln), lines[0])[:300]
    warnings.warn(
        f"{type(module).__name__}: the batch dimension stays static ({reason}); pass dynamic_shapes to choose the "
        "dynamic dimensions, or dynamic_batch=False to silence this",
        stacklevel=3,
    )
    return _export(module, example, None, fqns), None


def _validation_pair(model: Model, example: _Example, reference: Any) -> ValidationPair:
    """The example inputs and the module's outputs for them (copies: the caller may reuse its tensors)."""
    import torch

    flat = torch.utils._pytree.tree_leaves(reference)
    return ValidationPair(
        inputs={t.name: to_numpy(a).copy() for t, a in zip(model.graph.inputs, example.tensors, strict=True)},
        outputs={t.name: to_numpy(v).copy() for t, v in zip(model.graph.outputs, flat, strict=True)},
    )


@dataclass
class _Plan:
    """What phase 3 does with each FX node: fold it, convert it with its layer, or convert it alone."""

    dynamic: set[str] = field(default_factory=set)  # nodes that depend on the graph inputs (the rest folds)
    group_of: dict[str, str] = field(default_factory=dict)  # FX node -> the layer (module path) it belongs to
    calls: dict[str, Any] = field(default_factory=dict)  # layer path -> its call signature


def _convert(
    ep: Any,
    module: Any,
    layers: dict[str, Any],
    example: _Example,
    dynamic_shapes: Any,
    input_names: Sequence[str] | None,
    output_names: Sequence[str] | None,
) -> Model:
    cx = Exporter()
    cx.fx_nodes = {n.name: n for n in ep.graph.nodes}
    cx.reserved = set(ep.state_dict) | set(ep.constants)
    cx.leaf_paths = {p for p, m in module.named_modules() if p and not any(True for _ in m.children())}
    dim_names = _dynamic_names(example, dynamic_shapes)
    graph_inputs = _bind_inputs(cx, ep, dim_names, input_names)
    plan = _plan(cx, ep, layers, type(module).__name__)
    _convert_nodes(cx, ep, plan, layers)
    graph_outputs = _bind_outputs(cx, ep, graph_inputs, output_names)
    graph = _finish(cx, graph_inputs, graph_outputs)
    graph.name = type(module).__name__
    return Model(graph=graph)


def _bind_inputs(
    cx: Exporter, ep: Any, dim_names: list[dict[int, str]], input_names: Sequence[str] | None
) -> list[TensorInfo]:
    """Phase 2: user inputs become graph inputs (symbolic sizes remember their source); parameters, buffers and
    constants become :class:`ExportConst` values named by their module path."""
    from torch.export.graph_signature import InputKind

    spec_of = {s.arg.name: s for s in ep.graph_signature.input_specs if hasattr(s.arg, "name")}
    graph_inputs: list[TensorInfo] = []
    for n in ep.graph.nodes:
        if n.op != "placeholder":
            continue
        spec = spec_of.get(n.name)
        if spec is None or spec.kind == InputKind.USER_INPUT:
            i = len(graph_inputs)
            fake = n.meta.get("val")
            name = input_names[i] if input_names and i < len(input_names) else n.name
            if not hasattr(fake, "shape"):
                raise ConversionError(f"input {name!r} is a {type(fake).__name__}; k5 graph inputs are tensors")
            cx.names.add(name)
            cx.env[n.name] = name
            cx.meta[name] = fake
            shape: list[int | str] = []
            for axis, d in enumerate(fake.shape):
                if isinstance(d, int):
                    shape.append(int(d))
                    continue
                label = dim_names[i].get(axis) if i < len(dim_names) else None
                shape.append(label or str(d))
                expr = d.node.expr
                if expr.is_Symbol and expr not in cx.sym_sources:
                    cx.sym_sources[expr] = (name, axis)
            graph_inputs.append(TensorInfo(name, k5_dtype(fake.dtype, where=f"input {name!r}"), shape))
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            value = ep.state_dict[spec.target] if spec.target in ep.state_dict else ep.constants[spec.target]
            cx.env[n.name] = ExportConst(value, spec.target)
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            cx.env[n.name] = ExportConst(ep.constants[spec.target], spec.target)
        else:
            raise ConversionError(f"graph input {n.name!r} of kind {spec.kind.name} is not supported")
    return graph_inputs


def _aten_key(n: Any) -> str:
    """The converter-table key of an FX node: its ATen overload, or the functional twin of an in-place one."""
    key = aten_key(n.target)
    inplace = functional_key(key)
    return inplace if inplace is not None and key not in ATEN_EXPORTERS else key


def _plan(cx: Exporter, ep: Any, layers: dict[str, Any], model_name: str) -> _Plan:
    """Phase 3: which nodes depend on the inputs, which layer call each belongs to; every unsupported op at once."""
    graph = ep.graph
    plan = _Plan()
    plan.calls = {e.fqn: e.signature for e in ep.module_call_graph if e.fqn in layers and e.signature is not None}
    plan.calls.update(inferred_calls(ep, layers, plan.calls))
    plan.dynamic = {n.name for n in graph.nodes if n.op == "placeholder" and isinstance(cx.env[n.name], str)}
    for n in graph.nodes:
        if n.op == "call_function" and (any(a.name in plan.dynamic for a in n.all_input_nodes) or is_symbolic(n)):
            plan.dynamic.add(n.name)
    unsupported: Counter[str] = Counter()
    for n in graph.nodes:
        if n.op != "call_function":
            continue
        group = next((p for p in stack_paths(n) if p in plan.calls), None)
        if group is not None:
            plan.group_of[n.name] = group
            continue
        key = _aten_key(n)
        known = key in ATEN_EXPORTERS or key in PASSTHROUGH or key in IGNORED or is_symbolic(n)
        if n.name in plan.dynamic and not known:
            unsupported[key] += 1
    if unsupported:
        raise UnsupportedOpsError("PyTorch", dict(unsupported), where=model_name)
    return plan


@contextmanager
def _located(where: str) -> Iterator[None]:
    """Any failure inside becomes a :class:`ConversionError` that says where (node, module, op)."""
    try:
        yield
    except K5Error as e:
        if isinstance(e, ConversionError) and e.where:
            raise
        raise e.located(where) from None
    except NotFoldableError:
        raise  # not a failure: phase 4 converts the node instead of folding it
    except Exception as e:
        raise ConversionError(f"{type(e).__name__}: {e}", where=where) from e


def _convert_nodes(cx: Exporter, ep: Any, plan: _Plan, layers: dict[str, Any]) -> None:
    """Phase 4: walk the graph once; each node is folded, converted with its layer, or converted by its ATen op."""
    import torch

    done: set[str] = set()
    for n in ep.graph.nodes:
        if n.op != "call_function":
            continue
        paths = stack_paths(n)
        cx.scope = paths[-1] if paths else ""
        group = plan.group_of.get(n.name)
        if group is not None:
            if group not in done:
                done.add(group)
                mod = layers[group]
                with _located(f"module {group!r} ({type(mod).__name__})"):
                    convert_call(cx, group, mod, plan.calls[group])
            continue
        key = _aten_key(n)
        if key in IGNORED:
            continue
        where = f"node {n.name!r} ({key}) in module {cx.scope or '(root)'}"
        inplace = key != aten_key(n.target)
        val = n.meta.get("val")
        if isinstance(val, (bool, int, float)):
            cx.env[n.name] = val  # a size or number known at export time
            continue
        if n.name not in plan.dynamic:
            try:
                with _located(where):
                    cx.env[n.name] = evaluate(cx, n)
            except NotFoldableError:
                plan.dynamic.add(n.name)  # reads a tensor that exists only at run time: convert it instead
            else:
                if inplace and isinstance(n.args[0], torch.fx.Node):
                    cx.env[n.args[0].name] = cx.env[n.name]
                continue
        if is_symbolic(n):
            cx.env[n.name] = Sym(n.meta["val"])
            continue
        if key in PASSTHROUGH:
            cx.env[n.name] = cx.value(n.args[0])
            continue
        fn = ATEN_EXPORTERS.get(key)
        if fn is None:
            raise UnsupportedOpsError("PyTorch", {key: 1}, where=where)
        with _located(where):
            out = fn(cx, n)
        cx.env[n.name] = out
        if isinstance(out, str) and out not in cx.meta:
            cx.meta[out] = n.meta.get("val")
        if inplace and isinstance(n.args[0], torch.fx.Node):
            cx.env[n.args[0].name] = out  # later readers of the mutated tensor see the result


def _bind_outputs(
    cx: Exporter, ep: Any, graph_inputs: list[TensorInfo], output_names: Sequence[str] | None
) -> list[TensorInfo]:
    """Phase 5: the user outputs, named by ``output_names`` or the module's output structure."""
    import torch
    from torch.export.graph_signature import OutputKind

    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    specs = ep.graph_signature.output_specs
    user_outputs = [a for a, s in zip(out_node.args[0], specs, strict=True) if s.kind == OutputKind.USER_OUTPUT]
    structured = _output_names(ep, len(user_outputs))
    graph_outputs: list[TensorInfo] = []
    input_set = {t.name for t in graph_inputs}
    cx.scope = ""
    for i, a in enumerate(user_outputs):
        want = output_names[i] if output_names and i < len(output_names) else structured[i]
        if a is None:
            raise ConversionError(f"output {i} ({want!r}) is None; k5 graphs return tensors only")
        with _located(f"output {want!r}"):
            name = cx.t(a)
        fake = a.meta.get("val") if isinstance(a, torch.fx.Node) else None
        producer = next((nd for nd in reversed(cx.nodes) if name in nd.outputs), None)
        taken = want in cx.names and want != name
        if producer is None or name in input_set or taken or name in [o.name for o in graph_outputs]:
            name = cx.add1("Identity", [name], id=want)
        elif name != want:
            _rename(cx.nodes, name, want)
            cx.names.add(want)
            name = want
        shape: Any = None
        dtype = None
        if fake is not None:
            dtype = k5_dtype(fake.dtype, where=f"output {want!r}")
            shape = [int(d) if isinstance(d, int) else _sym_label(d, cx, graph_inputs) for d in fake.shape]
        graph_outputs.append(TensorInfo(name, dtype, shape))
    return graph_outputs


def _finish(cx: Exporter, graph_inputs: list[TensorInfo], graph_outputs: list[TensorInfo]) -> Graph:
    """Phase 6: drop what no output needs (constants only folding read), and record the known intermediate shapes."""
    import torch

    nodes = _prune(cx.nodes, [o.name for o in graph_outputs])
    known = {t.name for t in (*graph_inputs, *graph_outputs)}
    value_info: list[TensorInfo] = []
    for nd in nodes:
        for name in nd.outputs:
            fake = cx.meta.get(name)
            if name in known or not isinstance(fake, torch.Tensor):
                continue
            dims: list[int | str] = [
                int(d) if isinstance(d, int) else _sym_label(d, cx, graph_inputs) for d in fake.shape
            ]
            value_info.append(TensorInfo(name, k5_dtype(fake.dtype), dims))
    return Graph(nodes=nodes, inputs=graph_inputs, outputs=graph_outputs, value_info=value_info)


def _output_names(ep: Any, count: int) -> list[str]:
    """Output names from the module's output structure: dict keys and ``ModelOutput`` fields, joined by ``.``
    when nested (``hidden_states.0``); ``output`` / ``output_<i>`` where the structure has no names."""
    default = ["output"] if count == 1 else [f"output_{i}" for i in range(count)]
    spec = getattr(getattr(ep, "call_spec", None), "out_spec", None)
    if spec is None:
        return default
    paths: list[list[Any]] = []

    def walk(s: Any, path: list[Any]) -> None:
        if s.is_leaf():
            paths.append(path)
            return
        children = s.children() if callable(getattr(s, "children", None)) else s.children_specs
        ctx = s.context
        if isinstance(ctx, (list, tuple)) and len(ctx) == len(children) and all(isinstance(k, str) for k in ctx):
            keys: list[Any] = list(ctx)
        elif isinstance(getattr(ctx, "_fields", None), tuple) and len(ctx._fields) == len(children):
            keys = list(ctx._fields)  # a namedtuple
        else:
            keys = list(range(len(children)))
        for k, c in zip(keys, children, strict=True):
            walk(c, [*path, k])

    walk(spec, [])
    if len(paths) != count:
        return default
    names: list[str] = []
    seen: set[str] = set()
    for i, path in enumerate(paths):
        name = ".".join(str(k) for k in path) if any(isinstance(k, str) for k in path) else default[i]
        names.append(unique_name(name, seen))
    return names


def _sym_label(d: Any, cx: Exporter, inputs: list[TensorInfo]) -> str:
    expr = d.node.expr
    if expr in cx.sym_sources:
        name, axis = cx.sym_sources[expr]
        for t in inputs:
            if t.name == name and t.shape is not None:
                return str(t.shape[axis])
    return str(expr)


def _rename(nodes: list[Node], old: str, new: str) -> None:
    for nd in nodes:
        nd.outputs = [new if o == old else o for o in nd.outputs]
        nd.inputs = [new if i == old else i for i in nd.inputs]


def _prune(nodes: list[Node], outputs: list[str]) -> list[Node]:
    """Drop nodes whose outputs nothing uses (e.g. constants only folding needed)."""
    needed = set(outputs)
    kept: list[Node] = []
    for nd in reversed(nodes):
        if any(o in needed for o in nd.outputs if o):
            kept.append(nd)
            needed.update(i for i in nd.inputs if i)
    return list(reversed(kept))
