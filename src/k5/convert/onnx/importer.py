"""ONNX -> k5 import.

k5's default op set follows ONNX's operator semantics (latest opset) wherever ONNX has the op, so most ONNX nodes
map one-to-one. On top of the one-to-one mapping, in this order:

0. inputs backed by initializers: a top-level graph input that names an initializer (every initializer in IR
   version 3 files; an overridable default in IR >= 4) is not a k5 input: the initializer's value is used, as a
   weight like any other (k5 has no default-valued inputs; docs/spec.md section 17). In a nested graph the input
   wins, as in ONNX;

1. version adapters (:mod:`k5.convert.onnx.tables`): attributes of older opsets that later became inputs turn
   into ``Constant`` nodes feeding the input; renamed ops and attribute values take their current form; ONNX
   element type codes in attributes (``Cast.to``...) become k5 dtype names, TypeProtos (``Optional.type``) k5
   type strings; Scan-8 (batch axis, ``sequence_lens``) becomes a Loop over the batch (:mod:`.scan8`);
2. pattern folding: ``MatMul(x, W) + Add(b)`` and ``Gemm(x, W, b)`` with initializer weights become ``Linear``;
3. weight ownership: an initializer that feeds a parameter input (``@weight``...) of its only consumer becomes
   that node's weight (``/model/weights/<node>/<param>``); other initializers become ``Constant`` nodes;
4. readable node ids: ``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1`` where unambiguous.

Every unsupported op (with counts), and every element type outside k5, is reported at once. Given a path, the
weights are read from the file one at a time, straight into their arrays (:mod:`.wire`); every failure is a
:class:`~k5.errors.K5Error` (a bad source: :mod:`.source`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from k5.convert import require
from k5.convert.naming import unique_name
from k5.convert.onnx.deferred import PLAIN_DTYPES
from k5.convert.onnx.scan8 import scan8_as_loop
from k5.convert.onnx.source import Source, open_onnx
from k5.convert.onnx.tables import (
    ATTR_VALUE_RENAMES,
    ATTRS_TO_INPUTS,
    COERCED_2D,
    DEFAULT_ATTRS,
    DROPPED_ATTRS,
    DTYPE_ATTRS,
    ONNX_DTYPES,
    OUTPUT_COUNT_ATTRS,
    RENAMED_OPS,
    UNADAPTED_VERSIONS,
    AttrToInput,
)
from k5.convert.onnx.types import type_string
from k5.convert.onnx.wire import read_external
from k5.errors import ConversionError, K5Error, UnsupportedOpsError, UnsupportedTypesError
from k5.format.dtypes import DTYPES
from k5.format.model import DEFAULT_DOMAIN, Graph, Metadata, Model, Node, TensorInfo

__all__ = ["ONNX_DOMAINS", "UnsupportedTypesError", "contiguous", "from_onnx", "onnx_dtype_name", "tensor_to_array"]

ONNX_DOMAINS = ("", "ai.onnx")


#: the value kinds k5 represents (TensorInfo.kind)
_KINDS = ("tensor", "sequence", "optional", "optional_sequence")


def _type_name(elem_type: int) -> str:
    import onnx

    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"type code {elem_type}"


def onnx_dtype_name(elem_type: int, *, where: str = "") -> str:
    """The k5 dtype name of an ONNX element type code; :class:`UnsupportedTypesError` if k5 has none."""
    try:
        return ONNX_DTYPES[elem_type]
    except KeyError:
        raise UnsupportedTypesError("ONNX", {_type_name(elem_type): 1}, where=where or None) from None


def tensor_to_array(tensor: Any) -> np.ndarray:
    """An ONNX TensorProto as a NumPy array of the matching k5 dtype (external data must be loaded already)."""
    from onnx import numpy_helper

    name = onnx_dtype_name(tensor.data_type, where=f"tensor {tensor.name!r}")
    arr = numpy_helper.to_array(tensor)
    want = DTYPES[name].numpy
    if arr.dtype != want:
        arr = arr.view(want) if arr.dtype.itemsize == want.itemsize else arr.astype(want)
    return contiguous(arr)


def contiguous(arr: np.ndarray) -> np.ndarray:
    """``arr`` in C order, 0-d arrays kept 0-d (``np.ascontiguousarray`` makes them 1-d)."""
    return arr if arr.flags.c_contiguous else np.array(arr, order="C")


_ID_BAD = re.compile(r"[^A-Za-z0-9_.\-]")


def _sanitise(text: str) -> str:
    return _ID_BAD.sub("_", text).strip(".") or "node"


def _is_op_segment(segment: str, op_type: str) -> bool:
    """Whether a name segment is an exporter's op suffix (``Conv``, ``MatMul_1``), not a module name."""
    import onnx

    base = re.sub(r"_\d+$", "", segment)
    return base == op_type or (base[:1].isupper() and onnx.defs.has(base))


