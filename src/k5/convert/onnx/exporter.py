"""k5 -> ONNX export.

Most k5 ops are ONNX ops with ONNX's latest semantics, so they map one-to-one; node-owned weights become
initializers (``Constant`` nodes inside nested graphs), dtype names in attributes become ONNX type codes, and the
k5's own ops, which ONNX lacks, are decomposed (table ``DECOMPOSITIONS``, one entry for every op the registry
declares with ``decomposes_to=``). The ONNX opset written is the lowest one (at
least :data:`~k5.convert.onnx.tables.EXPORT_FLOOR_OPSET`) at which every node emitted has its current form, which
keeps the file runnable by older runtimes; an explicit ``opset`` is checked the same way.

Files are written by :mod:`.writer` (``write_onnx`` streams each weight from the k5 model into the file).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from k5.convert.naming import unique_name
from k5.convert.onnx.deferred import deferrable, fill, placeholder, transposed
from k5.convert.onnx.importer import contiguous
from k5.convert.onnx.opset import required_opset
from k5.convert.onnx.tables import DTYPE_ATTRS, EXPORT_FLOOR_OPSET, K5_TO_ONNX_DTYPE, TYPE_ATTRS
from k5.convert.onnx.types import parse_type
from k5.convert.table import ConverterTable
from k5.errors import ConversionError, K5Error, UnsupportedOpsError
from k5.format.model import DEFAULT_DOMAIN, Graph, Model, Node, TensorInfo, as_array

__all__ = ["build_proto", "to_onnx"]

_ATTR_CODES = {
    "int": 2, "float": 1, "string": 3, "ints": 7, "floats": 6, "strings": 8, "graph": 5, "graphs": 10, "type": 13,
}  # fmt: skip


def _onnx_dtype(name: str, *, where: str) -> int:
    try:
        return K5_TO_ONNX_DTYPE[name]
    except KeyError:
        raise ConversionError(f"dtype {name!r} has no ONNX element type", where=where) from None


class _Exporter:
    def __init__(self, model: Model, *, defer: bool = False) -> None:
        self.model = model
        self.defer = defer  # large top-level initializers as placeholders (see deferred.py)
        self.pending: dict[str, Any] = {}  # placeholder name -> the weight value it stands for
        self.names: set[str] = set()
        self.constants: dict[str, Any] = {}  # value name -> array, for Constant nodes (static shapes, masks)
        self.infos: dict[str, TensorInfo] = {}
        self.dtypes: dict[str, str] | None = None  # value name -> dtype by the op registry's rules, on first use
        for _, n in model.graph.walk():
            self.names.update(n.inputs)
            self.names.update(n.outputs)
            if n.op == "Constant" and n.domain == DEFAULT_DOMAIN and "value" in n.weights and n.outputs:
                self.constants[n.outputs[0]] = n.weights["value"]
        self.producers: dict[str, Node] = {}  # value name -> the k5 node computing it (nested graphs included)
        self.infos.update(model.graph.infos())
        for _, n in model.graph.walk():
            self.producers.update((o, n) for o in n.outputs if o)
            for _, sub in n.subgraphs():
                for name, info in sub.infos().items():
                    if info.dtype and not (name in self.infos and self.infos[name].dtype):
                        self.infos[name] = info
        self.unsupported: dict[str, int] = {}
        self.inits: list[list[Any] | None] = []  # per graph being written: its initializers (None: nested)
        self.scopes: list[tuple[Graph, list[Any]]] = []  # per graph being written: the graph, its nodes so far
        self.used_domains: set[str] = set()

    # -- helpers -----------------------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        return unique_name(base, self.names)

    def tensor(self, value: Any, name: str) -> Any:
        from onnx import numpy_helper

        arr = as_array(value)
        return numpy_helper.from_array(contiguous(arr), name)

    def initializer(self, value: Any, name: str) -> Any:
        """A top-level initializer: a placeholder for a large weight when deferring, else a complete tensor."""
        if self.defer and deferrable(value):
            self.pending[name] = value
            return placeholder(value, name)
        return self.tensor(value, name)

    def value_info(self, t: TensorInfo) -> Any:
        from onnx import helper

        if not t.dtype:
            return helper.make_empty_tensor_value_info(t.name)  # type left to the runtime (nested graphs)
        code = _onnx_dtype(t.dtype, where=f"value {t.name!r}")
        shape = None if t.shape is None else [d if isinstance(d, int) else str(d) for d in t.shape]
        tensor = helper.make_tensor_type_proto(code, shape)
        tp = tensor
        for wrapper in reversed(t.kind.split("_") if t.kind != "tensor" else []):
            tp = helper.make_sequence_type_proto(tp) if wrapper == "sequence" else helper.make_optional_type_proto(tp)
        return helper.make_value_info(t.name, tp)

    def attrs(self, node: Node, attrs: dict[str, Any]) -> list[Any]:
        """k5 attribute values -> AttributeProtos typed by the k5 schema (dtype names -> ONNX codes)."""
        from onnx import helper

        from k5.ops import find_schema

        schema = find_schema(node.op, node.domain)
        out = []
        for name, value in attrs.items():
            if value is None:
                continue
            spec = schema.attrs.get(name) if schema is not None else None
            kind = spec.type if spec is not None else None
            if name in DTYPE_ATTRS.get(node.op, ()) and isinstance(value, str):
                value, kind = _onnx_dtype(value, where=node.label), "int"
            elif name in TYPE_ATTRS.get(node.op, ()) and isinstance(value, str):
                try:
                    value, kind = parse_type(value), "type"
                except ValueError as e:
                    raise ConversionError(f"attribute {name!r} {e}", where=node.label) from None
            if kind == "graph":
                value = self.graph(value, top=False)
            elif kind == "graphs":
                value = [self.graph(g, top=False) for g in value]
            elif isinstance(value, Graph):
                value, kind = self.graph(value, top=False), "graph"
            out.append(helper.make_attribute(name, value, attr_type=_ATTR_CODES.get(kind) if kind else None))
        return out

    # -- graphs ------------------------------------------------------------------------------------------------
    def graph(self, g: Graph, *, top: bool) -> Any:
        from onnx import helper

        nodes: list[Any] = []
        inits: list[Any] = []
        self.inits.append(inits if top else None)
        self.scopes.append((g, nodes))
        outputs = {o.name for o in g.outputs}
        try:
            for n in g.nodes:
                try:
                    nodes.extend(self.node(n, outputs))
                except K5Error:
                    raise
                except Exception as e:  # any other failure names the node, its op and the cause
                    raise ConversionError(f"{type(e).__name__}: {e}", where=n.label) from e
        finally:
            self.inits.pop()
            self.scopes.pop()
        return helper.make_graph(
            nodes,
            g.name or ("k5" if top else "body"),
            [self.value_info(t) for t in g.inputs],
            [self.value_info(t) for t in g.outputs],
            initializer=inits,
            value_info=[self.value_info(t) for t in g.value_info if t.dtype],
        )

    def value(self, arg: Any, base: str, into: list[Any]) -> str:
        """A value name for ``arg``: a name as it is; an array (node-owned weight) as an initializer in the top
        graph, or as a Constant node appended to ``into`` in a nested graph."""
        from onnx import helper

        if arg is None or isinstance(arg, str):
            return arg or ""
        name = self.fresh(base)
        self.constants[name] = arg
        inits = self.inits[-1]
        if inits is not None:
            inits.append(self.initializer(arg, name))
        else:
            into.append(helper.make_node("Constant", [], [name], name=name, value=self.tensor(arg, name)))
        return name

    def node(self, n: Node, graph_outputs: set[str]) -> list[Any]:
        from onnx import helper

        from k5.ops import find_schema

        if n.domain != DEFAULT_DOMAIN:
            self.used_domains.add(n.domain)
            return [helper.make_node(n.op, n.inputs, n.outputs, name=n.id, domain=n.domain, **_plain_attrs(n.attrs))]
        if n.op in _RNN_STATES and int(n.attrs.get("layout", 0) or 0) == 1:
            return _time_major(self, n, graph_outputs)
        inits = self.inits[-1]
        if n.op == "Constant" and "value" in n.weights:
            value = n.weights["value"]
            if inits is not None and n.outputs[0] not in graph_outputs:
                inits.append(self.initializer(value, n.outputs[0]))
                return []
            return [helper.make_node("Constant", [], n.outputs, name=n.id, value=self.tensor(value, n.outputs[0]))]
        schema = find_schema(n.op, n.domain)
        pre: list[Any] = []
        args: list[Any] = list(n.inputs)  # names, with node-owned weights as arrays in their input slots
        tensor_attrs: dict[str, Any] = {}
        onnx_attr_names = _onnx_attribute_names(n.op)
        if schema is not None:
            for i, spec in enumerate(schema.inputs):
                if not spec.param or spec.name not in n.weights:
                    continue
                value = n.weights[spec.name]
                if onnx_attr_names and spec.name in onnx_attr_names:  # a tensor attribute (ConstantOfShape's value)
                    tensor_attrs[spec.name] = self.tensor(value, spec.name)
                    continue
                args.extend([""] * (i + 1 - len(args)))
                args[i] = value
        while args and isinstance(args[-1], str) and args[-1] == "":
            args.pop()
        decompose = DECOMPOSITIONS.get(n.op)
        if decompose is not None:
            return decompose(self, n, args)
        if onnx_attr_names is None:
            self.unsupported[n.op] = self.unsupported.get(n.op, 0) + 1
            return pre
        params = {i: spec.name for i, spec in enumerate(schema.inputs)} if schema is not None else {}
        inputs = [self.value(a, f"{n.id}.{params.get(i, i)}", pre) for i, a in enumerate(args)]
        inputs.extend([""] * (_onnx_min_inputs(n.op) - len(inputs)))  # Loop(M) still names its omitted cond
        attrs = dict(n.attrs)
        for name in [a for a in attrs if a not in onnx_attr_names]:
            attr_spec = schema.attrs.get(name) if schema is not None else None
            if attr_spec is not None and attrs[name] == attr_spec.default:
                del attrs[name]  # a k5-only attribute left at its default means ONNX's behaviour
            else:
                raise ConversionError(
                    f"attribute {name!r} has no ONNX equivalent. Received: {name}={attrs[name]!r}", where=n.label
                )
        proto = helper.make_node(n.op, inputs, n.outputs, name=n.id)
        proto.attribute.extend(self.attrs(n, attrs))
        for name, t in tensor_attrs.items():
            proto.attribute.append(helper.make_attribute(name, t))
        return [*pre, proto]


#: recurrent ops -> (input slots of [batch, ...]-first states under layout=1, output slots likewise)
_RNN_STATES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "LSTM": ((5, 6), (1, 2)),
    "GRU": ((5,), (1,)),
    "RNN": ((5,), (1,)),
}


def _time_major(ex: _Exporter, n: Node, graph_outputs: set[str]) -> list[Any]:
    """A batch-first (``layout=1``) LSTM/GRU/RNN as the same op with ``layout=0`` between Transposes.

    onnxruntime refuses ``layout=1`` ("Batchwise recurrent operations ... are not supported"); the time-major
    form is what every runtime implements. X ``[B, T, I]`` and the initial states ``[B, D, H]`` are transposed in;
    Y ``[T, D, B, H]`` goes out as ``[B, T, D, H]`` and the final states ``[D, B, H]`` as ``[B, D, H]``.
    """
    from onnx import helper

    state_in, state_out = _RNN_STATES[n.op]
    pre: list[Any] = []
    post: list[Any] = []
    inputs = list(n.inputs)
    for i in (0, *state_in):
        if i < len(inputs) and inputs[i]:
            t = ex.fresh(f"{inputs[i]}_time_major")
            pre.append(helper.make_node("Transpose", [inputs[i]], [t], name=t, perm=[1, 0, 2]))
            inputs[i] = t
    outputs = list(n.outputs)
    for i, perm in ((0, [2, 0, 1, 3]), *((j, [1, 0, 2]) for j in state_out)):
        if i < len(outputs) and outputs[i]:
            t = ex.fresh(f"{outputs[i]}_time_major")
            post.append(helper.make_node("Transpose", [t], [outputs[i]], name=f"{n.id}.{outputs[i]}_batch_first",
                                         perm=perm))  # fmt: skip
            outputs[i] = t
    attrs = {k: v for k, v in n.attrs.items() if k != "layout"}
    inner = Node(n.id, n.op, inputs, outputs, attrs, dict(n.weights), n.domain, n.doc)
    return [*pre, *ex.node(inner, graph_outputs), *post]


def _plain_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if v is not None}


def _onnx_min_inputs(op: str) -> int:
    """How many input slots the latest ONNX schema of ``op`` requires (omitted optional ones written as "")."""
    import onnx

    return int(onnx.defs.get_schema(op, onnx.defs.onnx_opset_version(), "").min_input)


def _onnx_attribute_names(op: str) -> set[str] | None:
    """Attribute names of the latest ONNX schema of ``op``; None when ONNX has no such op."""
    import onnx

    try:
        return set(onnx.defs.get_schema(op, onnx.defs.onnx_opset_version(), "").attributes)
    except onnx.defs.SchemaError:
        return None


# --- decompositions of k5-only ops ------------------------------------------------------------------------------
Decomposition = Callable[[_Exporter, Node, list[Any]], list[Any]]

#: k5 op -> how it is written in ONNX: one entry for each op the registry declares k5-only (``decomposes_to=``);
#: keys are checked against the registry when this module loads, completeness by tests/convert/onnx
DECOMPOSITIONS = ConverterTable("ONNX decomposition", keyed_by_op=True)


def _const(ex: _Exporter, base: str, value: np.ndarray) -> tuple[Any, str]:
    from onnx import helper

    name = ex.fresh(base)
    ex.constants[name] = value
    return helper.make_node("Constant", [], [name], name=name, value=ex.tensor(value, name)), name


def _linear_into(ex: _Exporter, node: Node, x: str, w: Any, b: Any, y: str, tag: str) -> list[Any]:
    """``y = x @ w.T + b`` as MatMul(x, w.T) [+ Add]; a stored ``w`` is written transposed, once."""
    from onnx import helper

    out: list[Any] = []
    static = w if not isinstance(w, str) else ex.constants.get(w)
    if static is not None:
        wt = ex.value(transposed(static), f"{node.id}.{tag}weight_t", out)
    else:
        wt = ex.fresh(f"{node.id}.{tag}weight_t")
        out.append(helper.make_node("Transpose", [w], [wt], name=wt, perm=[1, 0]))
    has_bias = b is not None and not (isinstance(b, str) and not b)
    mm = ex.fresh(f"{node.id}.{tag}matmul") if has_bias else y
    out.append(helper.make_node("MatMul", [x, wt], [mm], name=f"/{node.id}/{tag}MatMul"))
    if has_bias:
        bias = ex.value(b, f"{node.id}.{tag}bias", out)
        out.append(helper.make_node("Add", [mm, bias], [y], name=f"/{node.id}/{tag}Add"))
    return out


@DECOMPOSITIONS.register("Linear")
def _linear(ex: _Exporter, node: Node, args: list[Any]) -> list[Any]:
    x, w, b = [*args, "", ""][:3]
    return _linear_into(ex, node, x, w, b, node.outputs[0], "")


@DECOMPOSITIONS.register("Embedding")
def _embedding(ex: _Exporter, node: Node, args: list[Any]) -> list[Any]:
    from onnx import helper

    out: list[Any] = []
    weight = ex.value(args[1], f"{node.id}.weight", out)
    out.append(helper.make_node("Gather", [weight, args[0]], node.outputs[:1], name=node.id, axis=0))
    return out


@DECOMPOSITIONS.register("AdaptiveAveragePool", "AdaptiveMaxPool")
def _adaptive_pool(ex: _Exporter, node: Node, inputs: list[Any]) -> list[Any]:
    from onnx import helper

    out_size = [int(v) for v in node.attrs["output_size"]]
    is_avg = node.op == "AdaptiveAveragePool"
    if all(v == 1 for v in out_size):
        op = "GlobalAveragePool" if is_avg else "GlobalMaxPool"
        return [helper.make_node(op, inputs[:1], node.outputs[:1], name=node.id)]
    spatial = _static_spatial(ex, inputs[0], len(out_size))
    if spatial is None or any(s % o for s, o in zip(spatial, out_size, strict=True)):
        raise ConversionError(
            f"ONNX has no adaptive pooling; output_size={out_size} needs a static input size divisible by it "
            f"(uniform bins). Received: spatial size {spatial if spatial is not None else 'unknown'}",
            where=node.label,
        )
    k = [s // o for s, o in zip(spatial, out_size, strict=True)]
    op = "AveragePool" if is_avg else "MaxPool"
    return [helper.make_node(op, inputs[:1], node.outputs[:1], name=node.id, kernel_shape=k, strides=k)]


def _static_spatial(ex: _Exporter, name: str, rank: int) -> list[int] | None:
    info = ex.infos.get(name)
    if info is None or info.shape is None:
        return None
    dims = info.shape[-rank:]
    return [int(d) for d in dims] if all(isinstance(d, int) for d in dims) else None


@DECOMPOSITIONS.register("MultiHeadAttention")
def _mha(ex: _Exporter, node: Node, inputs: list[Any]) -> list[Any]:
    """MultiHeadAttention (batch-first) as projections, per-head MatMul/Softmax/MatMul and the output projection."""
    from onnx import helper

    names = [
        "query", "key", "value", "attn_mask", "key_padding_mask", "q_weight", "k_weight", "v_weight",
        "q_bias", "k_bias", "v_bias", "out_weight", "out_bias",
    ]  # fmt: skip
    v = dict(zip(names, [*inputs, *[""] * (len(names) - len(inputs))], strict=True))
    h = int(node.attrs["num_heads"])
    scale = node.attrs.get("scale")
    p = node.id
    out: list[Any] = []

    def mk(op: str, ins: list[str], tag: str, **attrs: Any) -> str:
        y = ex.fresh(f"{p}.{tag}")
        out.append(helper.make_node(op, ins, [y], name=y, **attrs))
        return y

    def const(tag: str, value: np.ndarray) -> str:
        c, name = _const(ex, f"{p}.{tag}", value)
        out.append(c)
        return name

    proj = {}
    for t in ("q", "k", "v"):
        y = ex.fresh(f"{p}.{t}")
        src = {"q": "query", "k": "key", "v": "value"}[t]
        out.extend(_linear_into(ex, node, v[src], v[f"{t}_weight"], v[f"{t}_bias"], y, f"{t}_"))
        proj[t] = y
    if scale is None:
        w = v["q_weight"] if not isinstance(v["q_weight"], str) else ex.constants.get(v["q_weight"])
        if w is None:
            raise ConversionError("needs a stored q_weight (or the 'scale' attribute) to export", where=node.label)
        scale = 1.0 / float(np.sqrt(as_array(w).shape[0] // h))
    heads = const("heads_shape", np.array([0, 0, h, -1], dtype=np.int64))
    qh = mk("Transpose", [mk("Reshape", [proj["q"], heads], "q_heads")], "q_t", perm=[0, 2, 1, 3])
    kh = mk("Transpose", [mk("Reshape", [proj["k"], heads], "k_heads")], "k_t", perm=[0, 2, 3, 1])
    vh = mk("Transpose", [mk("Reshape", [proj["v"], heads], "v_heads")], "v_t", perm=[0, 2, 1, 3])
    scores = mk("MatMul", [qh, kh], "scores")
    scores = mk(
        "Mul", [scores, mk("CastLike", [const("scale", np.array(scale, np.float32)), scores], "scale_c")], "scaled"
    )
    neg_inf = mk("CastLike", [const("neg_inf", np.array(-np.inf, np.float32)), scores], "neg_inf_c")
    if v["attn_mask"]:
        if _mask_dtype(ex, node, v["attn_mask"], "attn_mask") == "bool":
            scores = mk("Where", [v["attn_mask"], neg_inf, scores], "masked")
        else:
            scores = mk("Add", [scores, v["attn_mask"]], "masked")
    if v["key_padding_mask"]:
        is_bool = _mask_dtype(ex, node, v["key_padding_mask"], "key_padding_mask") == "bool"
        kpm = mk("Unsqueeze", [v["key_padding_mask"], const("kpm_axes", np.array([1, 2], np.int64))], "kpm")
        scores = mk("Where", [kpm, neg_inf, scores], "padded") if is_bool else mk("Add", [scores, kpm], "padded")
    if int(node.attrs.get("causal", 0)):
        lq_lk = mk("Slice", [mk("Shape", [scores], "scores_shape"), const("m2", np.array([-2], np.int64)),
                             const("end", np.array([2**62], np.int64))], "lq_lk")  # fmt: skip
        ones = mk("ConstantOfShape", [lq_lk], "ones", value=ex.tensor(np.array([1.0], np.float32), "one"))
        upper = mk("Cast", [mk("Trilu", [ones, const("k1", np.array(1, np.int64))], "upper", upper=1)], "causal", to=9)
        scores = mk("Where", [upper, neg_inf, scores], "causal_masked")
    attn = mk("Softmax", [scores], "attn_raw", axis=-1)
    zero = mk("CastLike", [const("zero", np.array(0.0, np.float32)), scores], "zero_c")
    attn = mk("Where", [mk("IsNaN", [attn], "all_masked"), zero, attn], "attn")  # fully masked rows: zeros
    if len(node.outputs) > 1 and node.outputs[1]:
        out.append(helper.make_node("Identity", [attn], [node.outputs[1]], name=f"{p}.attn_weights"))
    ctx = mk("MatMul", [attn, vh], "context")
    merged = mk("Reshape", [mk("Transpose", [ctx], "context_t", perm=[0, 2, 1, 3]),
                            const("merge_shape", np.array([0, 0, -1], np.int64))], "merged")  # fmt: skip
    out.extend(_linear_into(ex, node, merged, v["out_weight"], v["out_bias"], node.outputs[0], "out_"))
    return out


def _dtype_of(ex: _Exporter, name: str) -> str | None:
    """The k5 dtype of value ``name``: a stored constant's, a declared one (inputs, outputs, value_info), else the
    one its producer's output dtype rule in the op registry gives."""
    from k5.format.model import weight_dtype
    from k5.ops import infer_dtypes

    if name in ex.constants:
        return weight_dtype(ex.constants[name])
    if ex.dtypes is None:
        ex.dtypes = infer_dtypes(ex.model.graph)
    return ex.dtypes.get(name)


