"""Every op in the registry has a test case: an ONNX backend node case that uses it, or a hand-written case in
tests/ops (a test module that names the op as a string literal or calls its kernel function). An op added without
either fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from k5.ops.registry import all_schemas

pytest.importorskip("onnx", reason="ONNX's backend test cases are the main oracle for the op set")

from k5.testing import iter_cases

HERE = Path(__file__).parent


def _names_used_in_tests() -> set[str]:
    """String literals, attribute names and plain names used by the other test modules of tests/ops."""
    found: set[str] = set()
    for path in HERE.glob("*.py"):
        if path.name == Path(__file__).name:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
            elif isinstance(node, ast.Attribute):
                found.add(node.attr)
            elif isinstance(node, ast.Name):
                found.add(node.id)
    return found


def test_every_registered_op_has_a_test_case():
    onnx_ops: set[str] = set()
    for case in iter_cases():
        onnx_ops |= case.op_types
    hand = _names_used_in_tests()
    untested = sorted(
        s.qualname
        for s in all_schemas()
        if s.name not in onnx_ops and s.qualname not in hand and s.kernel.__name__ not in hand
    )
    assert not untested, f"ops with no ONNX backend case and no hand-written case in tests/ops: {untested}"