def scope_id(onnx_name: str, op_type: str) -> tuple[str, str]:
    """(module path, last segment) of an exporter-style node name.

    ``/layer1/layer1.0/conv1/Conv`` -> (``layer1.0.conv1``, ``Conv``); ``/Add_3`` -> ("", ``Add_3``); a name
    without slashes is its own path.
    """
    segs = [s for s in onnx_name.split("/") if s]
    if not segs:
        return "", ""
    if "/" not in onnx_name:
        return _sanitise(onnx_name), ""
    last = segs[-1]
    scope = segs[:-1] if _is_op_segment(last, op_type) else segs
    path = ""
    for s in scope:
        path = s if not path or s.startswith(path + ".") or s == path else f"{path}.{s}"
    return (_sanitise(path) if path else ""), _sanitise(last if scope is not segs else "")


class _Importer:
    def __init__(self, opset: dict[str, int], path: str | None = None) -> None:
        self.opset = opset
        self.path = path  # the model file (its external data lies beside it); None: read from memory
        self.version = opset.get(DEFAULT_DOMAIN, 1)
        self.unsupported: Counter[str] = Counter()
        self.bad_types: Counter[str] = Counter()
        self.names: set[str] = set()

    # -- values ------------------------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        return unique_name(base, self.names)

    def dtype(self, elem_type: int) -> str | None:
        if elem_type == 0:
            return None
        name = ONNX_DTYPES.get(elem_type)
        if name is None:
            self.bad_types[_type_name(elem_type)] += 1
        return name

    def note_bad_type(self, what: str) -> None:
        self.bad_types[what] += 1

    def tensor(self, t: Any) -> np.ndarray | None:
        if self.dtype(t.data_type) is None:
            return None
        if t.data_location == 1:  # TensorProto.EXTERNAL: read from its file now, straight into the array
            return self.external(t)
        return tensor_to_array(t)

    def external(self, t: Any) -> np.ndarray:
        import onnx

        if self.path is None:
            raise ConversionError(
                "its data is in an external file that was not loaded: convert the .onnx file by its path",
                where=f"tensor {t.name!r}",
            )
        name = onnx_dtype_name(t.data_type, where=f"tensor {t.name!r}")
        data = read_external(t, self.path, DTYPES[name].numpy if name in PLAIN_DTYPES else None)
        if isinstance(data, np.ndarray):
            return data
        inline = onnx.TensorProto()
        inline.CopyFrom(t)
        inline.ClearField("data_location")
        del inline.external_data[:]
        inline.raw_data = data
        return tensor_to_array(inline)

    def type_info(self, name: str, tp: Any) -> TensorInfo:
        wrappers: list[str] = []
        which = tp.WhichOneof("value")
        while which in ("sequence_type", "optional_type"):
            wrappers.append("sequence" if which == "sequence_type" else "optional")
            tp = tp.sequence_type.elem_type if which == "sequence_type" else tp.optional_type.elem_type
            which = tp.WhichOneof("value")
        kind = "_".join(wrappers[:2]) or "tensor"  # tensor, sequence, optional, optional_sequence
        if kind not in _KINDS:
            self.bad_types["_".join(wrappers)] += 1
            kind = wrappers[0]
        if which is None:
            return TensorInfo(name, kind=kind)
        if which != "tensor_type":
            self.bad_types[which] += 1
            return TensorInfo(name, kind=kind)
        tt = tp.tensor_type
        shape: list[int | str] | None = None
        if tt.HasField("shape"):
            shape = []
            for i, d in enumerate(tt.shape.dim):
                if d.HasField("dim_value"):
                    shape.append(int(d.dim_value))
                else:
                    shape.append(d.dim_param or f"{_sanitise(name)}_dim{i}")
        return TensorInfo(name, self.dtype(tt.elem_type), shape, kind=kind)

    # -- attributes --------------------------------------------------------------------------------------------
    def attr(self, a: Any) -> Any:
        import onnx

        T = onnx.AttributeProto
        simple = {
            T.INT: lambda: int(a.i),
            T.FLOAT: lambda: float(a.f),
            T.STRING: lambda: a.s.decode("utf-8"),
            T.INTS: lambda: [int(v) for v in a.ints],
            T.FLOATS: lambda: [float(v) for v in a.floats],
            T.STRINGS: lambda: [s.decode("utf-8") for s in a.strings],
            T.GRAPH: lambda: self.graph(a.g),
            T.GRAPHS: lambda: [self.graph(g) for g in a.graphs],
            T.TENSOR: lambda: self.tensor(a.t),
            T.SPARSE_TENSOR: lambda: self.sparse(a.sparse_tensor),
            T.TYPE_PROTO: lambda: type_string(a.tp, self.note_bad_type),
        }
        if a.type in simple:
            return simple[a.type]()
        self.bad_types[f"attribute type {T.AttributeType.Name(a.type)}"] += 1
        return None

    def sparse(self, st: Any) -> np.ndarray | None:
        values = self.tensor(st.values)
        if values is None:
            return None
        from onnx import numpy_helper

        dense = np.zeros(int(np.prod(st.dims, dtype=np.int64)), dtype=values.dtype)
        idx = numpy_helper.to_array(st.indices).astype(np.int64)
        if idx.ndim == 2:  # coordinates [nnz, rank] -> linear positions
            idx = np.ravel_multi_index(tuple(idx.T), tuple(st.dims))
        dense[idx.reshape(-1)] = values.reshape(-1)
        return dense.reshape(tuple(st.dims))

    # -- nodes -------------------------------------------------------------------------------------------------
    def constant(self, value: np.ndarray, base: str) -> tuple[Node, str]:
        out = self.fresh(base)
        return Node(out, "Constant", [], [out], weights={"value": value}), out

    def node(self, n: Any, index: int) -> list[Node]:
        """One ONNX node -> k5 nodes (the node itself, preceded by any constants its adapters need)."""
        from k5.ops import find_schema

        domain = DEFAULT_DOMAIN if n.domain in ONNX_DOMAINS else n.domain
        version = self.opset.get(domain, 1)
        op = n.op_type
        name = n.name or f"{op}_{index}"
        attrs: dict[str, Any] = {}
        weights: dict[str, Any] = {}
        for a in n.attribute:
            value = self.attr(a)
            if op == "Constant" and domain == DEFAULT_DOMAIN and a.name.startswith(("value", "sparse_value")):
                if value is not None:
                    weights["value"] = _constant_value(a.name, value)
            elif isinstance(value, np.ndarray):
                weights[a.name] = value  # tensor-valued attributes become node-owned weights
            elif value is not None:
                attrs[a.name] = value
        node = Node(name, op, list(n.input), list(n.output), attrs, weights, domain)
        if domain != DEFAULT_DOMAIN:
            if find_schema(op, domain) is None:
                self.unsupported[f"{n.domain}.{op}"] += 1
            return [node]
        if op == "Scan" and version < 9 and isinstance(node.attrs.get("body"), Graph):
            return scan8_as_loop(node, self.fresh)
        for (old, before), why in UNADAPTED_VERSIONS.items():
            if op == old and version < before:
                self.unsupported[f"{why}"] += 1
                return [node]
        pre = self.adapt(node, version)
        out = self.coerce_2d(node, version) if op in COERCED_2D and version < COERCED_2D[op] else [node]
        self.dtype_attrs(node)
        if find_schema(node.op, domain) is None:
            self.unsupported[node.op] += 1
        return pre + out

    def adapt(self, node: Node, version: int) -> list[Node]:
        """Apply the version tables to ``node`` in place; returns the constant nodes it now reads."""
        op = node.op
        pre: list[Node] = []
        for (old, before), dropped in DROPPED_ATTRS.items():
            if op == old and version < before:
                for a in dropped:
                    node.attrs.pop(a, None)
        if op in ATTRS_TO_INPUTS and version < ATTRS_TO_INPUTS[op][0]:
            for spec in ATTRS_TO_INPUTS[op][1]:
                value = node.attrs.pop(spec.attr, spec.default)
                if value is None:
                    continue
                pre.extend(self.attr_input(node, spec, value))
        if op in OUTPUT_COUNT_ATTRS and version < OUTPUT_COUNT_ATTRS[op][0]:
            attr = OUTPUT_COUNT_ATTRS[op][1]
            if (len(node.inputs) < 2 or not node.inputs[1]) and attr not in node.attrs:
                node.attrs[attr] = len(node.outputs)
        for (old, before), renames in ATTR_VALUE_RENAMES.items():
            if op == old and version < before:
                for a, mapping in renames.items():
                    if a in node.attrs and node.attrs[a] in mapping:
                        node.attrs[a] = mapping[node.attrs[a]]
        if op in RENAMED_OPS and version < RENAMED_OPS[op][0]:
            _, new_op, moves = RENAMED_OPS[op]
            inputs = list(node.inputs)
            for src, dst in moves.items():
                if src < len(inputs):
                    value, inputs[src] = inputs[src], ""
                    inputs.extend([""] * (dst + 1 - len(inputs)))
                    inputs[dst] = value
            node.op, node.inputs = new_op, _trim(inputs)
            for key, extra in DEFAULT_ATTRS.items():
                if key == (op, RENAMED_OPS[op][0]):
                    for a, v in extra.items():
                        node.attrs.setdefault(a, v)
        return pre

    def attr_input(self, node: Node, spec: AttrToInput, value: Any) -> list[Node]:
        base = f"{node.id}_{spec.attr}"
        made: list[Node] = []
        if spec.kind == "like0":
            const, name = self.constant(np.asarray(value, dtype=np.float32), base + "_f")
            cast_out = self.fresh(base)
            made = [const, Node(cast_out, "CastLike", [name, node.inputs[0]], [cast_out])]
            name = cast_out
        else:
            arrays: dict[str, Callable[[], np.ndarray]] = {
                "int64s": lambda: np.asarray(value, dtype=np.int64).reshape(-1),
                "int64s1": lambda: np.asarray([value], dtype=np.int64),
                "int64": lambda: np.asarray(value, dtype=np.int64),
                "float32": lambda: np.asarray(value, dtype=np.float32),
                "float32s": lambda: np.asarray(value, dtype=np.float32).reshape(-1),
            }
            const, name = self.constant(arrays[spec.kind](), base)
            made = [const]
        inputs = list(node.inputs) + [""] * max(0, spec.index + 1 - len(node.inputs))
        inputs[spec.index] = name
        node.inputs = inputs
        return made

    def coerce_2d(self, node: Node, version: int) -> list[Node]:
        """Softmax-like ops before opset 13 flatten to 2-D at ``axis`` (default 1) and normalise the rows."""
        axis = int(node.attrs.pop("axis", 1))
        x, y = node.inputs[0], node.outputs[0]
        shape, flat, flat_y = self.fresh(f"{x}_shape"), self.fresh(f"{x}_2d"), self.fresh(f"{y}_2d")
        node.inputs, node.outputs, node.attrs["axis"] = [flat], [flat_y], -1
        return [
            Node(shape, "Shape", [x], [shape]),
            Node(flat, "Flatten", [x], [flat], {"axis": axis}),
            node,
            Node(y, "Reshape", [flat_y, shape], [y]),
        ]

    def dtype_attrs(self, node: Node) -> None:
        """ONNX element type codes in attributes -> k5 dtype names (unless the k5 op declares an int)."""
        from k5.ops import find_schema

        schema = find_schema(node.op, node.domain)
        for a in DTYPE_ATTRS.get(node.op, ()):
            code = node.attrs.get(a)
            declared = schema.attrs.get(a) if schema is not None else None
            if not isinstance(code, int) or (declared is not None and declared.type == "int"):
                continue
            if code == 0:  # "undefined": the op's own default applies
                del node.attrs[a]
                continue
            name = self.dtype(code)
            if name is not None:
                node.attrs[a] = name

    # -- graphs ------------------------------------------------------------------------------------------------
    def graph(self, g: Any, *, top: bool = False) -> Graph:
        inits: dict[str, np.ndarray | None] = {t.name: self.tensor(t) for t in g.initializer}
        declared = list(g.input)
        if top:  # an input backed by an initializer (IR 3, or an overridable default) is the initializer's value
            declared = [v for v in declared if v.name not in inits]
        else:  # a nested graph's inputs are positional (Loop/Scan/If bodies): the input wins, as in ONNX
            for v in declared:
                inits.pop(v.name, None)
        nodes: list[Node] = []
        for i, n in enumerate(g.node):
            try:
                nodes.extend(self.node(n, i))
            except K5Error:
                raise
            except Exception as e:  # any other failure names the node, its op and the cause
                raise ConversionError(
                    f"{type(e).__name__}: {e}", where=f"node {n.name or f'{n.op_type}_{i}'!r} ({n.op_type})"
                ) from e
        outputs = [self.type_info(v.name, v.type) for v in g.output]
        graph_outputs = {o.name for o in outputs}
        _fold_linear(nodes, inits, graph_outputs)
        _own_parameters(nodes, inits, graph_outputs)
        used = set(_consumers(nodes)) | graph_outputs
        consts = [
            Node(name, "Constant", [], [name], weights={"value": arr})
            for name, arr in inits.items()
            if name in used and arr is not None
        ]
        nodes = consts + nodes
        _assign_ids(nodes)
        produced = {o for n in nodes for o in n.outputs}
        inputs = [self.type_info(v.name, v.type) for v in declared]
        known = produced | {i.name for i in inputs}
        return Graph(
            nodes=nodes,
            inputs=inputs,
            outputs=outputs,
            value_info=[self.type_info(v.name, v.type) for v in g.value_info if v.name in known],
            name=g.name,
        )


