"""ONNX's backend node test cases through k5: the oracle is each case's expected outputs (computed by ONNX).

Default tier: every case is imported (so supported ops cannot vanish silently) and a deterministic quarter of the
cases runs along both paths (ONNX -> k5 runtime; ONNX -> k5 -> ONNX -> onnxruntime). The full sweep, with the
onnx reference evaluator for comparison, is the slow tier.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from _conformance_cases import KNOWN_FAILURES
from k5.testing import Case, Result, iter_cases, run_case


def _scoreboard_tool():
    path = Path(__file__).resolve().parents[3] / "tools" / "onnx_scoreboard.py"
    spec = importlib.util.spec_from_file_location("onnx_scoreboard", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


scoreboard = _scoreboard_tool().scoreboard

#: the default tier runs every SUBSET_STEP-th case (sorted by name)
SUBSET_STEP = 4
#: fewer supported cases than this means an op (or an adapter) was lost
SUPPORTED_FLOOR = 1775
OPS_COVERED_FLOOR = 182
MIN_RATE = 95.0

@pytest.fixture(scope="module")
def all_cases() -> list[Case]:
    return sorted(iter_cases(), key=lambda c: c.name)


def _unexpected(results: list[Result], path: str) -> list[str]:
    bad = []
    for r in results:
        status = r.status.get(path)
        if status in ("pass", "unsupported", "ort-unsupported", None):
            continue
        known = KNOWN_FAILURES.get(r.case)
        if known is not None and path in known[0]:
            continue
        bad.append(f"{r.case} [{status}]: {r.detail.get(path, '')[:300]}")
    return bad


def test_known_failures_name_real_cases(all_cases: list[Case]) -> None:
    names = {c.name for c in all_cases}
    assert not set(KNOWN_FAILURES) - names


def test_every_case_imports_or_is_reported_unsupported(all_cases: list[Case]) -> None:
    results = [run_case(c, paths=("import",)) for c in all_cases]
    errors = [f"{r.case}: {r.detail['import']}" for r in results if r.status["import"] == "error"]
    assert not errors, "\n".join(errors)
    sb = scoreboard(results)
    assert sb.supported >= SUPPORTED_FLOOR, f"supported cases fell to {sb.supported} (floor {SUPPORTED_FLOOR})"
    assert len(sb.ops_covered) >= OPS_COVERED_FLOOR, f"ONNX ops covered fell to {len(sb.ops_covered)}"


@pytest.mark.parametrize("path", ["k5", "onnx"])
def test_subset(all_cases: list[Case], path: str) -> None:
    subset = all_cases[::SUBSET_STEP]
    results = [run_case(c, paths=(path,)) for c in subset]
    bad = _unexpected(results, path)
    assert not bad, f"{len(bad)} unexpected failures on path {path}:\n" + "\n".join(bad)
    sb = scoreboard(results)
    assert sb.rate(path) >= MIN_RATE


@pytest.mark.slow
def test_full_sweep(all_cases: list[Case]) -> None:
    results = [run_case(c) for c in all_cases]
    sb = scoreboard(results)
    problems = _unexpected(results, "k5") + _unexpected(results, "onnx")
    assert not problems, "\n".join(problems)
    assert sb.rate("k5") >= MIN_RATE and sb.rate("onnx") >= MIN_RATE
    # k5's runtime ends at least level with onnx's reference evaluator on the cases k5 supports
    assert sb.passed["k5"] >= sb.passed["ref"] - 2, (sb.passed, sb.counted)
