"""Keras files as sources, read without Keras and without executing anything from the file.

- ``.keras`` (Keras 3): a zip holding ``config.json`` and ``model.weights.h5``. The config is parsed as JSON and
  each layer mapped by its class name (:mod:`.config`); ``Lambda`` layers (which carry Python bytecode) and custom
  objects are refused by name. Keras' own loader deserializes classes and functions named in the config, the path
  of its 2025 code-execution CVE; k5 never imports or calls anything the file names.
- legacy ``.h5`` (Keras 2, and Keras 3's ``model.save("x.h5")``): the ``model_config`` root attribute and the
  ``model_weights/<layer>`` groups listed by their ``weight_names`` attributes, read with h5py.

Both HDF5 readers take the care the ``.k5`` reader takes: hard links only (no soft or external links), no external
or virtual datasets, no filters beyond deflate/shuffle, numeric data only, and a dataset's declared size checked
against the bytes that hold it before anything is read. Zip members are size-checked before they are read.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from typing import Any

import h5py
import numpy as np

from k5.convert.keras.config import ParsedModel, parse_model_config
from k5.convert.keras.importer import convert_parsed
from k5.errors import FormatError, HostileSizeError, K5Error, UnsafeFileError
from k5.format.model import Metadata, Model

__all__ = ["read_h5", "read_keras", "run_keras_file"]

MAX_CONFIG_BYTES = 64 << 20
MAX_WEIGHTS_BYTES = 16 << 30
MAX_DEFLATE_RATIO = 1032  # deflate cannot compress more than this (about 1:1032)
_FILTERS = {h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE}
# sub-objects of a layer in the order ``layer.weights`` lists their variables
_SUB_ORDER = {
    "MultiHeadAttention": ("query_dense", "key_dense", "value_dense", "output_dense"),
    "Bidirectional": ("forward_layer", "backward_layer"),
}


class _H5:
    """Defensive reads from an open h5py file of ``size`` bytes."""

    def __init__(self, f: h5py.File, size: int, where: str) -> None:
        self.f, self.size, self.where = f, size, where

    def child(self, group: h5py.Group, name: str) -> Any:
        """``group[name]`` (None if absent), refusing anything but a hard link."""
        where = f"{self.where}: {group.name.rstrip('/')}/{name}"
        try:
            link = group.get(name, getlink=True)
        except (KeyError, OSError, RuntimeError, ValueError, TypeError) as e:
            raise FormatError(f"cannot read the link: {e}", where=where) from None
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            raise UnsafeFileError(f"is a {type(link).__name__}; only hard links are read", where=where)
        return group[name]

    def children(self, group: h5py.Group) -> list[str]:
        try:
            return list(group.keys())
        except (OSError, RuntimeError, ValueError, TypeError) as e:
            raise FormatError(f"cannot list {group.name!r}: {e}", where=self.where) from None

    def array(self, ds: Any, where: str) -> np.ndarray:
        where = f"{self.where}: {where}"
        if not isinstance(ds, h5py.Dataset):
            raise FormatError(f"expected a dataset. Received: {type(ds).__name__}", where=where)
        try:
            dcpl = ds.id.get_create_plist()
            if dcpl.get_layout() == h5py.h5d.VIRTUAL:
                raise UnsafeFileError("is a virtual dataset (it would read other files)", where=where)
            if dcpl.get_external_count() > 0:
                raise UnsafeFileError("stores its data in external files", where=where)
            filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
            shape = ds.id.get_space().get_simple_extent_dims()
            dtype = ds.dtype
        except K5Error:
            raise
        except (OSError, RuntimeError, ValueError, TypeError) as e:
            raise FormatError(f"cannot read the dataset header: {e}", where=where) from None
        if [c for c in filters if c not in _FILTERS]:
            raise UnsafeFileError(f"uses HDF5 filters {filters}; only deflate and shuffle are read", where=where)
        if dtype.kind not in "fiub" or dtype.fields is not None or dtype.subdtype is not None:
            raise FormatError(f"holds {dtype}; expected a numeric array", where=where)
        if shape is None:
            raise FormatError("has a null dataspace", where=where)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > self.size * (MAX_DEFLATE_RATIO if filters else 1):
            raise HostileSizeError(f"shape {list(shape)} needs {nbytes} bytes, more than the {self.size}-byte "
                                   "file can hold", where=where)
        try:
            return np.asarray(ds[()])
        except (OSError, RuntimeError, ValueError, TypeError) as e:
            raise FormatError(f"cannot read the data: {e}", where=where) from None

    def attr_text(self, owner: Any, name: str) -> str | None:
        try:
            if name not in owner.attrs:
                return None
            cls = owner.attrs.get_id(name).get_type().get_class()
            if cls != h5py.h5t.STRING:
                raise FormatError(f"attribute {name!r} is not a string", where=self.where)
            value = owner.attrs[name]
        except K5Error:
            raise
        except (KeyError, OSError, RuntimeError, ValueError, TypeError) as e:
            raise FormatError(f"cannot read attribute {name!r}: {e}", where=self.where) from None
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _parse_json(text: str | bytes, where: str) -> Any:
    if len(text) > MAX_CONFIG_BYTES:
        raise HostileSizeError(f"the model config is {len(text)} bytes, over the {MAX_CONFIG_BYTES} limit",
                               where=where)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise FormatError(f"the model config is not valid JSON: {e}", where=where) from None


def _model_config(top: Any, where: str) -> ParsedModel:
    if not isinstance(top, dict) or not isinstance(top.get("config"), dict):
        raise FormatError("the model config has no class_name/config", where=where)
    try:
        return parse_model_config(str(top.get("class_name")), top["config"])
    except K5Error as e:
        raise e.located(where) from None


def _finish(parsed: ParsedModel, weights: dict[tuple[str, ...], list[np.ndarray]], where: str,
            producer: str) -> Model:
    def get(path: tuple[str, ...]) -> list[np.ndarray]:
        return weights.get(path, [])

    try:
        model = convert_parsed(parsed, get)
    except K5Error as e:
        raise e.located(where) from None
    model.metadata = Metadata(producer=producer)
    return model


# -- .keras -----------------------------------------------------------------------------------------------------
def _layer_vars(h5: _H5, group: h5py.Group, cls: str | None) -> list[np.ndarray]:
    """A layer group's variables in ``layer.weights`` order: its own ``vars/0..n``, then its sub-objects."""
    out: list[np.ndarray] = []
    vars_ = h5.child(group, "vars")
    if vars_ is not None:
        keys = h5.children(vars_)
        if sorted(keys, key=lambda k: int(k) if k.isdigit() else -1) != [str(i) for i in range(len(keys))]:
            raise FormatError(f"{vars_.name}: variables must be named 0..{len(keys) - 1}. Received: {keys}",
                              where=h5.where)
        out.extend(h5.array(h5.child(vars_, str(i)), f"{vars_.name}/{i}") for i in range(len(keys)))
    subs = [k for k in h5.children(group) if k != "vars"]
    order = _SUB_ORDER.get(cls or "", ())
    subs = [s for s in order if s in subs] + sorted(s for s in subs if s not in order)
    for s in subs:
        sub = h5.child(group, s)
        if isinstance(sub, h5py.Group):
            out.extend(_layer_vars(h5, sub, None))
    return out


