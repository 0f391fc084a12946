"""Read a Keras model config (the dict of ``model.get_config()`` or a ``.keras``/``.h5`` file's JSON) into calls.

Pure data: no Keras import, no code from the config is executed. Functional configs (Keras 3 ``inbound_nodes``
with ``__keras_tensor__`` arguments, and Keras 2's ``[[layer, node, tensor, kwargs]]`` lists) and Sequential configs
are read; every layer class is looked up in :data:`k5.convert.keras.tables.LAYERS` by its name, and anything not
there (``Lambda``, custom objects) is refused with its name before any conversion starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from k5.convert.keras.tables import LAYERS, REFUSED
from k5.errors import ConversionError, UnsupportedOpsError

__all__ = ["TENSOR", "ParsedCall", "ParsedModel", "TensorRef", "op_key", "parse_model_config"]

#: the key marking a tensor argument in :attr:`ParsedCall.args` (``{TENSOR: index into inputs}``)
TENSOR = "__k5_tensor__"

TensorRef = tuple[str, int, int]  # (layer name, call index, output index)

_MODEL_CLASSES = ("Functional", "Sequential", "Model")
# positional parameter names of layers whose call takes several tensors by role
_POSITIONAL = {"MultiHeadAttention": ("query", "value", "key"),
               # the recurrent layers take a mask= tensor (masking.py); initial_state= is refused there
               "LSTM": ("sequences",), "GRU": ("sequences",), "SimpleRNN": ("sequences",),
               "Bidirectional": ("sequences",)}


@dataclass
class ParsedCall:
    class_name: str
    layer: str
    index: int  # which call of the layer
    config: dict[str, Any]
    inputs: list[TensorRef]
    shapes: list[list[int | None] | None]
    dtypes: list[str | None]
    kwargs: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, int] = field(default_factory=dict)
    args: list[Any] = field(default_factory=list)  # positional args, tensors as {TENSOR: index}
    path: tuple[str, ...] = ()  # the nested models holding this layer, outermost first


def op_key(layer: dict[str, Any]) -> str:
    """The table key of a layer entry: its class name, or ``ops.<Class>`` for a Keras operation (``x + 3.0`` on a
    symbolic tensor records ``keras.src.ops.numpy.Add``)."""
    cls = str(layer.get("class_name"))
    module = layer.get("module")
    if isinstance(module, str) and module.startswith("keras.src.ops."):
        return f"ops.{cls}"
    return cls


@dataclass
class ParsedModel:
    name: str
    inputs: list[tuple[str, list[int | None], str]]  # (name, batch shape, dtype)
    calls: list[ParsedCall]
    outputs: list[TensorRef]
    layer_classes: dict[str, str]
    aliases: dict[TensorRef, TensorRef] = field(default_factory=dict)  # nested models' inputs and outputs


def _inline(outer: str, layer: dict[str, Any], cls: str, inputs: list[TensorRef], calls: list[ParsedCall],
            layer_classes: dict[str, str], aliases: dict[TensorRef, TensorRef]) -> None:
    """Splice a nested model called once on ``inputs``: its layers join ``calls`` (with ``path`` prefixed), its
    inputs alias ``inputs`` and ``(outer, 0, i)`` aliases its outputs."""
    inner = parse_model_config(cls, layer.get("config", {}))
    if len(inner.inputs) != len(inputs):
        raise ConversionError(f"nested model {outer!r} takes {len(inner.inputs)} inputs. Received: {len(inputs)}")
    clash = set(inner.layer_classes) & set(layer_classes)
    if clash - {i[0] for i in inner.inputs}:
        raise ConversionError(f"nested model {outer!r} reuses layer names {sorted(clash)}")
    for pc in inner.calls:
        pc.path = (outer, *pc.path)
        calls.append(pc)
    layer_classes.update(inner.layer_classes)
    aliases.update(inner.aliases)
    for (name, _, _), ref in zip(inner.inputs, inputs, strict=True):
        aliases[(name, 0, 0)] = ref
    for i, ref in enumerate(inner.outputs):
        aliases[(outer, 0, i)] = ref


def _dtype(value: Any) -> str:
    if isinstance(value, dict):  # a DTypePolicy
        value = value.get("config", {}).get("name", "float32")
    value = str(value or "float32")
    if value.startswith("mixed_"):
        raise ConversionError(f"dtype policy {value!r} is not converted; convert a float32 copy of the model")
    return value


def _check_class(layer: dict[str, Any], unknown: dict[str, int]) -> str:
    if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
        raise ConversionError(f"a layer entry has no class_name: {str(layer)[:200]}")
    cls = op_key(layer)
    module = layer.get("module")
    registered = layer.get("registered_name")
    if cls in REFUSED:
        name = layer.get("config", {}).get("name", layer.get("name"))
        raise ConversionError(REFUSED[cls], where=f"layer {name!r} ({cls})")
    if cls in LAYERS or cls == "InputLayer":
        if isinstance(module, str) and not module.startswith("keras"):
            unknown[f"{cls} (custom object from module {module!r})"] = unknown.get(cls, 0) + 1
        elif registered not in (None, cls) and isinstance(registered, str) and ">" in registered:
            unknown[f"{registered} (custom object)"] = unknown.get(registered, 0) + 1
        return cls
    if cls in _MODEL_CLASSES and isinstance(layer.get("config", {}).get("layers"), list):
        return cls  # a nested Sequential/functional model: inlined
    if cls in _MODEL_CLASSES:
        unknown[f"{cls} (a subclassed nested model)"] = unknown.get(cls, 0) + 1
    elif registered and registered != cls:
        unknown[f"{registered} (custom object)"] = unknown.get(registered, 0) + 1
    else:
        unknown[cls] = unknown.get(cls, 0) + 1
    return cls


def _is_tensor(v: Any) -> bool:
    return isinstance(v, dict) and v.get("class_name") == "__keras_tensor__"


def _collect(value: Any, out: list[dict[str, Any]]) -> Any:
    """Replace Keras tensors in a nested args structure by their index in ``out``."""
    if _is_tensor(value):
        out.append(value["config"])
        return {TENSOR: len(out) - 1}
    if isinstance(value, (list, tuple)):
        return [_collect(v, out) for v in value]
    if isinstance(value, dict) and "class_name" not in value and TENSOR not in value:
        return {k: _collect(v, out) for k, v in value.items()}
    return value


def _ref(history: Any) -> TensorRef:
    return (str(history[0]), int(history[1]), int(history[2]))


def _refs(value: Any) -> list[TensorRef]:
    """``input_layers``/``output_layers``: one [name, node, tensor] or a list (or dict) of them."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        return [_ref(value)]
    return [_ref(v) for v in value]


