"""PyTorch -> k5: capture a module with ``torch.export`` and map it onto k5 ops, one node per layer.

How it works:

1. The module is exported (``strict=False``) in eval mode with ``preserve_module_call_signature`` for every
   submodule whose class has a module converter (``nn.Linear``, ``nn.Conv2d``, ``nn.LSTM``,
   ``nn.MultiheadAttention``...), then functionalised without decomposing (``run_decompositions({})``).
2. Each FX node carries ``nn_module_stack``: the nodes that run inside such a submodule form one group that is
   converted as a whole by its module converter (one k5 node named by the module path, owning the module's
   weights), reading the call's real arguments from the preserved call signature.
3. Every other node is mapped by its ATen converter. Nodes that do not depend on the graph inputs are evaluated
   now (constant folding); parameters used outside a converted layer become ``Constant`` nodes named by their path.
4. Symbolic sizes (dynamic shapes) become int64 ``[1]`` tensors computed from the ``Shape`` of a graph input.

The exported model records a validation pair: the example inputs and the module's outputs for them.
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from k5.convert.naming import unique_name
from k5.convert.torch.dtypes import k5_dtype, to_numpy
from k5.convert.torch.registry import ATEN_EXPORTERS, MODULE_EXPORTERS
from k5.errors import ConversionError, UnsupportedOpsError
from k5.format.model import Graph, Metadata, Model, Node, TensorInfo, ValidationPair

__all__ = ["Const", "Exporter", "aten_key", "from_torch", "module_key", "save_torch"]

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


_INPLACE = re.compile(r"^aten\.(?!__)(\w+)_\.(\w+)$")  # not dunders such as aten.__and__.Tensor


def functional_key(key: str) -> str | None:
    """``aten.relu_.default`` -> ``aten.relu.default`` (the value-returning twin of an in-place op)."""
    m = _INPLACE.match(key)
    return f"aten.{m.group(1)}.{m.group(2)}" if m else None


def functional_target(target: Any) -> Any:
    """The functional twin of an in-place ATen overload (or the target itself)."""
    import torch

    m = _INPLACE.match(aten_key(target))
    if not m:
        return target
    return getattr(getattr(torch.ops.aten, m.group(1)), m.group(2))


def module_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def aten_key(target: Any) -> str:
    if isinstance(target, str):
        return target
    if callable(target) and getattr(target, "__module__", "") == "_operator":
        return f"operator.{target.__name__}"
    return str(target)


@dataclass
class Const:
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
        self.env: dict[str, Any] = {}  # FX node name -> k5 tensor name | Const | Sym | python value | list
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
        value = np.array(arr, order="C")  # (np.ascontiguousarray would turn 0-d into 1-d)
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
        v = self.value(arg) if not isinstance(arg, (str, Const, Sym)) else arg
        if isinstance(v, str):
            return v
        if isinstance(v, Const):
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
        if isinstance(arg, Const):
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


def _same_sym(a: Any, b: Any) -> bool:
    if isinstance(a, int) or isinstance(b, int):
        return False
    try:
        return str(a.node.expr) == str(b.node.expr)
    except AttributeError:
        return False


def _dynamic_names(module: Any, example: Sequence[Any], dynamic_shapes: Any) -> list[dict[int, str]]:
    """Per positional input, axis -> dimension name from ``torch.export.Dim`` objects in ``dynamic_shapes``."""
    out: list[dict[int, str]] = [{} for _ in example]
    if dynamic_shapes is None:
        return out
    specs: list[Any]
    if isinstance(dynamic_shapes, Mapping):
        params = [p for p in inspect.signature(module.forward).parameters]
        specs = [dynamic_shapes.get(p) for p in params[: len(example)]]
    else:
        specs = list(dynamic_shapes)
    for i, spec in enumerate(specs[: len(example)]):
        items = spec.items() if isinstance(spec, Mapping) else enumerate(spec or [])
        for axis, dim in items:
            name = getattr(dim, "__name__", None)
            if isinstance(name, str) and name:
                out[i][int(axis)] = name
    return out


def _batch_shapes(args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """``dynamic_shapes`` naming dimension 0 ``batch`` in every tensor input whose dim 0 has the first one's size."""
    import torch
    from torch.export import Dim

    tensors = [a for a in args if isinstance(a, torch.Tensor) and a.dim() > 0]
    if not tensors:
        return None
    size = tensors[0].shape[0]
    batch = Dim("batch")
    specs = tuple(
        {0: batch} if isinstance(a, torch.Tensor) and a.dim() > 0 and a.shape[0] == size else None for a in args
    )
    return specs


