"""The ONNX conformance scoreboard: ONNX's backend node test cases through k5 (:mod:`k5.testing`), counted.

    python tools/onnx_scoreboard.py                 # scoreboard over every case
    python tools/onnx_scoreboard.py --op Conv -v    # one op, with failure details
    python tools/onnx_scoreboard.py --per-op --json results.json

Paths: ``k5`` (ONNX -> k5 -> k5 runtime), ``onnx`` (ONNX -> k5 -> ONNX -> onnxruntime), ``ref`` (onnx's reference
evaluator on the original case). A case whose ops or element types are outside k5 is unsupported, not failed; on the
``onnx`` path, cases onnxruntime cannot run (or gets wrong) in their original form are left out of the rate. The
rates land in docs/ops.md through ``python tools/gen_ops_doc.py --scoreboard``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from k5.testing import PATHS, Case, Result, iter_cases, run_case

__all__ = ["Scoreboard", "format_scoreboard", "main", "run_all", "scoreboard"]


@dataclass
class Scoreboard:
    """Totals per path over a set of results."""

    total: int
    supported: int  # k5 imports the case (ops and element types inside k5)
    passed: dict[str, int]  # path -> passed among supported cases (ref: among the same supported cases)
    counted: dict[str, int]  # path -> cases in the rate's denominator
    ref_passed_all: int  # reference evaluator over every case
    ops_covered: list[str]  # ONNX ops with at least one supported case
    missing: dict[str, int]  # what k5 lacks -> number of cases it blocks
    per_op: dict[str, dict[str, int]]  # op -> {"cases", "supported", "<path>": passed}
    seconds: float = 0.0

    def rate(self, path: str) -> float:
        return 100.0 * self.passed.get(path, 0) / max(self.counted.get(path, 0), 1)


def scoreboard(results: list[Result], seconds: float = 0.0) -> Scoreboard:
    def is_supported(r: Result) -> bool:
        k5_paths = [s for p, s in r.status.items() if p != "ref"]
        return bool(k5_paths) and "unsupported" not in k5_paths

    supported = [r for r in results if is_supported(r)]
    passed: dict[str, int] = {}
    counted: dict[str, int] = {}
    for p in PATHS:
        pool = [r for r in supported if p in r.status and r.status[p] != "ort-unsupported"]
        counted[p] = len(pool)
        passed[p] = sum(r.status[p] == "pass" for r in pool)
    missing: Counter[str] = Counter()
    per_op: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        missing.update(r.missing)
        is_supported = r in supported
        for o in r.ops:
            per_op[o]["cases"] += 1
            per_op[o]["supported"] += is_supported
            for p, s in r.status.items():
                per_op[o][p] += s == "pass" and (is_supported or p == "ref")
    return Scoreboard(
        total=len(results),
        supported=len(supported),
        passed=passed,
        counted=counted,
        ref_passed_all=sum(r.status.get("ref") == "pass" for r in results),
        ops_covered=sorted(o for o, c in per_op.items() if c["supported"]),
        missing=dict(missing.most_common()),
        per_op={o: dict(c) for o, c in sorted(per_op.items())},
        seconds=seconds,
    )


def format_scoreboard(sb: Scoreboard, *, per_op: bool = False) -> str:
    lines = [
        f"cases: {sb.total}  supported by k5: {sb.supported}  ONNX ops covered: {len(sb.ops_covered)}",
        "| path | passed | of | rate |",
        "|---|---:|---:|---:|",
    ]
    labels = {
        "k5": "ONNX -> k5 -> k5 runtime",
        "onnx": "ONNX -> k5 -> ONNX -> onnxruntime",
        "ref": "onnx.reference.ReferenceEvaluator (same cases)",
    }
    for p in PATHS:
        if sb.counted.get(p):
            lines.append(f"| {labels[p]} | {sb.passed[p]} | {sb.counted[p]} | {sb.rate(p):.1f}% |")
    if sb.ref_passed_all:
        lines.append(
            f"| onnx.reference.ReferenceEvaluator (all cases) | {sb.ref_passed_all} | {sb.total} | "
            f"{100.0 * sb.ref_passed_all / max(sb.total, 1):.1f}% |"
        )
    if sb.missing:
        lines.append("")
        lines.append("Missing from k5 (cases blocked): " + ", ".join(f"{k} ({n})" for k, n in sb.missing.items()))
    if per_op:
        header = "| ONNX op | cases | supported | k5 pass | ONNX export pass | reference pass |"
        lines += ["", header, "|---|" + "---:|" * 5]
        for o, c in sb.per_op.items():
            lines.append(
                f"| {o} | {c.get('cases', 0)} | {c.get('supported', 0)} | {c.get('k5', 0)} | {c.get('onnx', 0)} | "
                f"{c.get('ref', 0)} |"
            )
    return "\n".join(lines)


def run_all(cases: Iterable[Case], paths: Iterable[str] = PATHS) -> tuple[list[Result], float]:
    start = time.perf_counter()
    paths = tuple(paths)
    results = [run_case(c, paths) for c in cases]
    return results, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--op", help="only cases that use this ONNX op")
    p.add_argument("--case", help="only this case")
    p.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated subset of {','.join(PATHS)}")
    p.add_argument("--per-op", action="store_true", help="print the per-op table")
    p.add_argument("--json", help="also write every result and the totals to this JSON file")
    p.add_argument("-v", "--verbose", action="store_true", help="print every non-passing case with its reason")
    args = p.parse_args(argv)
    paths = tuple(x for x in args.paths.split(",") if x)
    results, seconds = run_all(iter_cases(args.op, args.case), paths)
    if args.verbose:
        for r in results:
            for path, status in r.status.items():
                if status not in ("pass", "unsupported"):
                    print(f"{path:4s} {status:15s} {r.case}: {r.detail[path][:400]}")
    sb = scoreboard(results, seconds)
    print(format_scoreboard(sb, per_op=args.per_op))
    print(f"({seconds:.0f} s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"scoreboard": asdict(sb), "results": [asdict(r) for r in results]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
