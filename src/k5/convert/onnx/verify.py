"""Numerical checks of a conversion: run the ONNX model in onnxruntime and the k5 model in the reference runtime
on the same inputs (the k5 model's validation pair when it has one, else random inputs of the declared shapes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from k5.errors import VerificationError
from k5.format.dtypes import dtype_of
from k5.format.model import Model, TensorInfo

__all__ = ["onnxruntime_run", "random_inputs", "verify_onnx"]


def random_inputs(infos: list[TensorInfo], *, seed: int = 0, symbol_size: int = 2) -> dict[str, np.ndarray]:
    """Inputs for declared tensor infos: normal floats, small non-negative ints, random bools; symbols -> 2."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for t in infos:
        if t.kind != "tensor" or t.dtype is None or t.shape is None:
            raise VerificationError(f"input {t.name!r} has no fixed dtype and rank: give the inputs explicitly")
        shape = tuple(d if isinstance(d, int) else symbol_size for d in t.shape)
        dt = dtype_of(t.dtype).numpy
        if t.dtype == "bool":
            out[t.name] = rng.random(shape) < 0.5
        elif np.dtype(dt).kind in "iu":
            out[t.name] = rng.integers(0, 3, shape).astype(dt)
        else:
            out[t.name] = rng.standard_normal(shape).astype(dt)
    return out


def onnxruntime_run(proto: Any, feeds: Mapping[str, Any]) -> dict[str, Any]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    data = proto if isinstance(proto, (str, bytes)) else proto.SerializeToString()
    try:
        sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, dict(feeds)), strict=True))
    except Exception as e:  # onnxruntime raises its own exception types
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise VerificationError(f"onnxruntime cannot run the model: {type(e).__name__}: {first}") from e


def max_abs_diff(a: Mapping[str, Any], b: Mapping[str, Any], *, rtol: float, atol: float) -> tuple[float, list[str]]:
    """(largest absolute difference over the outputs both have, names of outputs outside tolerance)."""
    worst, bad = 0.0, []
    for name in a:
        if name not in b:
            continue
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.shape != y.shape:
            bad.append(f"{name} (shape {list(x.shape)} vs {list(y.shape)})")
            continue
        if x.size == 0:
            continue
        xf, yf = x.astype(np.float64), y.astype(np.float64)
        diff = float(np.nanmax(np.abs(xf - yf))) if np.isfinite(xf).any() else 0.0
        worst = max(worst, diff)
        if not np.allclose(xf, yf, rtol=rtol, atol=atol, equal_nan=True):
            bad.append(f"{name} (max abs diff {diff:.3g})")
    return worst, bad


def verify_onnx(model: Model, proto: Any, *, inputs: Mapping[str, Any] | None = None, rtol: float | None = None,
                atol: float | None = None) -> float:  # fmt: skip
    """Run ``proto`` in onnxruntime and ``model`` in k5 on the same inputs; the max abs diff, or a
    :class:`VerificationError` naming the outputs outside tolerance. With a validation pair and no ``inputs``, its
    stored outputs are the reference for both."""
    from k5.runtime import run

    pair = model.validation
    if inputs is None and pair is not None and pair.inputs:
        feeds = {k: np.asarray(v) for k, v in pair.inputs.items()}
        reference = {k: np.asarray(v) for k, v in pair.outputs.items()} or run(model, feeds)
    else:
        feeds = dict(inputs) if inputs is not None else random_inputs(model.graph.inputs)
        reference = run(model, feeds)
    rtol = rtol if rtol is not None else (pair.rtol if pair is not None else 1e-4)
    atol = atol if atol is not None else (pair.atol if pair is not None else 1e-5)
    got = onnxruntime_run(proto, feeds)
    worst, bad = max_abs_diff(reference, got, rtol=rtol, atol=atol)
    if bad:
        raise VerificationError(f"onnxruntime disagrees with k5 (rtol={rtol}, atol={atol}) on: {', '.join(bad)}")
    return worst