def _inferred_dtype(ex: _Exporter, name: str) -> str | None:
    """The dtype ONNX shape inference finds for ``name`` over the nodes written so far (top-level graph only)."""
    import onnx
    from onnx import helper

    from k5.convert.onnx.tables import ONNX_DTYPES

    if not ex.scopes or ex.inits[-1] is None:
        return None
    g, nodes = ex.scopes[-1]
    graph = helper.make_graph(
        list(nodes), "probe", [ex.value_info(t) for t in g.inputs], [helper.make_empty_tensor_value_info(name)],
        initializer=list(ex.inits[-1]),
    )  # fmt: skip
    imports = [helper.make_opsetid("", onnx.defs.onnx_opset_version())]
    imports += [helper.make_opsetid(d, 1) for d in sorted(ex.used_domains)]
    try:
        inferred = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=imports))
    except Exception:  # noqa: BLE001 - best effort: a model ONNX cannot infer leaves the dtype unknown
        return None
    for v in (*inferred.graph.value_info, *inferred.graph.output):
        if v.name == name and v.type.WhichOneof("value") == "tensor_type":
            return ONNX_DTYPES.get(v.type.tensor_type.elem_type)
    return None


def _mask_dtype(ex: _Exporter, node: Node, name: str, what: str) -> str:
    dtype = _dtype_of(ex, name) or _inferred_dtype(ex, name)
    if dtype is None:
        producer = ex.producers.get(name)
        source = f"computed by {producer.label}" if producer is not None else "with no declared type"
        raise ConversionError(
            f"{what} {name!r} ({source}) needs a known dtype (bool, or a float added to the scores) to export; "
            f"declare it in the graph's value_info",
            where=node.label,
        )
    return dtype


