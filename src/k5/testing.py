"""Conformance testing for k5 implementations: iterate cases, run them, compare outputs.

What an implementer of k5 (in Python or, through the files it writes, another language) reuses:

- :func:`iter_cases`: ONNX's own backend node test cases (``onnx.backend.test.case.node``), built in memory by
  the installed ``onnx``: a model, data sets of inputs and expected outputs, tolerances. Needs ``onnx``.
- :func:`run_case`: one case along any of these paths:

  - ``k5``: ONNX -> k5 (import) -> k5 reference runtime;
  - ``onnx``: ONNX -> k5 -> ONNX (export) -> onnxruntime;
  - ``ref``: ``onnx.reference.ReferenceEvaluator`` on the original case, for comparison;
  - ``import`` (on request only): the import alone.

  A case whose ops (or element types) are outside k5 is *unsupported*, not failed. On the ``onnx`` path a case that
  onnxruntime cannot run, or gets wrong, even in its original form is ``ort-unsupported``.
- :func:`compare`: the tolerance rule of the spec (docs/spec.md section 8, the same as ONNX's): same dtype and
  shape, NaNs at the same positions, ``|actual - expected| <= atol + rtol * |expected|`` element-wise.
- :func:`check_validation`: run a k5 model on its validation pair and compare with that rule, as a conforming
  runtime must (a k5 file written by the ONNX import of a case carries the case's data as its pair).

Which cases are known to fail is a test expectation and lives under ``tests/``; the scoreboard over every case is
``python tools/onnx_scoreboard.py``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from k5.errors import K5Error, UnsupportedOpsError, UnsupportedTypesError

__all__ = ["PATHS", "Case", "Result", "check_validation", "compare", "iter_cases", "run_case"]

PATHS = ("k5", "onnx", "ref")


@dataclass
class Case:
    name: str
    model: Any  # onnx.ModelProto
    data_sets: list[tuple[list[Any], list[Any]]]
    rtol: float
    atol: float

    @property
    def op_types(self) -> set[str]:
        return _op_types(self.model.graph)


def _op_types(graph: Any) -> set[str]:
    import onnx

    ops: set[str] = set()
    for n in graph.node:
        ops.add(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}")
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                ops |= _op_types(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    ops |= _op_types(g)
    return ops


@dataclass
class Result:
    case: str
    ops: tuple[str, ...] = ()
    status: dict[str, str] = field(default_factory=dict)  # path -> "pass" | "fail" | "unsupported" | "error"...
    detail: dict[str, str] = field(default_factory=dict)  # path -> why, when not "pass"
    missing: tuple[str, ...] = ()  # what k5 lacks (ops, element types) when unsupported


@functools.cache
def _collected() -> tuple[Any, ...]:
    """ONNX's node test cases, built once per process (building them takes several seconds)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases

        return tuple(collect_testcases())


def iter_cases(op: str | None = None, name: str | None = None) -> Iterator[Case]:
    for c in _collected():
        if name and c.name != name:
            continue
        case = Case(c.name, c.model, list(c.data_sets or []), float(c.rtol), float(c.atol))
        if op and op not in case.op_types:
            continue
        yield case


def _to_numpy(value: Any) -> Any:
    """Inputs may be TensorProtos (float8 types), sequences, optionals or arrays."""
    import onnx

    if isinstance(value, onnx.TensorProto):
        from k5.convert.onnx.importer import tensor_to_array

        return tensor_to_array(value)
    if isinstance(value, list):
        return [_to_numpy(v) for v in value]
    if isinstance(value, np.generic):  # some cases feed NumPy scalars, which onnxruntime refuses
        return np.asarray(value)
    return value


def _onnx_numpy(value: Any) -> Any:
    """Like :func:`_to_numpy` but with onnx's own conversion (it knows the types outside k5)."""
    import onnx
    from onnx import numpy_helper

    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list):
        return [_onnx_numpy(v) for v in value]
    return value


