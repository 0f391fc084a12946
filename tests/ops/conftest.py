"""The op tests record which ops the interpreter executes (``k5.runtime.observe_kernels``); the coverage gate
(test_coverage.py) reads that record, so it is moved to the end of the session, and it only judges a session that
selected every op test (a partial run, e.g. ``-k`` or one module, makes it skip with the reason)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _observed import SESSION

from k5.runtime import observe_kernels

HERE = Path(__file__).resolve().parent
GATE = HERE / "test_coverage.py"


@pytest.fixture(autouse=True)
def _record_kernels():
    with observe_kernels(SESSION.count):
        yield


def _here(item: pytest.Item) -> bool:
    return Path(item.path).resolve().parent == HERE


@pytest.hookimpl(hookwrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]):
    collected = [item for item in items if _here(item)]
    yield  # -k, -m and --deselect remove items here
    selected = {item.nodeid for item in items if _here(item)}
    modules = {Path(item.path).resolve() for item in collected}
    on_disk = {p.resolve() for p in HERE.glob("test_*.py")} - {GATE}
    left_out = [
        item.nodeid for item in collected if item.nodeid not in selected and not item.get_closest_marker("slow")
    ]
    if on_disk - modules:
        missing = sorted(p.name for p in on_disk - modules)
        SESSION.incomplete = f"{len(missing)} op test modules were not collected (e.g. {missing[0]})"
    elif left_out:
        SESSION.incomplete = f"{len(left_out)} op tests were deselected (e.g. {left_out[0]})"
    else:
        SESSION.incomplete = ""
    gate = [item for item in items if Path(item.path).resolve() == GATE]
    items[:] = [item for item in items if Path(item.path).resolve() != GATE] + gate  # the gate runs last
