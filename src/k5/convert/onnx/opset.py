"""Which ONNX opset an exported graph needs.

k5 ops carry the latest ONNX semantics. An exported node may still be written at an older opset when the ONNX
schema there has the same *form*: the same input names, no attribute that later became an input, every attribute
the node sets, the same defaults for the attributes it leaves out, and type constraints that admit the node's
value types (found by ONNX shape inference). The lowest such opset over all nodes is the one written, which keeps
files runnable by runtimes that lag behind the newest opset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["SEMANTICS_SINCE", "SEMANTICS_SINCE_IF", "min_opset", "required_opset", "walk_nodes"]

#: ops whose semantics (not their signature) changed at an opset: op -> the first opset with k5's semantics
SEMANTICS_SINCE: dict[str, int] = {"GridSample": 20, "Softmax": 13, "LogSoftmax": 13, "Hardmax": 13}


def _float_mod(node: Any, types: dict[str, str]) -> bool:
    fmod = next((a.i for a in node.attribute if a.name == "fmod"), 0)
    t = types.get(node.input[0], "") if node.input else ""
    return fmod == 0 and t.startswith(("tensor(float", "tensor(double", "tensor(bfloat"))


def _attr_is(name: str, *values: bytes) -> Callable[[Any, dict[str, str]], bool]:
    def check(node: Any, types: dict[str, str]) -> bool:
        return any(a.name == name and a.s in values for a in node.attribute)

    return check


#: semantics that changed for some uses only: op -> (first opset with k5's semantics, does this node use them?)
SEMANTICS_SINCE_IF: dict[str, tuple[int, Callable[[Any, dict[str, str]], bool]]] = {
    "Mod": (28, _float_mod),  # floored modulo of floats (fmod=0) is defined from opset 28 on
    "Pad": (19, _attr_is("mode", b"wrap")),
    "Resize": (19, _attr_is("coordinate_transformation_mode", b"half_pixel_symmetric")),
}

_CACHE: dict[tuple[Any, ...], int] = {}


def walk_nodes(graph: Any) -> Iterator[Any]:
    import onnx

    for n in graph.node:
        yield n
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from walk_nodes(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from walk_nodes(g)


def _type_str(tp: Any) -> str | None:
    """A TypeProto as ONNX writes type constraints: ``tensor(float)``, ``seq(tensor(int64))``..."""
    import onnx

    which = tp.WhichOneof("value")
    if which == "tensor_type":
        if not tp.tensor_type.elem_type:
            return None
        return f"tensor({onnx.TensorProto.DataType.Name(tp.tensor_type.elem_type).lower()})"
    if which == "sequence_type":
        inner = _type_str(tp.sequence_type.elem_type)
        return f"seq({inner})" if inner else None
    if which == "optional_type":
        inner = _type_str(tp.optional_type.elem_type)
        return f"optional({inner})" if inner else None
    return None


def value_types(model: Any) -> dict[str, str]:
    """Value name -> type string, from ONNX shape inference (nested graphs included); {} if inference fails."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001 - inference is best effort: without types the form check alone decides
        return {}
    types: dict[str, str] = {}

    def collect(g: Any) -> None:
        for v in (*g.input, *g.output, *g.value_info):
            t = _type_str(v.type)
            if t:
                types[v.name] = t
        for t in g.initializer:
            types[t.name] = f"tensor({onnx.TensorProto.DataType.Name(t.data_type).lower()})"
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    collect(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for sub in a.graphs:
                        collect(sub)

    collect(inferred.graph)
    return types


def _types_fit(schema: Any, node: Any, types: dict[str, str]) -> bool:
    constraints = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    for formals, names in ((schema.inputs, node.input), (schema.outputs, node.output)):
        if not formals:
            continue
        for i, name in enumerate(names):
            t = types.get(name) if name else None
            if t is None:
                continue
            formal = formals[min(i, len(formals) - 1)]
            allowed = constraints.get(formal.type_str)
            if allowed is not None and t not in allowed:
                return False
            if allowed is None and formal.type_str.startswith(("tensor(", "seq(")) and formal.type_str != t:
                return False
    return True


def _defaults(schema: Any) -> dict[str, bytes]:
    return {name: a.default_value.SerializeToString() for name, a in schema.attributes.items()}


def min_opset(node: Any, types: dict[str, str]) -> int:
    """The first opset at which ``node`` (a NodeProto of the default domain) keeps its latest form and types."""
    key = (
        node.op_type,
        frozenset(a.name for a in node.attribute),
        tuple(bool(i) for i in node.input),
        tuple(types.get(i) for i in node.input),
        tuple(types.get(o) for o in node.output),
    )
    if key not in _CACHE:
        _CACHE[key] = max(_form_opset(node, key[1], types), SEMANTICS_SINCE.get(node.op_type, 0))
    found = _CACHE[key]
    since_if = SEMANTICS_SINCE_IF.get(node.op_type)
    if since_if is not None and since_if[1](node, types):
        found = max(found, since_if[0])
    return found


def _form_opset(node: Any, used: frozenset[str], types: dict[str, str]) -> int:
    import onnx

    latest = onnx.defs.get_schema(node.op_type, onnx.defs.onnx_opset_version(), "")
    latest_inputs = [i.name for i in latest.inputs]
    latest_defaults = _defaults(latest)
    n_in = len(node.input)
    found = latest.since_version
    version = 1
    while version <= latest.since_version:
        try:
            s = onnx.defs.get_schema(node.op_type, version, "")
        except onnx.defs.SchemaError:
            version += 1
            continue
        version = max(version, s.since_version)
        defaults = _defaults(s)
        ok = (
            not s.deprecated
            and set(defaults) <= set(latest_defaults)
            and used <= set(defaults)
            and all(defaults[a] == latest_defaults[a] for a in defaults if a not in used)
            and [i.name for i in s.inputs][:n_in] == latest_inputs[:n_in]
            and (n_in <= len(s.inputs) or (s.inputs and s.inputs[-1].option == s.inputs[-1].option.Variadic))
            and _types_fit(s, node, types)
        )
        if ok:
            found = s.since_version
            break
        version += 1
    return found


def required_opset(model: Any, floor: int) -> tuple[int, dict[str, int]]:
    """(the lowest opset >= ``floor`` that fits every node, the opset each op needs) for an ONNX model."""
    types = value_types(model)
    need: dict[str, int] = {}
    for node in walk_nodes(model.graph):
        if node.domain not in ("", "ai.onnx"):
            continue
        need[node.op_type] = max(need.get(node.op_type, 0), min_opset(node, types))
    return max([floor, *need.values()]), need
