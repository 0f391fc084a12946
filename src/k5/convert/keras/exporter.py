"""k5 -> Keras: :func:`to_keras` builds a functional ``keras.Model`` of real Keras layers holding the weights.

k5's layer ops are channels-first, so convolution, pooling and normalization become Keras layers with
``data_format="channels_first"`` (axis 1); the model takes exactly the inputs the k5 model takes (a model converted
from Keras keeps its NHWC interface through its explicit Transpose nodes; one from PyTorch takes NCHW). Ops with no
Keras layer use the small serializable layers of :mod:`.keras_layers`. Keras is imported inside the functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from k5.convert.keras.tables import EXPORTERS
from k5.errors import ConversionError, K5Error, SaveError, UnsupportedOpsError
from k5.format.model import Model, Node, as_array
from k5.ops import find_schema

__all__ = ["Ctx", "channels_last", "custom_objects", "save_keras", "to_keras"]


def _inverse(perm: list[int]) -> list[int]:
    out = [0] * len(perm)
    for i, p in enumerate(perm):
        out[p] = i
    return out


def channels_last(rank: int) -> list[int]:
    """The perm taking a channels-first tensor to channels-last."""
    return [0, *range(2, rank), 1]


@dataclass
class Ctx:
    """What an exporter needs: Keras, the custom layers, the values computed so far, unique layer names.

    A value is held as a KerasTensor ``t`` and a perm ``p`` with ``t = transpose(k5_value, p)`` (``p`` None: the
    k5 value itself). Channel layers run channels-last (TensorFlow's CPU kernels are NHWC-only, and Keras 3.15's
    channels-first Conv1D adds its bias wrongly), so they ask for :meth:`cl` and store their result with the
    channels-last perm; k5 Transposes only compose perms, and a Transpose layer is made when a layer asks for a
    layout the value does not have. A k5 model converted from Keras thus comes back without Transpose pairs.
    """

    keras: Any
    custom: Any
    values: dict[str, Any] = field(default_factory=dict)  # tensor -> KerasTensor, or np.ndarray for constants
    perms: dict[str, list[int]] = field(default_factory=dict)  # tensor -> perm of its KerasTensor (absent: none)
    names: set[str] = field(default_factory=set)
    _views: dict[tuple[str, tuple[int, ...]], Any] = field(default_factory=dict)

    def view(self, name: str, perm: list[int] | None, hint: str) -> Any:
        """The value ``name`` as ``transpose(k5_value, perm)`` (``perm`` None: the k5 value)."""
        t = self.values[name]
        have = self.perms.get(name)
        rank = len(t.shape)
        want = perm if perm is not None else list(range(rank))
        have_ = have if have is not None else list(range(rank))
        if want == have_:
            return t
        key = (name, tuple(want))
        if key not in self._views:
            inv = _inverse(have_)
            step = [inv[i] for i in want]  # t = v.T(have) -> v.T(want) = t.T(inv(have) o want)
            self._views[key] = self.custom.K5Transpose(step, name=self.layer_name(f"{hint}.transpose"))(t)
        return self._views[key]

    def cl(self, name: str, hint: str) -> Any:
        return self.view(name, channels_last(len(self.values[name].shape)), hint)

    def set(self, name: str, value: Any, perm: list[int] | None = None) -> None:
        self.values[name] = value
        if perm is not None and perm != list(range(len(perm))):
            self.perms[name] = perm
        else:
            self.perms.pop(name, None)

    def layer_name(self, node_id: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", node_id) or "layer"  # torch-backend parameter names refuse "."
        name, n = base, 1
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        self.names.add(name)
        return name

    def const(self, name: str, node: Node) -> np.ndarray:
        v = self.values.get(name)
        if not isinstance(v, np.ndarray):
            raise ConversionError(f"input {name!r} must be a constant to convert to Keras", where=node.label)
        return v

    def is_const(self, name: str) -> bool:
        return isinstance(self.values.get(name), np.ndarray)


def _resolved_attrs(node: Node) -> dict[str, Any]:
    """The node's attributes completed with the registry's defaults (never restated here)."""
    schema = find_schema(node.op, node.domain)
    return schema.resolve_attrs(node) if schema is not None else dict(node.attrs)


def to_keras(model: Model) -> Any:
    """Build a ``keras.Model`` (functional) computing ``model`` with Keras layers holding its weights.

    The result can be compiled, fitted and saved (``model.save("x.keras")``); ops without a Keras layer use k5's
    registered layers (:func:`custom_objects`). Raises :class:`UnsupportedOpsError` listing every op it cannot build.
    """
    from k5.convert.keras import keras_layers
    from k5.convert.keras.importer import import_keras

    keras = import_keras()
    missing: dict[str, int] = {}
    for n in model.nodes:
        if n.op not in EXPORTERS and n.op != "Constant":
            missing[n.op] = missing.get(n.op, 0) + 1
    if missing:
        raise UnsupportedOpsError("k5 (for Keras)", missing)
    cx = Ctx(keras, keras_layers)
    inputs = []
    for t in model.graph.inputs:
        dims = t.shape or []
        shape = tuple(d if isinstance(d, int) else None for d in dims[1:])
        inp = keras.Input(shape=shape, name=cx.layer_name(t.name), dtype=t.dtype or "float32")
        cx.values[t.name] = inp
        inputs.append(inp)
    for node in model.nodes:
        if node.op == "Constant":
            cx.values[node.outputs[0]] = np.asarray(as_array(node.weights["value"]))
            continue
        fn = EXPORTERS.get(node.op)
        assert fn is not None
        try:
            outs = fn(cx, node, _resolved_attrs(node))
        except K5Error as e:
            raise e if e.where else e.located(node.label) from None
        for name, value in zip(node.outputs, outs, strict=False):
            if name and value is not None:
                if isinstance(value, tuple):  # (KerasTensor, perm)
                    cx.set(name, value[0], value[1])
                else:
                    cx.set(name, value)
    outputs = []
    for t in model.graph.outputs:
        v = cx.values.get(t.name)
        if v is None or isinstance(v, np.ndarray):
            raise ConversionError(f"graph output {t.name!r} is not computed by a layer")
        outputs.append(cx.view(t.name, None, t.name))
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                       name=model.graph.name or "k5_model")


def save_keras(model: Model, path: str) -> None:
    """:func:`to_keras`, then ``model.save`` to ``path`` (``.keras``) atomically: written beside the target under a
    temporary name, then renamed."""
    import os
    import tempfile

    target = os.path.abspath(os.fspath(path))
    if not target.lower().endswith(".keras"):
        raise ConversionError(f"a Keras model file must end in .keras. Received: {path!r}")
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise SaveError(f"the directory {folder!r} does not exist", where=target)
    kmodel = to_keras(model)
    fd, tmp = tempfile.mkstemp(prefix=".k5-", suffix=".keras", dir=os.path.dirname(target) or ".")
    os.close(fd)
    try:
        kmodel.save(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def custom_objects() -> dict[str, Any]:
    """k5's serializable Keras layers by registered name (``keras.saving.load_model(..., custom_objects=...)``)."""
    from k5.convert.keras.keras_layers import CUSTOM_OBJECTS

    return dict(CUSTOM_OBJECTS)