def to_onnx(model: Model, *, opset: int | None = None) -> Any:
    """Convert a k5 :class:`Model` into an ``onnx.ModelProto``.

    ``opset``: the ONNX opset to target (default: the lowest, at least 18, at which every node has its current
    form). Raises :class:`UnsupportedOpsError` listing every k5 op that has no ONNX form, or
    :class:`ConversionError` when ``opset`` is too old for an op.
    """
    proto, pending = build_proto(model, opset, defer=True)  # opset and type checks run on the proto without weights
    fill(proto, pending)
    return proto


def build_proto(model: Model, opset: int | None, *, defer: bool) -> tuple[Any, dict[str, Any]]:
    """(the ModelProto, placeholder name -> weight value); placeholders only when ``defer``."""
    try:
        return _build_unchecked(model, opset, defer=defer)
    except K5Error:
        raise
    except Exception as e:  # whatever escaped the per-node wrapper (opset choice, metadata...)
        raise ConversionError(f"ONNX export failed: {type(e).__name__}: {e}") from e


def _build_unchecked(model: Model, opset: int | None, *, defer: bool) -> tuple[Any, dict[str, Any]]:
    import onnx
    from onnx import helper

    ex = _Exporter(model, defer=defer)
    graph = ex.graph(model.graph, top=True)
    if ex.unsupported:
        raise UnsupportedOpsError("k5 -> ONNX", ex.unsupported)
    imports = [helper.make_opsetid("", onnx.defs.onnx_opset_version())]
    imports += [helper.make_opsetid(d, int(model.opset.get(d, 1))) for d in sorted(ex.used_domains)]
    proto = helper.make_model(graph, opset_imports=imports, producer_name="k5")
    needed, per_op = required_opset(proto, EXPORT_FLOOR_OPSET)
    if opset is None:
        opset = needed
    elif opset < needed:
        too_new = ", ".join(f"{op} (>= {v})" for op, v in sorted(per_op.items()) if v > opset)
        raise ConversionError(
            f"ONNX opset {opset} is too old for this model; needs >= {needed}: {too_new or 'export floor'}"
        )
    elif opset > onnx.defs.onnx_opset_version():
        raise ConversionError(f"ONNX opset {opset} is newer than the installed onnx ({onnx.defs.onnx_opset_version()})")
    proto.opset_import[0].version = opset
    _complete_output_types(proto)
    proto.ir_version = helper.find_min_ir_version_for([proto.opset_import[0]])
    meta = model.metadata
    if meta.description:
        proto.doc_string = meta.description
    for key, value in (("author", meta.author), ("license", meta.license), *meta.extra.items()):
        if value and key != "onnx_opset":
            proto.metadata_props.add(key=key, value=value)
    return proto, ex.pending


def _complete_output_types(proto: Any) -> None:
    """Graph outputs declared without a shape (or type) take the ones ONNX shape inference finds."""
    import onnx

    outputs = proto.graph.output
    incomplete = [o for o in outputs if not o.type.tensor_type.HasField("shape") or not o.type.tensor_type.elem_type]
    if not incomplete or any(o.type.WhichOneof("value") not in (None, "tensor_type") for o in incomplete):
        return
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False)
    except Exception:  # noqa: BLE001 - best effort (e.g. a model over protobuf's 2 GB limit)
        return
    known = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.output)}
    for o in incomplete:
        found = known.get(o.name)
        if found is not None and found.type.tensor_type.elem_type and found.type.tensor_type.HasField("shape"):
            o.type.CopyFrom(found.type)
