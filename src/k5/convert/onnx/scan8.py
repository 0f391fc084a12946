"""Scan-8 -> a Loop over the batch whose body runs the current (Scan-9+) form on one batch element.

Scan-8 takes ``(sequence_lens?, *initial_states [B, ...], *scan_inputs [B, T, ...])`` with a batch axis 0 and the
scan axis 1, and ``directions`` per scan input. The rewrite::

    Loop(M = B) body(i, cond):
        states_i = Gather(state, i);  xs_i = Gather(x, i)              # drop the batch axis
        xs_i = Slice(xs_i, 0, sequence_lens[i])                        # only with sequence_lens
        finals, scans = Scan(states_i, xs_i, body, scan_input_directions=directions)
        scans = Concat(scans, zeros [T - sequence_lens[i], ...])       # padded back to T, as Scan-8 does
        return cond, finals, scans

The Loop stacks every body output along a new axis 0, which gives Scan-8's ``[B, ...]`` final states and
``[B, T, ...]`` scan outputs. A reverse scan input reads its valid steps backwards (from ``sequence_lens[i] - 1``),
and scan outputs stay in iteration order, as in onnxruntime's Scan-8.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from k5.format.model import Graph, Node, TensorInfo

__all__ = ["scan8_as_loop"]


def scan8_as_loop(node: Node, fresh: Callable[[str], str]) -> list[Node]:
    """The nodes replacing a Scan-8 ``node`` whose ``body`` attribute is already a k5 :class:`Graph`."""
    body: Graph = node.attrs["body"]
    m = int(node.attrs["num_scan_inputs"])
    lens, values = (node.inputs[0] if node.inputs else ""), list(node.inputs[1:])
    n = len(values) - m
    states, xs = values[:n], values[n:]
    p = node.id
    outer: list[Node] = []
    inner: list[Node] = []

    def add(into: list[Node], op: str, inputs: list[str], tag: str, **attrs: object) -> str:
        y = fresh(f"{p}_{tag}")
        into.append(Node(y, op, inputs, [y], dict(attrs)))
        return y

    def const(tag: str, value: np.ndarray) -> str:
        y = fresh(f"{p}_{tag}")
        outer.append(Node(y, "Constant", [], [y], weights={"value": value}))
        return y

    zero = const("zero", np.array(0, np.int64))
    trips = add(outer, "Gather", [add(outer, "Shape", [xs[0]], "shape"), zero], "batch", axis=0)
    i, cond_in = fresh(f"{p}_batch_index"), fresh(f"{p}_cond_in")
    sliced = [add(inner, "Gather", [v, i], "element", axis=0) for v in states]
    length = steps = ""
    if lens:
        axis0 = const("axis0", np.array([0], np.int64))
        length = add(inner, "Unsqueeze", [add(inner, "Gather", [lens, i], "len", axis=0), axis0], "len1")
        steps = add(outer, "Shape", [xs[0]], "steps", start=1, end=2)
    for x in xs:
        x_i = add(inner, "Gather", [x, i], "element", axis=0)
        sliced.append(add(inner, "Slice", [x_i, axis0, length, axis0], "valid") if lens else x_i)
    finals = [fresh(f"{p}_final") for _ in states]
    scans = [fresh(f"{p}_scan") for _ in range(len(body.outputs) - n)]
    attrs: dict[str, object] = {"body": body, "num_scan_inputs": m}
    if "directions" in node.attrs:
        attrs["scan_input_directions"] = list(node.attrs["directions"])
    inner.append(Node(fresh(f"{p}_scan9"), "Scan", sliced, [*finals, *scans], attrs))
    if lens:
        missing = add(inner, "Sub", [steps, length], "missing")
        for k, s in enumerate(scans):
            shape = add(inner, "Concat", [missing, add(inner, "Shape", [s], "rest", start=1)], "pad_shape", axis=0)
            zeros = add(inner, "CastLike", [add(inner, "ConstantOfShape", [shape], "zeros"), s], "zeros_like")
            scans[k] = add(inner, "Concat", [s, zeros], "padded", axis=0)
    cond_out = add(inner, "Identity", [cond_in], "cond_out")
    outs = [TensorInfo(cond_out, "bool", [])]
    for name, info in zip([*finals, *scans], body.outputs, strict=True):
        outs.append(TensorInfo(name, info.dtype, None, kind=info.kind))
    loop_body = Graph(inner, [TensorInfo(i, "int64", []), TensorInfo(cond_in, "bool", [])], outs, name=f"{p}_batch")
    return [*outer, Node(node.id, "Loop", [trips], list(node.outputs), {"body": loop_body})]