def _functional_call(layer: dict[str, Any], cls: str, name: str, index: int, node: Any) -> ParsedCall:
    cfg = layer.get("config", {})
    if isinstance(node, list):  # Keras 2: [[layer, node, tensor, kwargs], ...]
        refs = [_ref(t) for t in node]
        kw2 = dict(node[0][3]) if node and len(node[0]) > 3 and isinstance(node[0][3], dict) else {}
        roles2 = {p: i for i, p in enumerate(_POSITIONAL.get(cls, ())) if i < len(refs)}
        return ParsedCall(cls, name, index, cfg, refs, [None] * len(refs), [None] * len(refs), kw2, roles2)
    tensors: list[dict[str, Any]] = []
    args = _collect(node.get("args", []), tensors)
    kwargs_s = _collect(node.get("kwargs", {}), tensors)
    roles: dict[str, int] = {}
    positional = _POSITIONAL.get(cls, ())
    for i, a in enumerate(args):
        if isinstance(a, dict) and TENSOR in a and i < len(positional):
            roles[positional[i]] = a[TENSOR]
    kwargs: dict[str, Any] = {}
    n_tensor_kwargs = 0
    for k, v in kwargs_s.items():
        if isinstance(v, dict) and TENSOR in v:
            roles[k] = v[TENSOR]
            n_tensor_kwargs += 1
        else:
            kwargs[k] = v
    refs = [_ref(t["keras_history"]) for t in tensors]
    shapes = [list(t["shape"]) if t.get("shape") is not None else None for t in tensors]
    dtypes: list[str | None] = [_dtype(t.get("dtype")) for t in tensors]
    if n_tensor_kwargs and cls not in _POSITIONAL:
        names = [k for k in kwargs_s if k in roles]
        raise ConversionError(f"tensor keyword arguments {names} are not converted", where=f"layer {name!r} ({cls})")
    return ParsedCall(cls, name, index, cfg, refs, shapes, dtypes, kwargs, roles, list(args))


def _input_shape(cfg: dict[str, Any]) -> list[int | None]:
    shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
    if shape is None:
        raise ConversionError(f"input layer {cfg.get('name')!r} declares no shape")
    return list(shape)