def _constant_value(attr_name: str, value: Any) -> np.ndarray:
    """Constant's value / value_float(s) / value_int(s) / value_string(s) / sparse_value -> an array."""
    if isinstance(value, np.ndarray):
        return value
    dtype = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64, "value_ints": np.int64}
    return np.asarray(value, dtype=dtype.get(attr_name))


def _trim(inputs: list[str]) -> list[str]:
    while inputs and inputs[-1] == "":
        inputs.pop()
    return inputs


def _consumers(nodes: Iterable[Node]) -> Counter[str]:
    """How many times each value is read, nested graphs (outer-scope reads) included."""
    counts: Counter[str] = Counter()
    for n in nodes:
        counts.update(i for i in n.inputs if i)
        for _, sub in n.subgraphs():
            counts.update(_consumers(sub.nodes))
            counts.update(o.name for o in sub.outputs)
    return counts


def _sole_init(name: str, inits: dict[str, np.ndarray | None], counts: Counter[str], keep: set[str]) -> bool:
    return name in inits and inits[name] is not None and counts[name] == 1 and name not in keep


def _fold_linear(nodes: list[Node], inits: dict[str, np.ndarray | None], keep: set[str]) -> None:
    """MatMul(x, W) [+ Add(b)] and Gemm(x, W, b) with initializer weights -> Linear(x) owning weight [out, in]."""
    from k5.ops import find_schema

    if find_schema("Linear") is None:
        return
    counts = _consumers(nodes)
    readers: dict[str, list[Node]] = {}
    for n in nodes:
        for i in n.inputs:
            readers.setdefault(i, []).append(n)
    removed: set[int] = set()
    for n in nodes:
        if n.domain != DEFAULT_DOMAIN or id(n) in removed:
            continue
        if n.op == "MatMul" and len(n.inputs) == 2 and _sole_init(n.inputs[1], inits, counts, keep):
            w = inits[n.inputs[1]]
            assert w is not None
            if w.ndim != 2:
                continue
            weights: dict[str, Any] = {"weight": contiguous(w.T)}
            out = n.outputs[0]
            adds = readers.get(out, [])
            if counts[out] == 1 and out not in keep and len(adds) == 1 and adds[0].op == "Add":
                add = adds[0]
                other = add.inputs[1] if add.inputs[0] == out else add.inputs[0]
                b = inits.get(other)
                if _sole_init(other, inits, counts, keep) and b is not None and b.shape == (w.shape[1],):
                    weights["bias"] = b
                    out = add.outputs[0]
                    removed.add(id(add))
                    del inits[other]
            del inits[n.inputs[1]]
            n.op, n.inputs, n.outputs, n.attrs, n.weights = "Linear", [n.inputs[0]], [out], {}, weights
        elif n.op == "Gemm" and len(n.inputs) >= 2 and _sole_init(n.inputs[1], inits, counts, keep):
            a = n.attrs
            if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or (len(n.inputs) > 2 and a.get("beta", 1.0) != 1.0):
                continue
            w = inits[n.inputs[1]]
            assert w is not None
            weights = {"weight": contiguous(w if a.get("transB", 0) else w.T)}
            c = n.inputs[2] if len(n.inputs) > 2 else ""
            if c:
                b = inits.get(c)
                if not _sole_init(c, inits, counts, keep) or b is None or b.size != weights["weight"].shape[0]:
                    continue
                if b.shape not in ((b.size,), (1, b.size)):
                    continue
                weights["bias"] = b.reshape(-1)
                del inits[c]
            del inits[n.inputs[1]]
            n.op, n.inputs, n.attrs, n.weights = "Linear", [n.inputs[0]], {}, weights
    nodes[:] = [n for n in nodes if id(n) not in removed]