def _keras_weights(h5: _H5, parsed: ParsedModel, root: h5py.Group | None = None, path: tuple[str, ...] = (),
                   depth: int = 0) -> dict[tuple[str, ...], list[np.ndarray]]:
    """Layer path -> variables; a nested model's group (one with ``layers``) is walked in turn."""
    if depth > 32:
        raise FormatError("models nested more than 32 deep", where=h5.where)
    layers = h5.child(h5.f if root is None else root, "layers")
    if layers is None:
        return {}
    out: dict[tuple[str, ...], list[np.ndarray]] = {}
    for key in h5.children(layers):
        group = h5.child(layers, key)
        if not isinstance(group, h5py.Group):
            continue
        vars_ = h5.child(group, "vars")
        name = h5.attr_text(vars_, "name") if vars_ is not None else None
        if name is None or name not in parsed.layer_classes:
            continue
        if h5.child(group, "layers") is not None:
            out.update(_keras_weights(h5, parsed, group, (*path, name), depth + 1))
            continue
        out[(*path, name)] = _layer_vars(h5, group, parsed.layer_classes[name])
    return out


def _zip_member(z: zipfile.ZipFile, name: str, limit: int, where: str) -> bytes:
    try:
        info = z.getinfo(name)
    except KeyError:
        raise FormatError(f"the archive has no {name!r}", where=where) from None
    if info.file_size > limit or (info.compress_size and info.file_size > info.compress_size * MAX_DEFLATE_RATIO):
        raise HostileSizeError(f"{name!r} declares {info.file_size} bytes (limit {limit})", where=where)
    with z.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise HostileSizeError(f"{name!r} holds more than {limit} bytes", where=where)
    return data


