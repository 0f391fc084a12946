"""ONNX's backend node test cases as pytest parameters, shared by every op-family test module.

The cases are ONNX's own (inputs and expected outputs made by ONNX), so they are an independent oracle. They are
collected once per process, with their inputs made READ-ONLY, so a kernel that writes into its inputs fails too.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from k5.ops import all_schemas


def family(*names: str) -> frozenset[str]:
    """The ops that the registry files under the op families ``names`` (``schema.family``: their module)."""
    ops = frozenset(s.name for s in all_schemas() if s.family in names)
    assert ops, f"no op is in families {names}"
    return ops


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


def single_node_cases(op_type: str) -> list:
    """pytest params of ONNX's cases made of one ``op_type`` node (see :func:`check_as_written`)."""
    try:
        cases = all_cases()
    except pytest.skip.Exception:
        return []
    chosen = [c for c in cases if len(c.model.graph.node) == 1 and c.model.graph.node[0].op_type == op_type]
    return [pytest.param(c, id=c.name) for c in chosen]


def check_as_written(case) -> None:
    """Run a one-node case's op as the k5 op of the same name, bypassing the importer (which renames deprecated
    ops such as Scatter and Upsample to their successors), and compare with ONNX's expected outputs."""
    from _observed import run_op
    from onnx import helper

    node = case.model.graph.node[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
    for inputs, expected in case.data_sets:
        got = run_op(node.op_type, *inputs, n_outputs=len(expected), **attrs)
        for g, e in zip([got] if len(expected) == 1 else got, expected, strict=True):
            assert g.dtype == e.dtype and g.shape == e.shape
            np.testing.assert_allclose(g, e, rtol=case.rtol, atol=case.atol)
