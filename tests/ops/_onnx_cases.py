"""ONNX's backend node test cases as pytest parameters, shared by every op-family test module.

The cases are ONNX's own (inputs and expected outputs made by ONNX), so they are an independent oracle. They are
collected once per process, with their inputs made READ-ONLY, so a kernel that writes into its inputs fails too.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest


def _known() -> dict[str, str]:
    """Cases known to fail on the k5 path (tests/_conformance_cases.py): case name -> reason."""
    from _conformance_cases import KNOWN_FAILURES

    return {name: why for name, (paths, why) in KNOWN_FAILURES.items() if "k5" in paths}


@functools.cache
def all_cases() -> tuple:
    pytest.importorskip("onnx", reason="ONNX's backend test cases are the oracle")
    from k5.testing import iter_cases

    cases = tuple(iter_cases())
    for case in cases:  # a kernel that writes into an input now raises
        for inputs, _ in case.data_sets:
            for value in inputs:
                if isinstance(value, np.ndarray):
                    value.flags.writeable = False
    return cases


def cases_for(family: frozenset[str], within: frozenset[str] | None = None) -> list:
    """pytest params (id = case name) of the cases using an op of ``family`` (and, if given, only ops ``within``)."""
    try:
        cases = all_cases()
    except pytest.skip.Exception:
        return []
    chosen = [c for c in cases if c.op_types & family and (within is None or c.op_types <= within)]
    return [pytest.param(c, id=c.name) for c in chosen]


def check_case(case) -> None:
    """Run ``case`` on the k5 path; skip when k5 lacks an op or type it needs, xfail when listed in KNOWN."""
    from k5.testing import run_case

    result = run_case(case, ("k5",))
    status, detail = result.status["k5"], result.detail.get("k5", "")
    if status == "pass":
        return
    if status == "unsupported":
        pytest.skip(f"outside k5: {detail}")
    known = _known()
    if case.name in known:
        pytest.xfail(known[case.name])
    pytest.fail(f"{status}: {detail}")
