"""Every op in the registry was run by the interpreter during the op tests of this session (an ONNX backend case
that uses it, or a hand-written test that runs it with ``run_op``). An op added without a test that runs it fails
here; a name in a string does not count.

tests/ops/conftest.py records the executions and moves this test to the end of the session. Run alone, or with
only some op tests, it skips (it cannot know what the others would have run): run ``pytest tests/ops``.
"""

from __future__ import annotations

import pytest
from _observed import SESSION

from k5.ops import all_schemas


def test_every_registered_op_ran_in_the_op_tests():
    if SESSION.incomplete:
        pytest.skip(f"coverage is judged only over the whole of tests/ops: {SESSION.incomplete}")
    never = sorted(s.qualname for s in all_schemas() if not SESSION.executed[s.qualname])
    assert not never, (
        f"ops that no test in tests/ops ran through the interpreter: {never}. Add a test that runs each (an ONNX "
        "backend case, or a hand-written one with _observed.run_op)"
    )
