"""Imports inside src/k5 run one way: the module import graph (imports inside functions included) has no cycle.

The graph is built by ``grimp`` (the engine of import-linter) from the source of the ``k5`` package that this
Python imports. A cycle is printed module by module with the line of each import.
"""

from __future__ import annotations

import itertools

import pytest

import k5

grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the test extra)")

#: the layers that are acyclic now, checked strictly (together: no cycle among their modules)
STRICT = ("k5.errors", "k5.ops", "k5.runtime")


@pytest.fixture(scope="module")
def graph():
    import importlib.util

    spec = importlib.util.find_spec("k5")  # what grimp reads
    assert spec is not None and spec.origin == k5.__file__, "grimp would read another copy of k5 than the one tested"
    built = grimp.build_graph("k5", include_external_packages=False, cache_dir=None)
    assert built.find_modules_directly_imported_by("k5.runtime.interpreter"), "grimp read no imports"
    return built


def _modules_of(built, package: str) -> set[str]:
    return {package, *built.find_descendants(package)} if built.find_children(package) else {package}


def _cycles(built, modules: set[str]) -> list[list[str]]:
    """The non-trivial strongly connected components of the import graph restricted to ``modules`` (Tarjan)."""
    edges = {m: sorted(built.find_modules_directly_imported_by(m) & modules) for m in sorted(modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        # iterative Tarjan (the graph is small, but recursion depth should not depend on it)
        work = [(v, iter(edges[v]))]
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(edges[w])))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == node:
                            break
                    if len(component) > 1 or node in edges[node]:
                        found.append(sorted(component))

    for v in sorted(modules):
        if v not in index:
            visit(v)
    return found


def _describe(built, component: list[str]) -> str:
    """One cycle through ``component``, with the line of each import."""
    members = set(component)
    start = component[0]
    # shortest way back to the start from each of its in-component successors
    best: tuple[str, ...] | None = None
    for nxt in sorted(built.find_modules_directly_imported_by(start) & members):
        chain = built.find_shortest_chain(importer=nxt, imported=start) if nxt != start else (start,)
        if chain and set(chain) <= members and (best is None or len(chain) < len(best)):
            best = tuple(chain)
    path = [start, *(best or ())]
    lines = []
    for a, b in itertools.pairwise(path):
        details = built.get_import_details(importer=a, imported=b)
        where = ", ".join(f"l.{d['line_number']}" for d in details) or "?"
        lines.append(f"  {a} -> {b} ({where})")
    return f"cycle among {len(component)} modules {component}:\n" + "\n".join(lines)


def _check(built, modules: set[str]) -> None:
    cycles = _cycles(built, modules)
    assert not cycles, "import cycles:\n" + "\n".join(_describe(built, c) for c in cycles)


@pytest.mark.parametrize("package", STRICT)
def test_no_cycle_inside_package(graph, package):
    _check(graph, _modules_of(graph, package))


def test_no_cycle_among_strict_layers(graph):
    _check(graph, set().union(*(_modules_of(graph, p) for p in STRICT)))


def test_a_cycle_is_found_and_described(graph):
    """The check can fail: an import added from the registry back to the package closes a cycle."""
    graph.add_import(importer="k5.ops.registry", imported="k5.ops", line_number=1, line_contents="import k5.ops")
    try:
        with pytest.raises(AssertionError, match=r"k5\.ops\.registry -> k5\.ops \(l\.1\)"):
            _check(graph, _modules_of(graph, "k5.ops"))
    finally:
        graph.remove_import(importer="k5.ops.registry", imported="k5.ops")


def test_no_cycle_in_k5(graph):
    _check(graph, set(graph.modules))