def _own_parameters(nodes: list[Node], inits: dict[str, np.ndarray | None], keep: set[str]) -> None:
    """An initializer feeding a parameter input (``@weight``...) of its only consumer becomes that node's weight."""
    from k5.ops import find_schema

    counts = _consumers(nodes)
    for n in nodes:
        schema = find_schema(n.op, n.domain)
        if schema is None:
            continue
        for i, spec in enumerate(schema.inputs):
            if spec.variadic or not spec.param or i >= len(n.inputs) or spec.name in n.weights:
                continue
            name = n.inputs[i]
            if name and _sole_init(name, inits, counts, keep):
                n.weights[spec.name] = inits.pop(name)
                n.inputs[i] = ""
        n.inputs = _trim(n.inputs)


def _assign_ids(nodes: list[Node]) -> None:
    """Readable unique ids: the exporter's module path where it names one node only, else path + op segment."""
    paths = [scope_id(n.id, n.op) for n in nodes]
    taken = Counter(p for p, _ in paths if p)
    used: set[str] = set()
    for n, (path, last) in zip(nodes, paths, strict=True):
        if path and taken[path] == 1:
            base = path
        elif path:
            base = f"{path}.{last}" if last else path
        else:
            base = last or _sanitise(n.id) or n.op
        candidate, k = base, 1
        while candidate in used:
            k += 1
            candidate = f"{base}_{k}"
        used.add(candidate)
        n.id = candidate


