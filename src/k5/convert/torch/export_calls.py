"""Layer calls for the PyTorch exporter: which submodules convert as whole layers, their call signatures (as
``torch.export`` preserved them, or recovered from the graph), and converting one call with its module converter."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from k5.convert.torch.export_context import Exporter, module_key
from k5.convert.torch.registry import MODULE_EXPORTERS
from k5.errors import ConversionError

__all__ = ["InferredSignature", "candidates", "convert_call", "inferred_calls", "stack_paths"]


def candidates(module: Any) -> dict[str, Any]:
    """Submodules to convert as whole layers: the outermost ones whose class has a module converter."""
    found: dict[str, Any] = {}
    for fqn, m in module.named_modules(remove_duplicate=False):
        if not fqn or module_key(type(m)) not in MODULE_EXPORTERS:
            continue
        if any(fqn.startswith(p + ".") for p in found):
            continue
        found[fqn] = m
    return found


def stack_paths(n: Any) -> list[str]:
    stack = n.meta.get("nn_module_stack") or {}
    return [path for path, _ in stack.values()]


#: layers with one tensor input and one output, whose call can be recovered without a preserved signature
_SINGLE_INPUT = (
    "Linear", "Conv", "BatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm", "Embedding", "PReLU", "RMSNorm",
)  # fmt: skip


@dataclass
class InferredSignature:
    """A call signature recovered from the graph (torch.export records none for a GraphModule's submodules)."""

    input: str
    output: str


def inferred_calls(ep: Any, candidates: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    """Single-input layers called once, whose group of FX nodes reads one outside value and yields one."""
    members: dict[str, list[Any]] = {}
    for n in ep.graph.nodes:
        if n.op != "call_function":
            continue
        for p in stack_paths(n):
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
            out[fqn] = InferredSignature(ins.pop(), outs.pop())
    return out


def convert_call(cx: Exporter, fqn: str, mod: Any, signature: Any) -> None:
    """Convert one call of a layer module from its preserved call signature."""
    import torch
    from torch.export.graph_signature import ConstantArgument

    if isinstance(signature, InferredSignature):
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
