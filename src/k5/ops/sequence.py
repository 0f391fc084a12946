"""Sequence and optional ops: values that are lists of tensors, or may be absent.

A sequence is a Python ``list`` of arrays; kernels return new lists and never mutate the one they receive. An
absent optional value is ``None``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from k5.errors import OpError, RunError
from k5.format.dtypes import dtype_of
from k5.format.model import Graph
from k5.ops.registry import op

__all__: list[str] = []


def _seq(value: Any, what: str = "input_sequence") -> list[Any]:
    if not isinstance(value, list):
        raise OpError(f"{what} expects a sequence (list of tensors). Received: {type(value).__name__}")
    return value


def _position(position: np.ndarray, n: int, *, allow_end: bool) -> int:
    p = int(np.asarray(position).reshape(()))
    hi = n if allow_end else n - 1
    if not -n <= p <= hi:
        raise OpError(f"position {p} is out of range [{-n}, {hi}] for a sequence of length {n}")
    return p + n if p < 0 else p


@op("SequenceEmpty", inputs=[], outputs=["output"], out_dtype="attr:dtype")
def sequence_empty(*, dtype: str = "float32") -> list[np.ndarray]:
    """An empty sequence of tensors of ``dtype`` (a k5 dtype name)."""
    dtype_of(dtype, where="attribute 'dtype'")
    return []


@op("SequenceConstruct", inputs=["inputs*"], outputs=["output_sequence"])
def sequence_construct(*inputs: np.ndarray) -> list[np.ndarray]:
    """A sequence of the given tensors, in order."""
    return list(inputs)


@op(
    "SequenceInsert",
    inputs=["input_sequence", "tensor", "position?"],
    outputs=["output_sequence"],
    out_dtype="same|same:tensor",
)
def sequence_insert(input_sequence: list[np.ndarray], tensor: np.ndarray, position: np.ndarray | None) -> list:
    """A copy of the sequence with ``tensor`` inserted before ``position`` (default: appended)."""
    seq = list(_seq(input_sequence))
    if position is None:
        seq.append(tensor)
    else:
        seq.insert(_position(position, len(seq), allow_end=True), tensor)
    return seq


@op("SequenceAt", inputs=["input_sequence", "position"], outputs=["tensor"])
def sequence_at(input_sequence: list[np.ndarray], position: np.ndarray) -> np.ndarray:
    """The tensor at ``position`` (negative counts from the back)."""
    seq = _seq(input_sequence)
    return seq[_position(position, len(seq), allow_end=False)]


@op("SequenceErase", inputs=["input_sequence", "position?"], outputs=["output_sequence"])
def sequence_erase(input_sequence: list[np.ndarray], position: np.ndarray | None) -> list[np.ndarray]:
    """A copy of the sequence without the tensor at ``position`` (default: the last)."""
    seq = list(_seq(input_sequence))
    if not seq:
        raise OpError("cannot erase from an empty sequence")
    del seq[-1 if position is None else _position(position, len(seq), allow_end=False)]
    return seq


@op("SequenceLength", inputs=["input_sequence"], outputs=["length"], out_dtype="int64")
def sequence_length(input_sequence: list[np.ndarray]) -> np.ndarray:
    """The number of tensors, as an int64 scalar."""
    return np.array(len(_seq(input_sequence)), dtype=np.int64)


@op("ConcatFromSequence", inputs=["input_sequence"], outputs=["concat_result"])
def concat_from_sequence(input_sequence: list[np.ndarray], *, axis: int, new_axis: int = 0) -> np.ndarray:
    """Concatenate the tensors along ``axis``, or stack them along a new ``axis`` when ``new_axis=1``."""
    seq = _seq(input_sequence)
    if not seq:
        raise OpError("ConcatFromSequence needs at least one tensor")
    r = seq[0].ndim
    lo, hi = (-r - 1, r) if new_axis else (-r, r - 1)
    if not lo <= axis <= hi:
        raise OpError(f"axis={axis} is out of range [{lo}, {hi}] for tensors of rank {r} (new_axis={new_axis})")
    return np.stack(seq, axis=axis) if new_axis else np.concatenate(seq, axis=axis)


@op("SplitToSequence", inputs=["input", "split?"], outputs=["output_sequence"])
def split_to_sequence(x: np.ndarray, split: np.ndarray | None, *, axis: int = 0, keepdims: int = 1) -> list:
    """Split along ``axis``: into pieces of 1 (squeezed unless ``keepdims``), equal pieces of the scalar
    ``split`` (the last may be smaller), or pieces of the lengths listed in the 1-D ``split``."""
    if not -x.ndim <= axis < x.ndim:
        raise OpError(f"axis={axis} is out of range for an input of rank {x.ndim}")
    axis = axis % x.ndim
    n = x.shape[axis]
    if split is None:
        pieces = np.split(x, n, axis=axis) if n else []
        return [p if keepdims else np.squeeze(p, axis=axis) for p in pieces]
    split = np.asarray(split).astype(np.int64)
    if split.ndim == 0:
        step = int(split)
        if step <= 0:
            raise OpError(f"split must be positive. Received: {step}")
        bounds = list(range(step, n, step))
    else:
        if int(split.sum()) != n or (split < 0).any():
            raise OpError(f"split lengths {split.tolist()} must be >= 0 and sum to the axis length {n}")
        bounds = np.cumsum(split)[:-1].tolist()
    return [np.ascontiguousarray(p) for p in np.split(x, bounds, axis=axis)]


@op("SequenceMap", inputs=["input_sequence", "additional_inputs*"], outputs=["out_sequence*"], out_dtype="?")
def sequence_map(input_sequence: list[np.ndarray], *additional_inputs: Any, body: Graph, ctx: Any) -> Any:
    """Run ``body`` once per element of ``input_sequence``; an additional input that is a sequence contributes its
    element at the same position, a tensor is passed whole. Each body output becomes one output sequence."""
    seq = _seq(input_sequence)
    for k, extra in enumerate(additional_inputs):
        if isinstance(extra, list) and len(extra) != len(seq):
            raise OpError(f"additional input {k} is a sequence of {len(extra)}; input_sequence has {len(seq)}")
    outs: list[list[Any]] = [[] for _ in body.outputs]
    for i, item in enumerate(seq):
        args = [item, *(a[i] if isinstance(a, list) else a for a in additional_inputs)]
        for acc, value in zip(outs, ctx.run_graph(body, args), strict=True):
            acc.append(value)
    return tuple(outs)


@op("Optional", inputs=["input?"], outputs=["output"])
def optional(x: Any, *, type: str | None = None) -> Any:
    """An optional holding ``input``, or an empty optional (``None``) when it is omitted.

    ``type`` is the empty optional's type as text: ``tensor(<k5 dtype>)`` or ``tensor(<dtype>, [d0, d1, ...])``
    (dims are ints, symbols, or ``?``), optionally wrapped in ``seq(...)`` or ``optional(...)``; the ONNX converter
    maps it to and from ONNX's TypeProto.
    """
    return x


@op("OptionalHasElement", inputs=["input?"], outputs=["output"], out_dtype="bool")
def optional_has_element(x: Any) -> np.ndarray:
    """True (a bool scalar) when the optional holds a value; False when it is empty or omitted."""
    return np.array(x is not None, dtype=np.bool_)


@op("OptionalGetElement", inputs=["input"], outputs=["output"])
def optional_get_element(x: Any) -> Any:
    """The value held by an optional (a plain tensor or sequence passes through); an empty optional is an error."""
    if x is None:
        raise RunError("OptionalGetElement on an empty optional")
    return x
