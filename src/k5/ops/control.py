"""Control flow: If, Loop, Scan. Bodies are nested graphs that may read the enclosing scopes.

The kernels receive the :class:`k5.runtime.RunContext` as ``ctx`` and run their bodies with ``ctx.run_graph``,
which binds the body's inputs positionally and lets the body read every value of the enclosing scopes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from k5.errors import OpError
from k5.format.dtypes import dtype_of
from k5.format.model import Graph, TensorInfo
from k5.ops.registry import op

__all__: list[str] = []


def _scalar_bool(value: Any, what: str) -> bool:
    arr = np.asarray(value)
    if arr.size != 1:
        raise OpError(f"{what} must hold exactly one element. Received: shape {list(arr.shape)}")
    return bool(arr.reshape(()))


def _empty_like_info(info: TensorInfo, lead: tuple[int, ...]) -> np.ndarray:
    """An empty scan output for a body that never ran, shaped from what the body declares."""
    dtype = dtype_of(info.dtype).numpy if info.dtype else np.dtype(np.float32)
    dims = info.shape or []
    shape = [d if isinstance(d, int) else 0 for d in dims]
    return np.zeros((*lead, *shape), dtype=dtype)


@op("If", inputs=["cond"], outputs=["outputs*"], out_dtype="?")
def if_(cond: np.ndarray, *, then_branch: Graph, else_branch: Graph, ctx: Any) -> tuple[Any, ...]:
    """Run ``then_branch`` when ``cond`` (one element) is true, else ``else_branch``; return that graph's outputs.

    The two branches must have the same number of outputs; their shapes may differ.
    """
    if len(then_branch.outputs) != len(else_branch.outputs):
        raise OpError(
            f"then_branch has {len(then_branch.outputs)} outputs but else_branch has {len(else_branch.outputs)}"
        )
    branch = then_branch if _scalar_bool(cond, "cond") else else_branch
    return tuple(ctx.run_graph(branch, []))


@op("Loop", inputs=["M?", "cond?", "v_initial*"], outputs=["v_final_and_scan_outputs*"], out_dtype="?")
def loop(M: np.ndarray | None, cond: np.ndarray | None, *v_initial: Any, body: Graph, ctx: Any) -> tuple[Any, ...]:
    """``for i in range(M) while cond`` over ``body``.

    The body takes ``(iteration_num: int64 scalar, cond: bool scalar, *loop_carried)`` and returns
    ``(cond, *loop_carried, *scan_outputs)``. Loop-carried values may change shape between iterations. Outputs are
    the final loop-carried values, then every scan output stacked along a new leading axis (one row per
    iteration). ``M`` omitted: no trip limit; ``cond`` omitted: true.
    """
    n_carried = len(v_initial)
    if len(body.inputs) != n_carried + 2:
        raise OpError(
            f"body takes {len(body.inputs)} inputs; expected 2 + {n_carried} (iteration_num, cond, loop-carried)"
        )
    n_scan = len(body.outputs) - 1 - n_carried
    if n_scan < 0:
        raise OpError(f"body returns {len(body.outputs)} outputs; expected at least 1 + {n_carried}")
    trips = None if M is None else int(np.asarray(M).reshape(()))
    keep_going = True if cond is None else _scalar_bool(cond, "cond")
    carried = list(v_initial)
    scans: list[list[Any]] = [[] for _ in range(n_scan)]
    i = 0
    while keep_going and (trips is None or i < trips):
        outs = ctx.run_graph(body, [np.array(i, dtype=np.int64), np.array(keep_going, dtype=np.bool_), *carried])
        keep_going = _scalar_bool(outs[0], "the body's cond output")
        carried = list(outs[1 : 1 + n_carried])
        for acc, value in zip(scans, outs[1 + n_carried :], strict=True):
            acc.append(value)
        i += 1
    stacked = []
    for k, acc in enumerate(scans):
        if acc:
            try:
                stacked.append(np.stack([np.asarray(v) for v in acc]))
            except ValueError as e:
                shapes = sorted({tuple(np.shape(v)) for v in acc})
                raise OpError(f"scan output {k} changes shape between iterations: {shapes}") from e
        else:
            stacked.append(_empty_like_info(body.outputs[1 + n_carried + k], (0,)))
    return (*carried, *stacked)


@op("Scan", inputs=["initial_state_and_scan_inputs*"], outputs=["final_state_and_scan_outputs*"], out_dtype="?")
def scan(
    *initial_state_and_scan_inputs: Any,
    body: Graph,
    num_scan_inputs: int,
    scan_input_axes: list[int] | None = None,
    scan_input_directions: list[int] | None = None,
    scan_output_axes: list[int] | None = None,
    scan_output_directions: list[int] | None = None,
    ctx: Any,
) -> tuple[Any, ...]:
    """Iterate ``body`` over slices of the scan inputs, threading N state values.

    Inputs: N initial states, then ``num_scan_inputs`` tensors sliced along ``scan_input_axes`` (default 0),
    reversed where ``scan_input_directions`` is 1. The body takes ``(*states, *slices)`` and returns
    ``(*states, *scan_output_slices)``. Outputs: the final states, then each scan output's slices stacked along
    ``scan_output_axes`` (default 0), in reverse order where ``scan_output_directions`` is 1.
    """
    values = list(initial_state_and_scan_inputs)
    m = num_scan_inputs
    n = len(values) - m
    if m < 1 or n < 0:
        raise OpError(f"num_scan_inputs={m} does not fit {len(values)} inputs")
    states, xs = values[:n], [np.asarray(v) for v in values[n:]]
    in_axes = list(scan_input_axes) if scan_input_axes is not None else [0] * m
    in_dirs = list(scan_input_directions) if scan_input_directions is not None else [0] * m
    if len(in_axes) != m or len(in_dirs) != m:
        raise OpError(f"scan_input_axes/directions need {m} values. Received: {in_axes}, {in_dirs}")
    for j, (x, a) in enumerate(zip(xs, in_axes, strict=True)):
        if not -x.ndim <= a < x.ndim:
            raise OpError(f"scan_input_axes[{j}]={a} is out of range for a scan input of rank {x.ndim}")
        xs[j] = np.moveaxis(x, a, 0)
    lengths = {x.shape[0] for x in xs}
    if len(lengths) != 1:
        raise OpError(f"scan inputs have different sequence lengths along their scan axes: {sorted(lengths)}")
    (steps,) = lengths
    xs = [x[::-1] if d else x for x, d in zip(xs, in_dirs, strict=True)]
    k = len(body.outputs) - n
    if k < 0 or len(body.inputs) != n + m:
        raise OpError(f"body takes {len(body.inputs)} inputs and returns {len(body.outputs)}; expected {n + m} in")
    out_axes = list(scan_output_axes) if scan_output_axes is not None else [0] * k
    out_dirs = list(scan_output_directions) if scan_output_directions is not None else [0] * k
    if len(out_axes) != k or len(out_dirs) != k:
        raise OpError(f"scan_output_axes/directions need {k} values. Received: {out_axes}, {out_dirs}")
    scans: list[list[np.ndarray]] = [[] for _ in range(k)]
    for t in range(steps):
        outs = ctx.run_graph(body, [*states, *(x[t] for x in xs)])
        states = list(outs[:n])
        for acc, value in zip(scans, outs[n:], strict=True):
            acc.append(np.asarray(value))
    results = []
    for j, acc in enumerate(scans):
        if not acc:
            results.append(np.moveaxis(_empty_like_info(body.outputs[n + j], (0,)), 0, out_axes[j]))
            continue
        if out_dirs[j]:
            acc = acc[::-1]
        r = acc[0].ndim
        if not -(r + 1) <= out_axes[j] <= r:
            raise OpError(f"scan_output_axes[{j}]={out_axes[j]} is out of range for slices of rank {r}")
        results.append(np.stack(acc, axis=out_axes[j]))
    return (*states, *results)