def compare(expected: Any, actual: Any, rtol: float, atol: float) -> str:
    """'' when ``actual`` matches ``expected`` (ONNX's own rule: assert_allclose, NaN equal), else why not."""
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"expected a sequence of {len(expected)}, got {type(actual).__name__}"
        for e, a in zip(expected, actual, strict=True):
            why = compare(e, a, rtol, atol)
            if why:
                return why
        return ""
    if expected is None:
        return "" if actual is None else f"expected None, got {type(actual).__name__}"
    if actual is None:
        return "got None"
    e = np.asarray(_to_numpy(expected))
    a = np.asarray(actual)
    if e.dtype != a.dtype and not (e.dtype.kind == "O" or a.dtype.kind == "O"):
        return f"dtype {a.dtype} != expected {e.dtype}"
    if e.shape != a.shape:
        return f"shape {list(a.shape)} != expected {list(e.shape)}"
    if e.dtype.kind in "fc" or e.dtype.kind == "V" or str(e.dtype).startswith(("bfloat", "float8")):
        ef = e.astype(np.float64) if e.dtype.kind != "c" else e
        af = a.astype(np.float64) if a.dtype.kind != "c" else a
        try:
            np.testing.assert_allclose(af, ef, rtol=rtol, atol=atol, equal_nan=True)
        except AssertionError as err:
            lines = [ln for ln in str(err).splitlines() if "Max" in ln or "Mismatched" in ln]
            return "values differ: " + "; ".join(ln.strip() for ln in lines)
        return ""
    if not np.array_equal(e, a):
        return f"values differ: expected {e.ravel()[:6]}..., got {a.ravel()[:6]}..."
    return ""


def check_validation(model: Any) -> str:
    """'' when the k5 reference runtime reproduces ``model``'s validation pair within the pair's tolerances (the
    rule of :func:`compare`), else why not. ``model``: a :class:`k5.Model`, e.g. from ``k5.load``."""
    from k5.runtime import run

    pair = model.validation
    if pair is None or not pair.inputs:
        return "the model has no validation pair"
    with np.errstate(all="ignore"):
        out = run(model, {k: np.asarray(v) for k, v in pair.inputs.items()})
    for name, expected in pair.outputs.items():
        why = compare(np.asarray(expected), out.get(name), pair.rtol, pair.atol)
        if why:
            return f"output {name!r}: {why}"
    return ""


def _check_outputs(case: Case, names: list[str], expected: list[Any], out: dict[str, Any]) -> str:
    for name, exp in zip(names, expected, strict=False):
        why = compare(exp, out.get(name), case.rtol, case.atol)
        if why:
            return f"output {name!r}: {why}"
    return ""


def _ort_session(proto: Any) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _ort_run(proto: Any, case: Case) -> list[dict[str, Any]]:
    """Run ``proto`` in onnxruntime on every data set of ``case``."""
    sess = _ort_session(proto)
    names = [i.name for i in proto.graph.input]
    outs = [o.name for o in proto.graph.output]
    results = []
    for inputs, _ in case.data_sets:
        feeds = dict(zip(names, [_to_numpy(v) for v in inputs], strict=False))
        values = [_as_declared(v, o.type) for v, o in zip(sess.run(outs, feeds), proto.graph.output, strict=True)]
        results.append(dict(zip(outs, values, strict=True)))
    return results


def _as_declared(value: Any, tp: Any) -> Any:
    """onnxruntime returns bfloat16/float8 tensors as raw unsigned ints: view them as the declared type."""
    from k5.convert.onnx.tables import ONNX_DTYPES
    from k5.format.dtypes import DTYPES

    if not isinstance(value, np.ndarray) or tp.WhichOneof("value") != "tensor_type":
        return value
    name = ONNX_DTYPES.get(tp.tensor_type.elem_type)
    want = DTYPES[name].numpy if name else None
    if want is not None and value.dtype != want and value.dtype.kind == "u" and value.dtype.itemsize == want.itemsize:
        return value.view(want)
    return value