def _collect_names(g: Any, into: set[str]) -> None:
    import onnx

    into.update(t.name for t in g.initializer)
    into.update(v.name for v in (*g.input, *g.output, *g.value_info))
    for n in g.node:
        into.update(n.input)
        into.update(n.output)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _collect_names(a.g, into)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sub in a.graphs:
                    _collect_names(sub, into)


def from_onnx(model: Source) -> Model:
    """Convert an ONNX ``ModelProto`` (or the bytes of one, or a path to a ``.onnx`` file) into a k5 :class:`Model`.

    Top-level graph inputs that name an initializer (IR version 3 files; overridable defaults in IR >= 4) take the
    initializer's value and are not inputs of the k5 model (docs/spec.md section 17). Every failure is a
    :class:`~k5.errors.K5Error`: :class:`UnsupportedOpsError` lists every op outside the k5 op set (with counts),
    :class:`UnsupportedTypesError` every element type outside k5's dtypes; a source that is not an ONNX model
    (missing, empty, random, truncated, no nodes or no outputs) and any other failure, named by node and op, are
    a :class:`~k5.errors.ConversionError`.
    """
    from k5.format.checks import check_graph

    require("onnx", "onnx", purpose="reading ONNX models")  # before the source: a missing extra is named first
    proto, path = open_onnx(model)
    try:
        converted = _convert(proto, path)
    except K5Error:
        raise
    except Exception as e:  # whatever escaped the per-node wrapper (folding, ids) names the model
        raise ConversionError(f"ONNX import failed: {type(e).__name__}: {e}") from e
    _unique_ids_across_graphs(converted.graph)
    check_graph(converted.graph)
    return converted


