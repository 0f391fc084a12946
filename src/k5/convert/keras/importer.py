"""Keras -> k5: the driver. ``from_keras`` reads a live model's config and weights; the file readers hand the
same two things over from a ``.keras`` or ``.h5`` file. Keras is imported inside :func:`from_keras` only.

Phases: parse the config (:mod:`.config`), convert each call in dependency order with the :data:`LAYERS` table,
give the graph outputs their Keras (channels-last) layout and their layer names, prune what nothing reads, fold
Transpose pairs, then record the validation pair from Keras' own outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from k5.convert import require
from k5.convert.keras.config import ParsedModel, TensorRef, parse_model_config
from k5.convert.keras.graph import Builder, LayerCall, Val
from k5.convert.keras.tables import LAYERS
from k5.errors import ConversionError, K5Error
from k5.format.model import Graph, Metadata, Model, Node, TensorInfo, ValidationPair

__all__ = ["convert_parsed", "from_keras", "import_keras"]

WeightFn = Callable[[tuple[str, ...]], list[np.ndarray]]
def import_keras() -> Any:
    """``keras``, or a MissingDependencyError naming ``pip install 'k5[tensorflow]'``."""
    return require("keras", "tensorflow", purpose="Keras models")


def _tensor_infos(parsed: ParsedModel) -> list[TensorInfo]:
    infos = []
    for name, shape, dtype in parsed.inputs:
        dims: list[int | str] = [d if isinstance(d, int) else ("batch" if i == 0 else f"{name}_d{i}")
                                 for i, d in enumerate(shape)]
        infos.append(TensorInfo(name, dtype, dims))
    return infos


def convert_parsed(parsed: ParsedModel, weights: WeightFn) -> Model:
    """Build the k5 model of a parsed Keras config; ``weights(path)`` gives a layer's arrays in
    ``layer.get_weights()`` order (``path``: the nested models holding it, then its name)."""
    b = Builder()
    values: dict[TensorRef, Val] = {}

    def real(ref: TensorRef) -> TensorRef:
        seen = 0
        while ref in parsed.aliases and seen < 1000:
            ref, seen = parsed.aliases[ref], seen + 1
        return ref

    for name, shape, _ in parsed.inputs:
        b.names.add(name)
        values[(name, 0, 0)] = Val(name, "k", len(shape))
    pending = list(parsed.calls)
    while pending:
        progressed = False
        rest = []
        for pc in pending:
            if not all(real(r) in values for r in pc.inputs):
                rest.append(pc)
                continue
            progressed = True
            fn = LAYERS.get(pc.class_name)
            assert fn is not None  # checked by parse_model_config
            ins = [values[real(r)] for r in pc.inputs]
            for v, s in zip(ins, pc.shapes, strict=True):
                if s is not None and v.rank is None:
                    v.rank = len(s)
            node_id = pc.layer if pc.index == 0 else f"{pc.layer}_call{pc.index}"
            ws = [] if pc.class_name.startswith("ops.") else weights((*pc.path, pc.layer))
            call = LayerCall(pc.class_name, node_id, pc.config, ws, ins, pc.shapes, pc.dtypes, pc.kwargs,
                             pc.roles, pc.args)
            try:
                outs = fn(b, call)
            except K5Error as e:
                raise e if e.where else e.located(call.where()) from None
            except (KeyError, IndexError, ValueError, TypeError) as e:  # a malformed config
                raise ConversionError(f"cannot convert: {type(e).__name__}: {e}", where=call.where()) from None
            for i, v in enumerate(outs):
                values[(pc.layer, pc.index, i)] = v
        if not progressed:
            missing = sorted({r[0] for pc in rest for r in pc.inputs if real(r) not in values})
            raise ConversionError(f"the model config's graph cannot be ordered; inputs never produced: {missing}")
        pending = rest
    outputs: list[TensorInfo] = []
    renames: dict[str, str] = {}
    input_names = {n for n, _, _ in parsed.inputs}
    for ref in parsed.outputs:
        ref = real(ref)
        if ref not in values:
            raise ConversionError(f"model output {ref[0]!r} is never computed")
        tensor = b.get(values[ref], "k")
        want = ref[0] if ref[2] == 0 else f"{ref[0]}:{ref[2]}"
        if tensor in input_names or tensor in renames:
            tensor = b.add1("Identity", [tensor], id=f"{want}.output")
        if want not in input_names and want not in renames.values():
            renames[tensor] = want
        outputs.append(TensorInfo(renames.get(tensor, tensor)))
    nodes = _fold_transposes(_prune(b.nodes, [t.name for t in outputs] + list(renames)))
    _rename(nodes, renames)
    graph = Graph(nodes, _tensor_infos(parsed), outputs, name=parsed.name)
    return Model(graph)


def _prune(nodes: list[Node], keep: Sequence[str]) -> list[Node]:
    needed = set(keep)
    out = []
    for n in reversed(nodes):
        if any(o in needed for o in n.outputs):
            out.append(n)
            needed.update(i for i in n.inputs if i)
    return out[::-1]


def _rename(nodes: list[Node], renames: dict[str, str]) -> None:
    if not renames:
        return
    taken = {o for n in nodes for o in n.outputs}
    clash = {new for old, new in renames.items() if new in taken and new not in renames}
    for n in nodes:  # a tensor already named like an output's layer (its channels-first value) moves aside
        n.inputs = [f"{i}.channels_first" if i in clash else i for i in n.inputs]
        n.outputs = [f"{o}.channels_first" if o in clash else o for o in n.outputs]
    for n in nodes:
        n.inputs = [renames.get(i, i) for i in n.inputs]
        n.outputs = [renames.get(o, o) for o in n.outputs]


def _fold_transposes(nodes: list[Node]) -> list[Node]:
    """Transpose(Transpose(x)) -> one Transpose (or none) where the inner result has no other reader."""
    readers: dict[str, int] = {}
    for n in nodes:
        for i in n.inputs:
            readers[i] = readers.get(i, 0) + 1
    producer = {o: n for n in nodes for o in n.outputs}
    dropped: set[int] = set()
    alias: dict[str, str] = {}
    for n in nodes:
        if n.op != "Transpose" or not n.inputs:
            continue
        inner = producer.get(n.inputs[0])
        if inner is None or inner.op != "Transpose" or readers.get(n.inputs[0], 0) != 1 or id(inner) in dropped:
            continue
        p1, p2 = inner.attrs["perm"], n.attrs["perm"]
        perm = [p1[i] for i in p2]
        n.inputs = [inner.inputs[0]]
        n.attrs["perm"] = perm
        dropped.add(id(inner))
    out = [n for n in nodes if id(n) not in dropped]
    # identity transposes: readers read the input directly
    final = []
    for n in out:
        if n.op == "Transpose" and n.attrs.get("perm") == sorted(n.attrs["perm"]):
            alias[n.outputs[0]] = n.inputs[0]
            continue
        final.append(n)
    if alias:
        for n in final:
            n.inputs = [alias.get(i, i) for i in n.inputs]
    return final


# -- live models --------------------------------------------------------------------------------------------------
def _live_config(model: Any, example_inputs: Any = None) -> tuple[str, dict[str, Any], Any]:
    """(class, config, the functional/Sequential model holding the layers) of a live model; a subclassed model is
    traced first (:func:`_trace_subclassed`)."""
    keras = import_keras()
    if not isinstance(model, keras.Model):
        raise ConversionError(f"expected a keras.Model. Received: {type(model).__name__}")
    if not model.built:
        raise ConversionError("the model is not built; call it once or give it an Input")
    cls = type(model).__name__
    if isinstance(model, keras.Sequential):
        return "Sequential", model.get_config(), model
    if cls != "Functional":
        model = _trace_subclassed(keras, model, example_inputs)
    return "Functional", model.get_config(), model


def _trace_subclassed(keras: Any, model: Any, example_inputs: Any) -> Any:
    """A functional model of a subclassed model's call graph: its ``call`` run on symbolic ``keras.Input``s, so
    each Keras layer and ``keras.ops`` it calls is recorded as a node. Input shapes come from ``example_inputs``
    (batch axis left free) or from the shapes the model was built with; the call must take one tensor or a list."""
    cls = type(model).__name__
    if example_inputs is not None:
        arrays = [np.asarray(a) for a in (example_inputs if isinstance(example_inputs, (list, tuple))
                                          else [example_inputs])]
        specs = [(a.shape[1:], str(a.dtype)) for a in arrays]
    else:
        shapes = getattr(model, "_build_shapes_dict", None) or {}
        if len(shapes) != 1:
            raise ConversionError(f"subclassed model {cls}: its input shapes are unknown; pass example_inputs")
        shape = next(iter(shapes.values()))
        many = isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple))
        specs = [(tuple(s)[1:], "float32") for s in (shape if many else [shape])]
    try:
        inputs = [keras.Input(shape=tuple(shape), dtype=dtype) for shape, dtype in specs]
        arg = inputs if len(inputs) > 1 else inputs[0]
        try:
            outputs = model.call(arg, training=False)
        except TypeError:  # a call without a training argument
            outputs = model.call(arg)
        traced = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=model.name)
    except K5Error:
        raise
    except Exception as e:  # noqa: BLE001 - any failure of user code while tracing is reported as such
        raise ConversionError(
            f"subclassed model {cls}: its call() cannot be traced on symbolic keras.Input tensors "
            f"({type(e).__name__}: {e}). Only a call() made of Keras layers and keras.ops converts; rebuild it as a "
            "functional model (keras.Model(inputs, outputs))"
        ) from None
    return traced


def _example_inputs(parsed: ParsedModel, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    limits: dict[str, int] = {}
    for pc in parsed.calls:
        if pc.class_name == "Embedding":
            for r in pc.inputs:
                limits[r[0]] = min(limits.get(r[0], 1 << 30), int(pc.config["input_dim"]))
    out = []
    for name, shape, dtype in parsed.inputs:
        dims = [2 if i == 0 and d is None else (5 if d is None else int(d)) for i, d in enumerate(shape)]
        if name in limits or dtype.startswith(("int", "uint")):
            high = limits.get(name, 10)
            out.append(rng.integers(0, high, size=dims).astype(dtype))
        else:
            out.append(rng.standard_normal(dims).astype(dtype))
    return out


def from_keras(
    model: Any,
    example_inputs: Any = None,
    *,
    metadata: Metadata | None = None,
    validation: bool = True,
) -> Model:
    """Convert a Keras 3 ``Sequential``, functional or traceable subclassed ``keras.Model`` into a k5 :class:`Model`.

    Each Keras layer becomes a k5 layer op named by the layer's name and owning its weights; the model keeps its
    Keras interface (channels-last inputs and outputs). ``example_inputs`` (an array, or a list in
    ``model.inputs`` order) is the validation input; by default a seeded random batch of 2 (integer indices for
    inputs that feed an Embedding). The validation outputs are Keras' own.
    """
    keras = import_keras()
    cls, config, graph_model = _live_config(model, example_inputs)
    parsed = parse_model_config(cls, config)

    def weights(path: tuple[str, ...]) -> list[np.ndarray]:
        layer = graph_model
        for name in path:
            layer = layer.get_layer(name)
        return [np.asarray(keras.ops.convert_to_numpy(v)) for v in layer.weights]

    k5model = convert_parsed(parsed, weights)
    k5model.metadata = metadata or Metadata()
    if not k5model.metadata.producer:
        k5model.metadata.producer = f"k5 / keras {keras.__version__} ({keras.backend.backend()} backend)"
    if validation:
        if example_inputs is None:
            xs = _example_inputs(parsed)
        else:
            xs = [np.asarray(a) for a in (example_inputs if isinstance(example_inputs, (list, tuple))
                                           else [example_inputs])]
        ys = model(xs if len(xs) > 1 else xs[0], training=False)
        flat = list(ys) if isinstance(ys, (list, tuple)) else [ys]
        k5model.validation = ValidationPair(
            inputs={t.name: x for t, x in zip(k5model.graph.inputs, xs, strict=True)},
            outputs={t.name: np.asarray(keras.ops.convert_to_numpy(y)).copy()
                     for t, y in zip(k5model.graph.outputs, flat, strict=True)},
        )
    return k5model