def parse_model_config(class_name: str, config: dict[str, Any]) -> ParsedModel:
    """Parse a Functional or Sequential model config; refuses unknown layers (all listed at once)."""
    if class_name not in _MODEL_CLASSES:
        raise ConversionError(f"expected a Functional or Sequential model config. Received: class {class_name!r}")
    layers = config.get("layers")
    if not isinstance(layers, list):
        raise ConversionError("the model config has no 'layers' list (subclassed models are not converted)")
    unknown: dict[str, int] = {}
    classes = [_check_class(layer, unknown) for layer in layers]
    if unknown:
        raise UnsupportedOpsError("Keras layer", unknown)
    name = str(config.get("name", "model"))
    if class_name == "Sequential" or ("input_layers" not in config and all("inbound_nodes" not in la
                                                                           for la in layers)):
        return _sequential(name, config, layers, classes)
    inputs: list[tuple[str, list[int | None], str]] = []
    input_refs = _refs(config.get("input_layers", []))
    by_name: dict[str, dict[str, Any]] = {}
    calls: list[ParsedCall] = []
    layer_classes: dict[str, str] = {}
    aliases: dict[TensorRef, TensorRef] = {}
    for layer, cls in zip(layers, classes, strict=True):
        lname = str(layer.get("name") or layer.get("config", {}).get("name"))
        by_name[lname] = layer
        layer_classes[lname] = cls
        if cls == "InputLayer":
            continue
        nodes = layer.get("inbound_nodes", [])
        if cls in _MODEL_CLASSES:
            if len(nodes) != 1:
                raise ConversionError(f"nested model {lname!r} is called {len(nodes)} times; only once is converted")
            _inline(lname, layer, cls, _functional_call(layer, cls, lname, 0, nodes[0]).inputs, calls,
                    layer_classes, aliases)
            continue
        for i, node in enumerate(nodes):
            calls.append(_functional_call(layer, cls, lname, i, node))
    for ref in input_refs:
        layer = by_name.get(ref[0])
        if layer is None or layer.get("class_name") != "InputLayer":
            raise ConversionError(f"model input {ref[0]!r} is not an InputLayer")
        cfg = layer.get("config", {})
        inputs.append((ref[0], _input_shape(cfg), _dtype(cfg.get("dtype"))))
    return ParsedModel(name, inputs, calls, _refs(config.get("output_layers", [])), layer_classes, aliases)


def _sequential(name: str, config: dict[str, Any], layers: list[dict[str, Any]], classes: list[str]) -> ParsedModel:
    start = 0
    first = layers[0] if layers else {}
    if classes and classes[0] == "InputLayer":
        cfg = first.get("config", {})
        in_name = str(cfg.get("name", "input"))
        shape = _input_shape(cfg)
        dtype = _dtype(cfg.get("dtype"))
        start = 1
    else:
        in_name = "input"
        cfg = first.get("config", {}) if layers else {}
        found = config.get("build_input_shape") or cfg.get("batch_input_shape") or \
            (first.get("build_config") or {}).get("input_shape")
        if found is None:
            raise ConversionError("the Sequential model has no input shape (build it, or start with keras.Input)")
        shape = list(found)
        dtype = _dtype(cfg.get("dtype")) if isinstance(cfg.get("dtype"), str) else "float32"
    prev: TensorRef = (in_name, 0, 0)
    prev_shape: list[int | None] | None = shape
    prev_dtype: str | None = dtype
    calls: list[ParsedCall] = []
    layer_classes = {in_name: "InputLayer"}
    aliases: dict[TensorRef, TensorRef] = {}
    for layer, cls in zip(layers[start:], classes[start:], strict=True):
        cfg = layer.get("config", {})
        lname = str(cfg.get("name", layer.get("name")))
        layer_classes[lname] = cls
        if cls in _MODEL_CLASSES:
            _inline(lname, layer, cls, [prev], calls, layer_classes, aliases)
            prev, prev_shape, prev_dtype = (lname, 0, 0), None, None
            continue
        built = (layer.get("build_config") or {}).get("input_shape")
        in_shape = list(built) if isinstance(built, list) else prev_shape
        calls.append(ParsedCall(cls, lname, 0, cfg, [prev], [in_shape], [prev_dtype]))
        prev, prev_shape, prev_dtype = (lname, 0, 0), None, None
    return ParsedModel(name, [(in_name, shape, dtype)], calls, [prev], layer_classes, aliases)