def _run_k5(case: Case, model: Any) -> tuple[str, str]:
    from k5.runtime import run

    for inputs, expected in case.data_sets:
        feeds = [_to_numpy(v) for v in inputs]
        try:
            with np.errstate(all="ignore"):
                out = run(model, dict(zip(model.input_names(), feeds, strict=False)))
        except K5Error as e:
            return "fail", f"run: {e}"
        except Exception as e:  # noqa: BLE001 - a crash outside K5Error is a bug worth reporting as such
            return "error", f"run crashed: {type(e).__name__}: {e}"
        why = _check_outputs(case, model.output_names(), expected, out)
        if why:
            return "fail", why
    return "pass", ""


def _run_export(case: Case, model: Any) -> tuple[str, str]:
    from k5.convert.onnx.exporter import to_onnx

    try:
        proto = to_onnx(model)
    except K5Error as e:
        return "fail", f"export: {e}"
    except Exception as e:  # noqa: BLE001
        return "error", f"export crashed: {type(e).__name__}: {e}"
    try:
        with np.errstate(all="ignore"):
            results = _ort_run(proto, case)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        try:
            _ort_run(case.model, case)
        except Exception:  # noqa: BLE001
            return "ort-unsupported", f"onnxruntime cannot run the original case either: {str(e).splitlines()[0]}"
        return "fail", f"onnxruntime: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
    names = [o.name for o in proto.graph.output]
    for (_, expected), out in zip(case.data_sets, results, strict=True):
        why = _check_outputs(case, names, expected, out)
        if why:
            original = [o.name for o in case.model.graph.output]
            for (_, exp), got in zip(case.data_sets, _ort_run(case.model, case), strict=True):
                if _check_outputs(case, original, exp, got):
                    return "ort-unsupported", f"onnxruntime fails the original case too: {why}"
            return "fail", why
    return "pass", ""


def _run_reference(case: Case) -> tuple[str, str]:
    from onnx.reference import ReferenceEvaluator

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            ref = ReferenceEvaluator(case.model)
            names = [o.name for o in case.model.graph.output]
            for inputs, expected in case.data_sets:
                feeds = dict(zip(ref.input_names, [_onnx_numpy(v) for v in inputs], strict=False))
                out = dict(zip(names, ref.run(None, feeds), strict=True))
                why = _check_outputs(case, names, expected, out)
                if why:
                    return "fail", why
    except Exception as e:  # noqa: BLE001 - the reference evaluator raises anything
        return "error", f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    return "pass", ""


def run_case(case: Case, paths: Iterable[str] = PATHS) -> Result:
    from k5.convert.onnx.importer import from_onnx

    paths = tuple(paths)
    result = Result(case.name, tuple(sorted(case.op_types)))
    if "ref" in paths:
        result.status["ref"], result.detail["ref"] = _run_reference(case)
    k5_paths = [p for p in paths if p != "ref"]
    if not k5_paths:
        return result
    try:
        model = from_onnx(case.model)
    except (UnsupportedOpsError, UnsupportedTypesError) as e:
        result.missing = tuple(sorted(e.counts))
        for p in k5_paths:
            result.status[p], result.detail[p] = "unsupported", str(e)
        return result
    except K5Error as e:
        for p in k5_paths:
            result.status[p], result.detail[p] = "error", f"import: {e}"
        return result
    except Exception as e:  # noqa: BLE001
        for p in k5_paths:
            result.status[p], result.detail[p] = "error", f"import crashed: {type(e).__name__}: {e}"
        return result
    if "import" in paths:
        result.status["import"], result.detail["import"] = "pass", ""
    if "k5" in paths:
        result.status["k5"], result.detail["k5"] = _run_k5(case, model)
    if "onnx" in paths:
        result.status["onnx"], result.detail["onnx"] = _run_export(case, model)
    return result
