"""Graph integrity checks: names, edges, order, weights and (optionally) each node against its op schema.

:func:`check_model` is what ``k5.save`` runs before writing, what ``k5.load`` runs after reading, and what
``k5 validate`` reports on. Every failure is a :class:`~k5.errors.K5Error` naming the node and op concerned.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from k5.errors import (
    CycleError,
    DanglingEdgeError,
    DuplicateNameError,
    GraphError,
    SchemaError,
    VersionError,
    WeightMismatchError,
)
from k5.format.dtypes import DTYPES, dtype_of, from_numpy
from k5.format.model import DEFAULT_DOMAIN, Graph, Model, Node, WeightSpec

__all__ = ["check_graph", "check_model", "check_name", "check_ops", "check_weights", "topological_order"]


def check_name(name: Any, what: str, *, empty_ok: bool = False) -> None:
    """Names are strings without NUL; only an omitted input/output may be empty."""
    if not isinstance(name, str):
        raise SchemaError(f"{what} must be a string. Received: {name!r}")
    if not name and not empty_ok:
        raise SchemaError(f"{what} must not be empty")
    if "\x00" in name:
        raise SchemaError(f"{what} contains a NUL character: {name!r}")
    if not name.isascii():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON): no file can store the name
            raise SchemaError(f"{what} is not valid Unicode (lone surrogate): {name!r}") from None


def _producers(graph: Graph, outer: frozenset[str]) -> dict[str, int]:
    """tensor name -> index of the producing node (-1 for graph inputs); duplicates are errors."""
    where = f"graph {graph.name!r}: " if graph.name else ""
    produced: dict[str, int] = {}
    for t in graph.inputs:
        check_name(t.name, f"{where}graph input name")
        if t.name in produced:
            raise DuplicateNameError(f"{where}graph input {t.name!r} is declared twice")
        produced[t.name] = -1
    for i, node in enumerate(graph.nodes):
        for j, name in enumerate(node.outputs):
            check_name(name, f"{node.label}: output {j}", empty_ok=True)
            if not name:
                continue
            if name in produced:
                first = "a graph input" if produced[name] < 0 else graph.nodes[produced[name]].label
                raise DuplicateNameError(f"output {name!r} is already produced by {first}", where=node.label)
            produced[name] = i
    return produced


def _reads(node: Node) -> list[str]:
    """Every name a node reads: its inputs and the outer-scope names its nested graphs read."""
    names = [n for n in node.inputs if n]
    for _, sub in node.subgraphs():
        names.extend(_free_names(sub))
    return names


def _free_names(graph: Graph) -> set[str]:
    """Names a graph reads from enclosing scopes."""
    local = {t.name for t in graph.inputs}
    free: set[str] = set()
    for node in graph.nodes:
        for name in _reads(node):
            if name not in local:
                free.add(name)
        local.update(n for n in node.outputs if n)
    free.update(t.name for t in graph.outputs if t.name not in local)
    return free


def topological_order(graph: Graph) -> list[Node]:
    """The graph's nodes in a valid topological order (stable: keeps the given order where possible).

    Raises :class:`CycleError` naming the nodes of a cycle when there is none.
    """
    produced = {name: i for i, node in enumerate(graph.nodes) for name in node.outputs if name}
    deps = [sorted({produced[n] for n in _reads(node) if n in produced and produced[n] != i})
            for i, node in enumerate(graph.nodes)]  # fmt: skip
    users: list[list[int]] = [[] for _ in graph.nodes]
    for i, ds in enumerate(deps):
        for d in ds:
            users[d].append(i)
    pending = [len(ds) for ds in deps]
    import heapq

    ready = [i for i, n in enumerate(pending) if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            pending[u] -= 1
            if pending[u] == 0:
                heapq.heappush(ready, u)
    self_loops = [i for i, node in enumerate(graph.nodes) if any(produced.get(n) == i for n in _reads(node))]
    if len(order) == len(graph.nodes) and not self_loops:
        return [graph.nodes[i] for i in order]
    if self_loops:
        cycle = [self_loops[0], self_loops[0]]
    else:
        cycle = _find_cycle({i for i, n in enumerate(pending) if n > 0}, deps)
    chain = " -> ".join(graph.nodes[i].label for i in cycle)
    raise CycleError(f"the graph has a cycle: {chain} (each reads an output of the next)")


def _find_cycle(remaining: set[int], deps: list[list[int]]) -> list[int]:
    """A cycle among ``remaining`` nodes (each has an unsatisfied dependency inside the set)."""
    start = min(remaining)
    seen: dict[int, int] = {}
    path: list[int] = []
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(d for d in deps[node] if d in remaining)
    return [*path[seen[node] :], node]


def check_graph(graph: Graph, *, outer: Iterable[str] = (), ids: dict[str, str] | None = None, depth: int = 0) -> None:
    """Structure of one graph and its nested graphs: unique ids and names, resolved edges, topological order."""
    outer_set = frozenset(outer)
    ids = {} if ids is None else ids
    for node in graph.nodes:
        check_name(node.id, "node id")
        check_name(node.op, f"node {node.id!r}: op")
        if node.id in ids:
            raise DuplicateNameError(f"node id {node.id!r} is used twice ({ids[node.id]} and {node.label})")
        ids[node.id] = node.label
    produced = _producers(graph, outer_set)
    for t in (*graph.outputs, *graph.value_info):
        check_name(t.name, "graph output/value_info name")
        if t.dtype is not None:
            dtype_of(t.dtype, where=f"value {t.name!r}")
    misordered: tuple[Node, str, Node] | None = None
    available = set(outer_set) | {t.name for t in graph.inputs}
    for node in graph.nodes:
        for j, name in enumerate(node.inputs):
            check_name(name, f"{node.label}: input {j}", empty_ok=True)
            if not name or name in available:
                continue
            if name in produced:
                if misordered is None:
                    misordered = (node, name, graph.nodes[produced[name]])
                continue
            raise DanglingEdgeError(
                f"input {j} {name!r} is not a graph input, an output of any node, or a name of an enclosing graph",
                where=node.label,
            )
        for attr, sub in node.subgraphs():
            late = sorted(n for n in _free_names(sub) - available if n in produced)
            if late and misordered is None:
                misordered = (node, late[0], graph.nodes[produced[late[0]]])
            try:
                check_graph(sub, outer=available | set(late), ids=ids, depth=depth + 1)
            except GraphError as e:
                raise e.located(f"{node.label}: attribute {attr!r}") from None
        available.update(n for n in node.outputs if n)
    if misordered is not None:
        topological_order(graph)  # raises CycleError naming the cycle if there is one
        reader, name, producer = misordered
        raise CycleError(
            f"nodes are not in topological order: {reader.label} reads {name!r}, which {producer.label} produces "
            "later (no cycle: k5.format.checks.topological_order gives a valid order)"
        )
    for t in graph.outputs:
        if t.name not in available:
            raise DanglingEdgeError(f"graph output {t.name!r} is not produced by any node or graph input")


def _declared_shape(value: Any, where: str) -> tuple[int, ...]:
    shape = value.shape if hasattr(value, "shape") else np.shape(value)
    try:
        out = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise WeightMismatchError(f"shape must be a tuple of ints. Received: {shape!r}", where=where) from None
    if any(d < 0 for d in out):
        raise WeightMismatchError(f"shape has a negative dimension: {list(out)}", where=where)
    return out


def check_weights(graph: Graph) -> None:
    """Every weight value is an array-like (or a :class:`WeightSpec`) of a k5 dtype with a well-formed shape."""
    for path, node in graph.walk():
        for param, value in node.weights.items():
            where = f"{node.label}: weight {param!r}"
            check_name(param, where)
            if isinstance(value, WeightSpec):
                dtype_of(value.dtype, where=where)
                _declared_shape(value, where)
                continue
            k5_dtype = getattr(value, "k5_dtype", None)
            if isinstance(k5_dtype, str):
                if k5_dtype not in DTYPES:
                    raise SchemaError(f"unknown dtype {k5_dtype!r}", where=where)
            else:
                if not hasattr(value, "dtype"):
                    value = np.asarray(value)
                    node.weights[param] = value
                from_numpy(value.dtype, where=where)
            _declared_shape(value, where)
        del path


def check_ops(model: Model, *, allow_unknown: bool = False) -> None:
    """Each node against its op schema (inputs, outputs, weights, attribute types).

    An op in the default domain that this release does not know is an :class:`UnknownOpError` unless
    ``allow_unknown``; ops in custom domains without an implementation are kept and not checked.
    """
    from k5.ops import OPSET_VERSION, find_schema, get_schema

    version = model.opset.get(DEFAULT_DOMAIN, 1)
    if version > OPSET_VERSION:
        raise VersionError(f"the model needs op set k5 v{version}; this release implements v{OPSET_VERSION}")
    for _, node in model.graph.walk():
        domain_version = model.opset.get(node.domain)
        schema = find_schema(node.op, node.domain, domain_version)
        if schema is None:
            if node.domain == DEFAULT_DOMAIN and not allow_unknown:
                get_schema(node.op, node.domain, domain_version, where=node.label)  # raises with a helpful message
            continue
        schema.check_node(node)


def check_model(model: Model, *, ops: bool = True, allow_unknown_ops: bool = False) -> None:
    """Everything about a model that can be checked without running it; raises the first problem found."""
    if not isinstance(model.graph, Graph):
        raise GraphError(f"model.graph must be a Graph. Received: {type(model.graph).__name__}")
    if not model.graph.outputs:
        raise GraphError(
            "the graph has no outputs, so it computes nothing: a model needs at least one. Expected: one or more "
            "entries in graph.outputs. Received: []"
        )
    for domain, version in model.opset.items():
        check_name(domain, "op set domain")
        if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
            raise SchemaError(f"op set version of domain {domain!r} must be an int >= 1. Received: {version!r}")
    check_graph(model.graph)
    check_weights(model.graph)
    if ops:
        check_ops(model, allow_unknown=allow_unknown_ops)
    _check_validation(model)


def _check_validation(model: Model) -> None:
    pair = model.validation
    if pair is None:
        return
    inputs = set(model.input_names())
    outputs = set(model.output_names())
    for name in pair.inputs:
        if name not in inputs:
            raise SchemaError(f"validation input {name!r} is not a graph input (graph inputs: {sorted(inputs)})")
    for name in pair.outputs:
        if name not in outputs:
            raise SchemaError(f"validation output {name!r} is not a graph output (graph outputs: {sorted(outputs)})")