def _unique_ids_across_graphs(graph: Graph) -> None:
    """Node ids are unique over the whole model (nested graphs included), not only within each graph: breadth
    first, so the top-level graph keeps its ids and a nested node that repeats one gets a suffix."""
    used: set[str] = set()
    queue = [graph]
    for g in queue:
        for n in g.nodes:
            candidate, k = n.id, 1
            while candidate in used:
                k += 1
                candidate = f"{n.id}_{k}"
            n.id = candidate
            used.add(candidate)
            queue.extend(sub for _, sub in n.subgraphs())


def _convert(model: Any, path: str | None) -> Model:
    opset = {DEFAULT_DOMAIN if o.domain in ONNX_DOMAINS else o.domain: int(o.version) for o in model.opset_import}
    imp = _Importer(opset, path)
    _collect_names(model.graph, imp.names)
    graph = imp.graph(model.graph, top=True)
    if imp.unsupported:
        raise UnsupportedOpsError("ONNX", dict(imp.unsupported))
    if imp.bad_types:
        raise UnsupportedTypesError("ONNX", dict(imp.bad_types))
    from k5.ops import OPSET_VERSION

    k5_opset = {DEFAULT_DOMAIN: OPSET_VERSION}
    k5_opset.update({d: v for d, v in opset.items() if d != DEFAULT_DOMAIN})
    props = {p.key: p.value for p in model.metadata_props}
    meta = Metadata(
        author=props.pop("author", ""),
        license=props.pop("license", ""),
        producer=" ".join(p for p in (model.producer_name, model.producer_version) if p),
        description=model.doc_string,
        extra=props,
    )
    meta.extra["onnx_opset"] = str(opset.get(DEFAULT_DOMAIN, ""))
    return Model(graph=graph, opset=k5_opset, metadata=meta)