def read_keras(path: str | os.PathLike[str]) -> Model:
    """A k5 model from a Keras 3 ``.keras`` file, without Keras and without running code from the file."""
    where = os.fspath(path)
    try:
        z = zipfile.ZipFile(where)
    except (OSError, zipfile.BadZipFile) as e:
        raise FormatError(f"not a .keras archive: {e}", where=where) from None
    with z:
        top = _parse_json(_zip_member(z, "config.json", MAX_CONFIG_BYTES, where), where)
        parsed = _model_config(top, where)
        meta = _parse_json(_zip_member(z, "metadata.json", 1 << 20, where), where) \
            if "metadata.json" in z.namelist() else {}
        data = _zip_member(z, "model.weights.h5", MAX_WEIGHTS_BYTES, where)
    try:
        f = h5py.File(io.BytesIO(data), "r")
    except (OSError, ValueError) as e:
        raise FormatError(f"model.weights.h5 is not an HDF5 file: {e}", where=where) from None
    with f:
        weights = _keras_weights(_H5(f, len(data), f"{where}: model.weights.h5"), parsed)
    version = meta.get("keras_version", "?") if isinstance(meta, dict) else "?"
    return _finish(parsed, weights, where, f"k5 / .keras file (Keras {version})")


# -- legacy .h5 -------------------------------------------------------------------------------------------------
def read_h5(path: str | os.PathLike[str]) -> Model:
    """A k5 model from a legacy Keras ``.h5`` file (``model_config`` + ``model_weights``), read with h5py."""
    where = os.fspath(path)
    size = os.path.getsize(where)
    try:
        f = h5py.File(where, "r")
    except (OSError, ValueError) as e:
        raise FormatError(f"not an HDF5 file: {e}", where=where) from None
    with f:
        h5 = _H5(f, size, where)
        text = h5.attr_text(f, "model_config")
        if text is None:
            raise FormatError("has no 'model_config' attribute: not a whole Keras model (weights only?)",
                              where=where)
        parsed = _model_config(_parse_json(text, where), where)
        root = h5.child(f, "model_weights")
        if root is None:
            raise FormatError("has no 'model_weights' group", where=where)
        weights: dict[tuple[str, ...], list[np.ndarray]] = {}
        for layer in parsed.layer_classes:
            group = h5.child(root, layer)
            if group is None:
                continue
            names = group.attrs.get("weight_names") if "weight_names" in group.attrs else []
            try:
                listed = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in np.asarray(names).ravel()]
            except (TypeError, ValueError, UnicodeDecodeError) as e:
                raise FormatError(f"layer {layer!r}: unreadable weight_names: {e}", where=where) from None
            nested = parsed.layer_classes.get(layer) in ("Functional", "Sequential", "Model")
            for wname in listed:
                obj: Any = group
                for part in wname.split("/"):
                    obj = h5.child(obj, part) if isinstance(obj, h5py.Group) else None
                    if obj is None:
                        raise FormatError(f"layer {layer!r}: weight {wname!r} is listed but absent", where=where)
                parts = wname.split("/")
                if nested:  # a nested model's weights: "<inner>/<var>" or "<model>/<inner>/<var>", in order
                    inner = parts[1] if parts[0] == layer and len(parts) > 2 else parts[0]
                    key: tuple[str, ...] = (layer, inner)
                else:
                    key = (layer,)
                weights.setdefault(key, []).append(h5.array(obj, f"model_weights/{layer}/{wname}"))
        version = h5.attr_text(f, "keras_version") or "?"
    return _finish(parsed, weights, where, f"k5 / legacy Keras .h5 file (Keras {version})")



def run_keras_file(path: str, inputs: Any) -> dict[str, Any]:
    """Run a ``.keras``/``.h5`` file in Keras itself (``safe_mode=True``): the other side of ``k5 convert``'s
    verification. Imports Keras."""
    from k5.convert.keras.importer import import_keras

    keras = import_keras()
    model = keras.saving.load_model(os.fspath(path), compile=False, safe_mode=True)
    names = [t.name.split(":")[0] for t in model.inputs]
    xs = [np.asarray(inputs[n]) for n in names] if isinstance(inputs, dict) else list(inputs)
    ys = model(xs if len(xs) > 1 else xs[0], training=False)
    flat = list(ys) if isinstance(ys, (list, tuple)) else [ys]
    out_names = [getattr(t, "name", f"output_{i}") for i, t in enumerate(model.outputs)]
    return {n: np.asarray(keras.ops.convert_to_numpy(y)) for n, y in zip(out_names, flat, strict=True)}
