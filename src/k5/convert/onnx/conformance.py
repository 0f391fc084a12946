"""ONNX's own backend node test cases, run through k5.

``onnx.backend.test.case.node.collect_testcases()`` builds every node test case of the installed ``onnx`` in
memory (model, data sets of inputs and expected outputs, tolerances). Each case is imported into k5 and run with
the reference runtime; a case whose ops are outside the k5 op set is *unsupported*, not failed.

    python -m k5.convert.onnx.conformance                 # scoreboard over every case
    python -m k5.convert.onnx.conformance --op Conv -v    # one op, with failure details
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from k5.errors import K5Error, UnsupportedOpsError

__all__ = ["Case", "Result", "compare", "iter_cases", "main", "run_case"]


@dataclass
class Case:
    name: str
    model: Any  # onnx.ModelProto
    data_sets: list[tuple[list[Any], list[Any]]]
    rtol: float
    atol: float

    @property
    def op_types(self) -> set[str]:
        return {n.op_type for n in self.model.graph.node}


@dataclass
class Result:
    case: str
    status: str  # "pass" | "fail" | "unsupported" | "error"
    detail: str = ""
    ops: tuple[str, ...] = ()


def iter_cases(op: str | None = None, name: str | None = None) -> Iterator[Case]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases

        cases = collect_testcases()
    for c in cases:
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


def run_case(case: Case) -> Result:
    from k5.convert.onnx.importer import from_onnx
    from k5.runtime import run

    ops = tuple(sorted(case.op_types))
    try:
        model = from_onnx(case.model)
    except UnsupportedOpsError as e:
        return Result(case.name, "unsupported", str(e), ops)
    except K5Error as e:
        return Result(case.name, "error", f"import: {e}", ops)
    for inputs, expected in case.data_sets:
        feeds = [_to_numpy(v) for v in inputs]
        try:
            with np.errstate(all="ignore"):
                out = run(model, dict(zip(model.input_names(), feeds, strict=False)))
        except K5Error as e:
            return Result(case.name, "fail", f"run: {e}", ops)
        except Exception as e:  # noqa: BLE001 - a crash outside K5Error is a bug worth reporting as such
            return Result(case.name, "error", f"run crashed: {type(e).__name__}: {e}", ops)
        for name, exp in zip(model.output_names(), expected, strict=False):
            why = compare(exp, out[name], case.rtol, case.atol)
            if why:
                return Result(case.name, "fail", f"output {name!r}: {why}", ops)
    return Result(case.name, "pass", "", ops)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--op", help="only cases that use this ONNX op")
    p.add_argument("--case", help="only this case")
    p.add_argument("-v", "--verbose", action="store_true", help="print every non-passing case with its reason")
    args = p.parse_args(argv)
    results = [run_case(c) for c in iter_cases(args.op, args.case)]
    by_status = Counter(r.status for r in results)
    missing: Counter[str] = Counter()
    per_op: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        if r.status == "unsupported":
            missing.update(r.ops)
        for o in r.ops:
            per_op[o][r.status] += 1
        if args.verbose and r.status != "pass":
            print(f"{r.status:11s} {r.case}: {r.detail}")
    supported = len(results) - by_status["unsupported"]
    passed = by_status["pass"]
    print(
        f"cases: {len(results)}  supported: {supported}  passed: {passed}  failed: {by_status['fail']}  "
        f"errors: {by_status['error']}  ({100.0 * passed / max(supported, 1):.1f}% of supported)"
    )
    covered = sorted(o for o, c in per_op.items() if c["pass"])
    print(f"ONNX ops with a passing case: {len(covered)}")
    if missing:
        print("unsupported cases by op:", ", ".join(f"{o} ({n})" for o, n in missing.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