def _candidates(module: Any) -> dict[str, Any]:
    """Submodules to convert as whole layers: the outermost ones whose class has a module converter."""
    from k5.convert.torch import export_modules  # noqa: F401 - registers the module converters

    found: dict[str, Any] = {}
    for fqn, m in module.named_modules(remove_duplicate=False):
        if not fqn or module_key(type(m)) not in MODULE_EXPORTERS:
            continue
        if any(fqn.startswith(p + ".") for p in found):
            continue
        found[fqn] = m
    return found


def _stack_paths(n: Any) -> list[str]:
    stack = n.meta.get("nn_module_stack") or {}
    return [path for path, _ in stack.values()]


def _export(module: Any, args: tuple[Any, ...], dynamic_shapes: Any, fqns: Sequence[str]) -> Any:
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
                module, args, dynamic_shapes=dynamic_shapes, strict=False, preserve_module_call_signature=tuple(fqns)
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

    ``example_inputs``: a tensor or a tuple of positional inputs. The batch is dynamic by default: dimension 0 of
    every tensor input whose dimension 0 has the first input's size is named ``batch`` and left free (pass
    ``dynamic_batch=False`` to keep every size static); where ``torch.export`` cannot keep it free, the model is
    exported with static sizes and a warning says so. ``dynamic_shapes``, as for ``torch.export.export``, replaces
    that default (``torch.export.Dim("seq")`` names the dimension in the file).

    Inputs are named by ``input_names`` or by the ``forward`` parameters; outputs by ``output_names`` or by the
    module's output structure (dict keys, ``ModelOutput`` fields such as ``logits``), else ``output`` for a single
    tensor and ``output_<i>`` for the leaves of a tuple.

    The module is captured in eval mode (its training flag is restored afterwards). Layers with a converter (see
    :data:`k5.convert.torch.SUPPORTED`) become one node each, named by their module path. Raises
    :class:`UnsupportedOpsError` listing every unsupported op, and :class:`ConversionError` naming the FX node,
    module and op for any other failure.
    """
    import torch

    from k5.convert.torch import export_aten, export_index  # noqa: F401 - registers the ATen converters

    args = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    was_training = module.training
    module.eval()
    try:
        candidates = _candidates(module)
        if dynamic_shapes is None and dynamic_batch and _batch_shapes(args) is not None:
            dynamic_shapes = _batch_shapes(args)
            try:
                ep = _export(module, args, dynamic_shapes, list(candidates))
            except ConversionError as e:
                warnings.warn(
                    f"{type(module).__name__}: the batch dimension stays static (torch.export could not keep "
                    f"dimension 0 free: {str(e.__cause__ or e).splitlines()[0][:300]}); pass dynamic_shapes to "
                    "choose the dynamic dimensions",
                    stacklevel=2,
                )
                dynamic_shapes = None
                ep = _export(module, args, None, list(candidates))
        else:
            ep = _export(module, args, dynamic_shapes, list(candidates))
        with torch.no_grad():
            reference = module(*args) if validation else None
    finally:
        module.train(was_training)
    model = _convert(ep, module, candidates, args, dynamic_shapes, input_names, output_names)
    if metadata is not None:
        model.metadata = metadata
    if not model.metadata.producer:
        model.metadata.producer = f"k5 / torch {torch.__version__}"
    if reference is not None:
        flat = torch.utils._pytree.tree_leaves(reference)
        model.validation = ValidationPair(
            inputs={t.name: to_numpy(a).copy() for t, a in zip(model.graph.inputs, args, strict=True)},
            outputs={t.name: to_numpy(v).copy() for t, v in zip(model.graph.outputs, flat, strict=True)},
        )
    return model


def save_torch(module: Any, path: Any, example_inputs: Any, **kwargs: Any) -> Model:
    """:func:`from_torch`, then ``k5.save`` to ``path``; returns the model."""
    from k5.format.hdf5 import save

    model = from_torch(module, example_inputs, **kwargs)
    save(model, path)
    return model


def _convert(
    ep: Any,
    module: Any,
    candidates: dict[str, Any],
    args: tuple[Any, ...],
    dynamic_shapes: Any,
    input_names: Sequence[str] | None,
    output_names: Sequence[str] | None,
) -> Model:
    import torch
    from torch.export.graph_signature import InputKind, OutputKind

    cx = Exporter()
    graph = ep.graph
    cx.fx_nodes = {n.name: n for n in graph.nodes}
    cx.reserved = set(ep.state_dict) | set(ep.constants)
    cx.leaf_paths = {p for p, m in module.named_modules() if p and not any(True for _ in m.children())}
    sig = ep.graph_signature
    calls: dict[str, Any] = {
        e.fqn: e.signature for e in ep.module_call_graph if e.fqn in candidates and e.signature is not None
    }
    calls.update(_inferred_calls(ep, candidates, calls))

    # --- placeholders: parameters/buffers/constants are Consts, user inputs graph inputs
    spec_of = {s.arg.name: s for s in sig.input_specs if hasattr(s.arg, "name")}
    dim_names = _dynamic_names(module, args, dynamic_shapes)
    graph_inputs: list[TensorInfo] = []
    user_i = 0
    for n in graph.nodes:
        if n.op != "placeholder":
            continue
        spec = spec_of.get(n.name)
        if spec is None or spec.kind == InputKind.USER_INPUT:
            fake = n.meta.get("val")
            name = input_names[user_i] if input_names and user_i < len(input_names) else n.name
            cx.names.add(name)
            cx.env[n.name] = name
            cx.meta[name] = fake
            shape: list[int | str] = []
            for axis, d in enumerate(fake.shape):
                if isinstance(d, int):
                    shape.append(int(d))
                    continue
                label = dim_names[user_i].get(axis) if user_i < len(dim_names) else None
                label = label or str(d)
                shape.append(label)
                expr = d.node.expr
                if expr.is_Symbol and expr not in cx.sym_sources:
                    cx.sym_sources[expr] = (name, axis)
            graph_inputs.append(TensorInfo(name, k5_dtype(fake.dtype), shape))
            user_i += 1
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            value = ep.state_dict[spec.target] if spec.target in ep.state_dict else ep.constants[spec.target]
            cx.env[n.name] = Const(value, spec.target)
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            cx.env[n.name] = Const(ep.constants[spec.target], spec.target)
        else:
            raise ConversionError(f"graph input {n.name!r} of kind {spec.kind.name} is not supported")

    # --- which nodes depend on the inputs (the rest is folded), which layer group each belongs to
    dynamic: set[str] = {n.name for n in graph.nodes if n.op == "placeholder" and isinstance(cx.env[n.name], str)}
    group_of: dict[str, str] = {}
    unsupported: Counter[str] = Counter()
    for n in graph.nodes:
        if n.op == "call_function" and (any(a.name in dynamic for a in n.all_input_nodes) or _is_symbolic(n)):
            dynamic.add(n.name)
    for n in graph.nodes:
        if n.op != "call_function":
            continue
        paths = _stack_paths(n)
        group = next((p for p in paths if p in calls), None)
        if group is not None:
            group_of[n.name] = group
            continue
        key = aten_key(n.target)
        key = functional_key(key) if key not in ATEN_EXPORTERS and functional_key(key) else key
        known = key in ATEN_EXPORTERS or key in PASSTHROUGH or key in IGNORED or _is_symbolic(n)
        if n.name in dynamic and not known:
            unsupported[key] += 1
    if unsupported:
        raise UnsupportedOpsError("PyTorch", dict(unsupported), where=type(module).__name__)

    # --- walk the graph
    done_groups: set[str] = set()
    for n in graph.nodes:
        if n.op != "call_function":
            continue
        paths = _stack_paths(n)
        cx.scope = paths[-1] if paths else ""
        group = group_of.get(n.name)
        if group is not None:
            if group not in done_groups:
                done_groups.add(group)
                _convert_call(cx, group, candidates[group], calls[group])
            continue
        key = aten_key(n.target)
        inplace = functional_key(key)
        if inplace is not None and key not in ATEN_EXPORTERS:
            key = inplace
        if key in IGNORED:
            continue
        val = n.meta.get("val")
        if isinstance(val, (bool, int, float)):
            cx.env[n.name] = val  # a size or number known at export time
            continue
        if n.name not in dynamic:
            try:
                cx.env[n.name] = _evaluate(cx, n)
            except _NotFoldableError:
                dynamic.add(n.name)  # reads a tensor that exists only at run time: convert it instead
            else:
                if inplace is not None and isinstance(n.args[0], torch.fx.Node):
                    cx.env[n.args[0].name] = cx.env[n.name]
                continue
        if _is_symbolic(n):
            cx.env[n.name] = Sym(n.meta["val"])
            continue
        if key in PASSTHROUGH:
            cx.env[n.name] = cx.value(n.args[0])
            continue
        fn = ATEN_EXPORTERS.get(key)
        if fn is None:
            raise UnsupportedOpsError("PyTorch", {key: 1}, where=f"node {n.name!r} in module {cx.scope or '(root)'}")
        try:
            cx.env[n.name] = fn(cx, n)
        except ConversionError as e:
            raise e if e.where else e.located(f"{key} in module {cx.scope or '(root)'}") from None
        out = cx.env[n.name]
        if isinstance(out, str) and out not in cx.meta:
            cx.meta[out] = n.meta.get("val")
        if inplace is not None and isinstance(n.args[0], torch.fx.Node):
            cx.env[n.args[0].name] = out  # later readers of the mutated tensor see the result

    # --- outputs
    out_node = next(n for n in graph.nodes if n.op == "output")
    user_outputs = [
        a for a, s in zip(out_node.args[0], sig.output_specs, strict=True) if s.kind == OutputKind.USER_OUTPUT
    ]
    graph_outputs: list[TensorInfo] = []
    input_set = {t.name for t in graph_inputs}
    structured = _output_names(ep, len(user_outputs))
    for i, a in enumerate(user_outputs):
        want = output_names[i] if output_names and i < len(output_names) else structured[i]
        cx.scope = ""
        name = cx.t(a) if a is not None else None
        if name is None:
            raise ConversionError(f"output {i} is None; k5 graphs return tensors only")
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
            dtype = k5_dtype(fake.dtype)
            shape = [int(d) if isinstance(d, int) else _sym_label(d, cx, graph_inputs) for d in fake.shape]
        graph_outputs.append(TensorInfo(name, dtype, shape))

    nodes = _prune(cx.nodes, [o.name for o in graph_outputs])
    known = {t.name for t in (*graph_inputs, *graph_outputs)}
    value_info: list[TensorInfo] = []
    for nd in nodes:
        for name in nd.outputs:
            fake = cx.meta.get(name)
            if name in known or not isinstance(fake, torch.Tensor):
                continue
            dims = [int(d) if isinstance(d, int) else _sym_label(d, cx, graph_inputs) for d in fake.shape]
            value_info.append(TensorInfo(name, k5_dtype(fake.dtype), dims))
    graph = Graph(nodes=nodes, inputs=graph_inputs, outputs=graph_outputs, value_info=value_info)
    graph.name = type(module).__name__
    return Model(graph=graph)


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


def _is_symbolic(n: Any) -> bool:
    import torch

    v = n.meta.get("val")
    return isinstance(v, torch.SymInt | torch.SymFloat | torch.SymBool) and not _static(v)


def _static(v: Any) -> bool:
    try:
        return v.node.expr.is_number
    except AttributeError:
        return True


class _NotFoldableError(Exception):
    """An FX node whose inputs are not all known at export time."""


def _evaluate(cx: Exporter, n: Any) -> Any:
    """Run an FX node whose inputs are all known now; its result becomes a Const (or a python value)."""
    import torch
    import torch.fx

    def known(v: Any, a: Any) -> Any:
        if isinstance(v, Const):
            return v.value
        if isinstance(v, (str, Sym)):  # a k5 tensor name or a run-time size: not known now
            raise _NotFoldableError(a.name)
        if isinstance(v, list):
            return [known(x, a) for x in v]
        return v

    def real(a: Any) -> Any:
        if isinstance(a, torch.fx.Node):
            if a.name not in cx.env:
                raise ConversionError(f"FX value {a.name!r} is used before it is computed")
            return known(cx.env[a.name], a)
        if isinstance(a, (list, tuple)):
            return type(a)(real(x) for x in a)
        if isinstance(a, dict):
            return {k: real(v) for k, v in a.items()}
        return a

    target: Callable[..., Any] = functional_target(n.target)  # never mutate the module's own tensors
    with torch.no_grad():
        result = target(*real(n.args), **real(n.kwargs))
    hint = cx.scoped(n.name)

    def wrap(r: Any) -> Any:
        if isinstance(r, torch.Tensor):
            return Const(r, hint)
        if isinstance(r, (list, tuple)):
            return [wrap(x) for x in r]
        return r

    return wrap(result)


#: layers with one tensor input and one output, whose call can be recovered without a preserved signature
_SINGLE_INPUT = (
    "Linear", "Conv", "BatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm", "Embedding", "PReLU", "RMSNorm",
)  # fmt: skip


@dataclass
class _InferredSignature:
    """A call signature recovered from the graph (torch.export records none for a GraphModule's submodules)."""

    input: str
    output: str


def _inferred_calls(ep: Any, candidates: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    """Single-input layers called once, whose group of FX nodes reads one outside value and yields one."""
    members: dict[str, list[Any]] = {}
    for n in ep.graph.nodes:
        if n.op != "call_function":
            continue
        for p in _stack_paths(n):
            if p in candidates and p not in known:
                members.setdefault(p, []).append(n)
                break
    specs = ep.graph_signature.input_specs
    lifted = {s.arg.name for s in specs if s.kind.name != "USER_INPUT" and hasattr(s.arg, "name")}
    out: dict[str, Any] = {}
    for fqn, nodes in members.items():
        if not type(candidates[fqn]).__name__.startswith(_SINGLE_INPUT):
            continue
        inside = {n.name for n in nodes}
        ins = {a.name for n in nodes for a in n.all_input_nodes if a.name not in inside and a.name not in lifted}
        outs = {n.name for n in nodes if any(u.name not in inside for u in n.users)}
        if len(ins) == 1 and len(outs) == 1:
            out[fqn] = _InferredSignature(ins.pop(), outs.pop())
    return out


def _convert_call(cx: Exporter, fqn: str, mod: Any, signature: Any) -> None:
    """Convert one call of a layer module from its preserved call signature."""
    import torch
    from torch.export.graph_signature import ConstantArgument

    if isinstance(signature, _InferredSignature):
        cx.scope = fqn
        fn = MODULE_EXPORTERS.get(module_key(type(mod)))
        assert fn is not None
        result = fn(cx, fqn, mod, {"input": cx.env[signature.input]}, [True])[0]
        cx.env[signature.output] = result
        if isinstance(result, str) and signature.output in cx.fx_nodes:
            cx.meta.setdefault(result, cx.fx_nodes[signature.output].meta.get("val"))
        return
    values: list[Any] = []
    for a in signature.inputs:
        if isinstance(a, ConstantArgument):
            values.append(a.value)
        elif hasattr(a, "name") and a.name in cx.env:
            values.append(cx.env[a.name])
        elif hasattr(a, "name") and a.name:
            raise ConversionError(f"input {a.name!r} of the call is not available", where=f"module {fqn!r}")
        else:
            values.append(None)
    call_args, call_kwargs = torch.utils._pytree.tree_unflatten(values, signature.in_spec)
    bound = inspect.signature(type(mod).forward).bind(mod, *call_args, **call_kwargs)
    bound.apply_defaults()
    params = dict(bound.arguments)
    params.pop("self", None)
    cx.scope = fqn
    fn = MODULE_EXPORTERS.get(module_key(type(mod)))
    assert fn is not None
    used = [bool(getattr(o, "name", "")) for o in signature.outputs]
    try:
        results = fn(cx, fqn, mod, params, used)
    except ConversionError as e:
        raise e if e.where else e.located(f"module {fqn!r} ({type(mod).__name__})") from None
    for o, r in zip(signature.outputs, results, strict=False):
        name = getattr(o, "name", "")
        if name and isinstance(r, str) and name in cx.fx_nodes:
            cx.meta.setdefault(r, cx.fx_nodes[name].meta.get("val"))
        if name:
            if r is None:
                raise ConversionError(
                    f"output {name!r} of the call is used but the converter does not produce it",
                    where=f"module {fqn!r} ({type(mod).__name__})",
                )
            cx.env[name] = r
