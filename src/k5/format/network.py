"""The network JSON: :class:`~k5.format.model.Model` graph <-> JSON text, and its schema check.

The JSON form is defined in ``docs/spec.md``; ``network.schema.json`` (shipped beside this module) is its JSON
Schema. This module validates documents against that schema with a small built-in validator (the core does not
depend on the ``jsonschema`` package), reporting JSON paths such as ``$.graph.nodes[3].inputs[1]``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from importlib import resources
from typing import Any

import numpy as np

from k5.errors import HostileSizeError, JSONSyntaxError, SchemaError, VersionError
from k5.format.model import DEFAULT_DOMAIN, Graph, Model, Node, TensorInfo, WeightSpec, weight_dtype, weight_shape

__all__ = [
    "MAX_GRAPH_DEPTH",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_NODES",
    "NETWORK_VERSION",
    "check_network_version",
    "dumps_network",
    "graph_from_dict",
    "loads_network",
    "network_to_dict",
    "parse_json",
    "schema",
    "validate_schema",
]

#: The version of the network JSON that this release writes (``"k5_network"``); readers accept any 1.x.
NETWORK_VERSION = "1.0"
#: Limits a reader enforces before doing work proportional to them.
MAX_JSON_BYTES = 256 << 20
#: Nodes in a graph, nested graphs included (checked before the schema walk, which costs ~70 us per node).
MAX_NODES = 1 << 20
MAX_JSON_DEPTH = 256
MAX_GRAPH_DEPTH = 32
#: The most dimensions a declared shape may have (NumPy's own limit is 64; HDF5's is 32).
MAX_RANK = 32
#: Elements a declared tensor may hold: what a 64-bit size can count (shapes past it cannot be stored anywhere).
MAX_ELEMENTS = (1 << 63) - 1

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


# --- the schema and a small validator for the subset of JSON Schema it uses ------------------------------------
@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the network JSON, as shipped in the package."""
    text = resources.files("k5.format").joinpath("network.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


#: exact Python types json.loads produces -> JSON Schema type names (the fast path of _json_type)
_JSON_TYPES = {type(None): "null", bool: "boolean", int: "integer", str: "string", list: "array", dict: "object"}


def _json_type(value: Any) -> str:
    name = _JSON_TYPES.get(type(value))
    if name is not None:
        return name
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


Path = tuple[str | int, ...]


def _fmt_path(path: Path) -> str:
    """``$.graph.nodes[3].inputs[1]`` (built only when an error is reported)."""
    out = "$"
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            out += f".{key}"
        else:
            out += f"[{json.dumps(key)}]"
    return out


class _Validator:
    def __init__(self, root: dict[str, Any], *, allow_unknown_keys: bool) -> None:
        self.root = root
        self.allow_unknown_keys = allow_unknown_keys
        self._refs: dict[str, Any] = {}  # "$ref" string -> the schema it names (resolved once)
        self._accepted: dict[int, frozenset[str]] = {}  # id(schema with "type") -> the JSON types it accepts

    def resolve(self, s: Any) -> Any:
        while isinstance(s, dict) and "$ref" in s:
            ref = s["$ref"]
            target = self._refs.get(ref)
            if target is None:
                assert ref.startswith("#/"), ref
                target = self.root
                for part in ref[2:].split("/"):
                    target = target[part]
                self._refs[ref] = target
            s = target
        return s

    def types(self, s: Any) -> set[str] | None:
        """The JSON types a schema can accept (None: any)."""
        s = self.resolve(s)
        if s is True or not isinstance(s, dict):
            return None
        if "type" in s:
            t = s["type"]
            out = {t} if isinstance(t, str) else set(t)
            if "number" in out:
                out.add("integer")
            return out
        if "enum" in s:
            return {_json_type(v) for v in s["enum"]}
        if "anyOf" in s:
            out = set()
            for sub in s["anyOf"]:
                t = self.types(sub)
                if t is None:
                    return None
                out |= t
            return out
        return None

    def describe(self, s: Any) -> str:
        s_res = self.resolve(s)
        if isinstance(s_res, dict) and "title" in s_res:
            return str(s_res["title"])
        t = self.types(s_res)
        return " or ".join(sorted(t)) if t else "anything"

    def error(self, path: Path, expected: str, value: Any) -> SchemaError:
        return SchemaError(f"{_fmt_path(path)}: expected {expected}. Received: {_show(value)}")

    def check(self, value: Any, s: Any, path: Path) -> None:
        s = self.resolve(s)
        if s is True:
            return
        if s is False:
            raise SchemaError(f"{_fmt_path(path)}: not allowed here")
        vt = _json_type(value)
        if "type" in s:
            accepted = self._accepted.get(id(s))
            if accepted is None:
                declared = [s["type"]] if isinstance(s["type"], str) else s["type"]
                accepted = self._accepted[id(s)] = frozenset(declared) | (
                    {"integer"} if "number" in declared else frozenset()
                )
            if vt not in accepted:
                wanted = [s["type"]] if isinstance(s["type"], str) else s["type"]
                raise self.error(path, s.get("title", " or ".join(wanted)), value)
        if "enum" in s and not any(value == v and _json_type(value) == _json_type(v) for v in s["enum"]):
            choices = ", ".join(map(str, s["enum"]))
            raise self.error(path, f"{s.get('title', 'one of')} ({choices})", value)
        if "anyOf" in s:
            self.check_any(value, s["anyOf"], path, s.get("title"))
        if vt == "string":
            if len(value) < s.get("minLength", 0):
                raise self.error(path, s.get("title", f"a string of at least {s['minLength']} characters"), value)
            if "pattern" in s and not re.search(s["pattern"], value):
                raise self.error(path, f"a string matching {s['pattern']}", value)
        if vt in ("integer", "number") and "minimum" in s and value < s["minimum"]:
            raise self.error(path, f"a number >= {s['minimum']}", value)
        if vt == "array" and "items" in s:
            for i, item in enumerate(value):
                self.check(item, s["items"], (*path, i))
        if vt == "object":
            self.check_object(value, s, path)

    def check_any(self, value: Any, options: list[Any], path: Path, title: str | None) -> None:
        vt = _json_type(value)
        fitting = [o for o in options if (t := self.types(o)) is None or vt in t or (vt == "integer" and "number" in t)]
        errors = []
        for o in fitting:
            try:
                self.check(value, o, path)
                return
            except SchemaError as e:
                errors.append(e)
        if len(errors) == 1:  # only one alternative has the value's type: its error is the precise one
            raise errors[0]
        expected = title or " or ".join(self.describe(o) for o in options)
        raise self.error(path, expected, value)

    def check_object(self, value: dict[str, Any], s: dict[str, Any], path: Path) -> None:
        for key in s.get("required", ()):
            if key not in value:
                raise SchemaError(f"{_fmt_path(path)}: missing required key {key!r} (keys present: {sorted(value)})")
        props = s.get("properties", {})
        patterns = s.get("patternProperties", {})
        extra = s.get("additionalProperties", True)
        for key, item in value.items():
            sub = (*path, key)
            if "propertyNames" in s:
                self.check(key, s["propertyNames"], sub)
            if key in props:
                self.check(item, props[key], sub)
                continue
            matched = [p for p in patterns if re.search(p, key)]
            for p in matched:
                self.check(item, patterns[p], sub)
            if matched:
                continue
            if extra is False:
                if self.allow_unknown_keys:
                    continue
                allowed = ", ".join(sorted(props)) + (", x-*" if patterns else "")
                raise SchemaError(f"{_fmt_path(sub)}: unknown key {key!r} (allowed: {allowed})")
            self.check(item, extra, sub)


def validate_schema(doc: Any, *, allow_unknown_keys: bool = False) -> None:
    """Raise :class:`SchemaError` (with the JSON path) when ``doc`` violates the network JSON schema.

    ``allow_unknown_keys``: accept keys the schema does not know (used for files of a newer minor version).
    """
    _Validator(schema(), allow_unknown_keys=allow_unknown_keys).check(doc, schema(), ())


# --- parsing ---------------------------------------------------------------------------------------------------
def _no_constants(name: str) -> Any:
    raise ValueError(f'{name} is not JSON (write non-finite floats as the strings "nan", "inf", "-inf")')


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SchemaError(f"duplicate key {key!r} in a JSON object")
        out[key] = value
    return out


def _depth(doc: Any) -> int:
    deepest, stack = 0, [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return deepest


def parse_json(text: str | bytes) -> Any:
    """Parse the network JSON text: :class:`JSONSyntaxError` with line and column when it does not parse."""
    if len(text) > MAX_JSON_BYTES:
        raise HostileSizeError(f"the network JSON is {len(text)} bytes; the limit is {MAX_JSON_BYTES}")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JSONSyntaxError(f"the network JSON is not valid UTF-8 (byte {e.start}: {e.reason})") from None
    try:
        doc = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        at = f"line {e.lineno}, column {e.colno}"
        raise JSONSyntaxError(f"the network JSON does not parse: {e.msg} at {at}") from None
    except ValueError as e:
        raise JSONSyntaxError(f"the network JSON does not parse: {e}") from None
    except RecursionError:
        raise HostileSizeError(f"the network JSON nests deeper than this reader supports ({MAX_JSON_DEPTH})") from None
    if _depth(doc) > MAX_JSON_DEPTH:
        raise HostileSizeError(f"the network JSON nests {_depth(doc)} levels deep; the limit is {MAX_JSON_DEPTH}")
    return doc


def split_version(text: str) -> tuple[int, int] | None:
    """(major, minor) of a ``"MAJOR.MINOR"`` version string (the file's ``k5_version``, ``k5_network``), else None."""
    m = re.fullmatch(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _version(text: str, what: str) -> tuple[int, int]:
    version = split_version(text)
    if version is None:
        raise SchemaError(f"{what} must look like MAJOR.MINOR. Received: {text!r}")
    return version


def check_network_version(doc: dict[str, Any]) -> bool:
    """Check ``k5_network`` and ``opset``; return True when the document is a newer minor version (lenient keys)."""
    if not isinstance(doc, dict):
        raise SchemaError(f"$: expected an object. Received: {_show(doc)}")
    raw = doc.get("k5_network")
    if not isinstance(raw, str):
        raise SchemaError(f'$.k5_network: expected a version string such as "1.0". Received: {_show(raw)}')
    major, minor = _version(raw, "$.k5_network")
    ours = _version(NETWORK_VERSION, "NETWORK_VERSION")
    if major != ours[0]:
        raise VersionError(
            f"the network JSON is version {raw}; this reader supports {ours[0]}.x (upgrade k5 to read it)"
            if major > ours[0]
            else f"the network JSON is version {raw}, which no k5 release wrote"
        )
    opset = doc.get("opset")
    if isinstance(opset, dict) and isinstance(opset.get(DEFAULT_DOMAIN), int):
        from k5.ops import OPSET_VERSION

        if opset[DEFAULT_DOMAIN] > OPSET_VERSION:
            raise VersionError(
                f"the file needs op set k5 v{opset[DEFAULT_DOMAIN]}; this reader implements v{OPSET_VERSION} "
                "(upgrade k5 to read it)"
            )
    return minor > ours[1]


# --- model -> JSON ---------------------------------------------------------------------------------------------
def _encode_scalar(value: Any, where: str) -> Any:
    if isinstance(value, (bool, np.bool_)):
        raise SchemaError(f"{where}: booleans are not k5 attribute values; use the ints 0 and 1")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f
    if isinstance(value, str):
        if "\x00" in value:
            raise SchemaError(f"{where}: strings may not contain NUL")
        return value
    raise SchemaError(f"{where}: {type(value).__name__} is not a k5 attribute value (int, float, str, Graph or lists)")


def _encode_attr(value: Any, where: str) -> Any:
    if isinstance(value, Graph):
        return _graph_to_dict(value, where)
    if isinstance(value, np.ndarray):
        if value.ndim > 1:
            raise SchemaError(f"{where}: a {value.ndim}-d array is not an attribute value (store it as a weight)")
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_encode_attr(v, f"{where}[{i}]") if isinstance(v, Graph) else _encode_scalar(v, f"{where}[{i}]")
                for i, v in enumerate(value)]  # fmt: skip
    return _encode_scalar(value, where)


def _value_to_dict(t: TensorInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name}
    if t.dtype is not None:
        out["dtype"] = t.dtype
    out["shape"] = None if t.shape is None else [d if isinstance(d, str) else int(d) for d in t.shape]
    if t.kind != "tensor":
        out["kind"] = t.kind
    return out


def _node_to_dict(node: Node, where: str) -> dict[str, Any]:
    label = f"{where}node {node.id!r} ({node.op})"
    out: dict[str, Any] = {"id": node.id, "op": node.op, "inputs": list(node.inputs), "outputs": list(node.outputs)}
    if node.domain != DEFAULT_DOMAIN:
        out["domain"] = node.domain
    if node.attrs:
        out["attrs"] = {k: _encode_attr(v, f"{label}: attribute {k!r}") for k, v in node.attrs.items()}
    if node.weights:
        out["weights"] = {
            k: {"dtype": weight_dtype(v), "shape": list(weight_shape(v))} for k, v in node.weights.items()
        }
    if node.doc:
        out["doc"] = node.doc
    return out


def _graph_to_dict(graph: Graph, where: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if graph.name:
        out["name"] = graph.name
    out["inputs"] = [_value_to_dict(t) for t in graph.inputs]
    out["outputs"] = [_value_to_dict(t) for t in graph.outputs]
    if graph.value_info:
        out["value_info"] = [_value_to_dict(t) for t in graph.value_info]
    out["nodes"] = [_node_to_dict(n, where) for n in graph.nodes]
    return out


def network_to_dict(model: Model) -> dict[str, Any]:
    """The network JSON document of ``model`` (custom domains used by nodes are added to the opset at version 1)."""
    opset = {DEFAULT_DOMAIN: 1, **{str(k): int(v) for k, v in model.opset.items()}}
    for _, node in model.graph.walk():
        opset.setdefault(node.domain, 1)
    return {"k5_network": NETWORK_VERSION, "opset": opset, "graph": _graph_to_dict(model.graph)}


def _dump(value: Any, indent: int, out: list[str]) -> None:
    """Objects one key per line (keys sorted), arrays of scalars on one line: small, readable diffs."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        out.append("{\n")
        for i, key in enumerate(sorted(value)):
            out.append(f"{pad}{json.dumps(key, ensure_ascii=False)}: ")
            _dump(value[key], indent + 1, out)
            out.append(",\n" if i < len(value) - 1 else "\n")
        out.append("  " * indent + "}")
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        out.append("[\n")
        for i, item in enumerate(value):
            out.append(pad)
            _dump(item, indent + 1, out)
            out.append(",\n" if i < len(value) - 1 else "\n")
        out.append("  " * indent + "]")
    else:
        out.append(json.dumps(value, ensure_ascii=False, allow_nan=False))


def dumps_network(model: Model) -> str:
    """The network JSON text of ``model``: UTF-8, sorted keys, two-space indentation, ending in a newline."""
    doc = network_to_dict(model)
    validate_schema(doc)
    out: list[str] = []
    _dump(doc, 0, out)
    return "".join(out) + "\n"


# --- JSON -> model ---------------------------------------------------------------------------------------------
def _decode_attr(value: Any, spec_type: str | None, path: str, depth: int, opset: dict[str, int]) -> Any:
    if isinstance(value, dict):
        return _graph_from_dict(value, path, depth + 1, opset)
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return [_graph_from_dict(v, f"{path}[{i}]", depth + 1, opset) for i, v in enumerate(value)]
        item_type = {"floats": "float", "ints": "int"}.get(spec_type or "")
        return [_decode_attr(v, item_type, f"{path}[{i}]", depth, opset) for i, v in enumerate(value)]
    if spec_type in ("float", "floats"):
        if isinstance(value, str) and value in _NONFINITE:
            return _NONFINITE[value]
        if isinstance(value, int):
            return float(value)
    if isinstance(value, float) and spec_type in ("int", "ints") and value.is_integer():
        return int(value)
    return value


def _check_shape(shape: list[Any], path: str) -> None:
    """A declared shape must be storable: rank <= MAX_RANK, fixed dims multiplying to <= MAX_ELEMENTS."""
    if len(shape) > MAX_RANK:
        raise HostileSizeError(f"{path}: shape has {len(shape)} dimensions; the limit is {MAX_RANK}")
    fixed = [int(x) for x in shape if not isinstance(x, str)]
    if fixed and math.prod(fixed) > MAX_ELEMENTS:
        raise HostileSizeError(f"{path}: shape {_show(fixed)} has more elements than a 64-bit size can count")


def _value_from_dict(d: dict[str, Any], path: str = "$") -> TensorInfo:
    shape = d.get("shape")
    if shape is not None:
        _check_shape(shape, f"{path}.shape")
        shape = [int(x) if not isinstance(x, str) else x for x in shape]
    return TensorInfo(d["name"], d.get("dtype"), shape, d.get("kind", "tensor"))


def _node_from_dict(d: dict[str, Any], path: str, depth: int, opset: dict[str, int]) -> Node:
    from k5.ops import find_schema

    domain = d.get("domain", DEFAULT_DOMAIN)
    if domain not in opset:
        raise SchemaError(f"{path}.domain: node {d['id']!r} uses domain {domain!r}, which $.opset does not declare")
    op_schema = find_schema(d["op"], domain, opset[domain])
    attrs: dict[str, Any] = {}
    for name, value in d.get("attrs", {}).items():
        spec = op_schema.attrs.get(name) if op_schema is not None else None
        where = f"{path}.attrs[{json.dumps(name)}]"
        attrs[name] = _decode_attr(value, spec.type if spec else None, where, depth, opset)
    weights = {}
    for name, w in d.get("weights", {}).items():
        _check_shape(w["shape"], f"{path}.weights[{json.dumps(name)}].shape")
        weights[name] = WeightSpec(w["dtype"], tuple(int(x) for x in w["shape"]))
    return Node(
        id=d["id"],
        op=d["op"],
        inputs=list(d["inputs"]),
        outputs=list(d["outputs"]),
        attrs=attrs,
        weights=weights,
        domain=domain,
        doc=d.get("doc", ""),
    )


def _graph_from_dict(d: dict[str, Any], path: str, depth: int, opset: dict[str, int]) -> Graph:
    if depth > MAX_GRAPH_DEPTH:
        raise HostileSizeError(f"{path}: graphs nest {depth} levels deep; the limit is {MAX_GRAPH_DEPTH}")
    return Graph(
        nodes=[_node_from_dict(n, f"{path}.nodes[{i}]", depth, opset) for i, n in enumerate(d["nodes"])],
        inputs=[_value_from_dict(t, f"{path}.inputs[{i}]") for i, t in enumerate(d["inputs"])],
        outputs=[_value_from_dict(t, f"{path}.outputs[{i}]") for i, t in enumerate(d["outputs"])],
        value_info=[_value_from_dict(t, f"{path}.value_info[{i}]") for i, t in enumerate(d.get("value_info", []))],
        name=d.get("name", ""),
    )


def graph_from_dict(doc: dict[str, Any]) -> tuple[Graph, dict[str, int]]:
    """Decode a network JSON document (already schema-checked) into (graph, opset).

    Weights are :class:`WeightSpec` declarations; attributes are typed by the op schema when the op is known
    (``"nan"``/``"inf"``/``"-inf"`` become floats where the schema says float).
    """
    opset = {str(k): int(v) for k, v in doc["opset"].items()}
    return _graph_from_dict(doc["graph"], "$.graph", 0, opset), opset


def _count_nodes(doc: dict[str, Any]) -> int:
    """Nodes of the graph and every nested graph (an iterative walk: the depth is checked separately)."""
    count, stack = 0, [doc.get("graph")]
    while stack:
        graph = stack.pop()
        nodes = graph.get("nodes") if isinstance(graph, dict) else None
        if not isinstance(nodes, list):
            continue
        count += len(nodes)
        for node in nodes:
            attrs = node.get("attrs") if isinstance(node, dict) else None
            for value in attrs.values() if isinstance(attrs, dict) else ():
                stack.extend(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict))
    return count


def loads_network(text: str | bytes) -> Model:
    """Parse, version-check, schema-check and decode network JSON text into a :class:`Model` (weights declared)."""
    doc = parse_json(text)
    newer_minor = check_network_version(doc)
    n_nodes = _count_nodes(doc)
    if n_nodes > MAX_NODES:
        raise HostileSizeError(f"the graph has {n_nodes} nodes (nested graphs included); the limit is {MAX_NODES}")
    validate_schema(doc, allow_unknown_keys=newer_minor)
    graph, opset = graph_from_dict(doc)
    return Model(graph=graph, opset=opset)
