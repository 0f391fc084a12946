"""The reference interpreter: runs a k5 graph with the NumPy kernels of the op registry.

Semantics of every op are defined by its kernel. The interpreter only moves values between nodes, checks the
graph's inputs, and turns any kernel failure into a :class:`RunError` that names the node, its op and the shapes
it received.
"""

from __future__ import annotations

import contextlib
import time
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from k5.errors import GraphError, InputMismatchError, K5Error, RunError
from k5.format.dtypes import dtype_of
from k5.format.model import Graph, Model, Node, TensorInfo, as_array
from k5.ops import OpSchema, get_schema

__all__ = ["KernelObserver", "RunContext", "Session", "TraceFn", "observe_kernels", "run"]

#: trace callback: (node, input values, output values, seconds) -> None
TraceFn = Callable[[Node, list[Any], list[Any], float], None]

#: kernel observer: (schema, node, input values, output values) -> None, after every kernel any session runs
KernelObserver = Callable[[OpSchema, Node, list[Any], list[Any]], None]
_observers: list[KernelObserver] = []


@contextlib.contextmanager
def observe_kernels(observer: KernelObserver) -> Iterator[KernelObserver]:
    """Call ``observer`` after every kernel that any session runs while the block lasts (nested graphs included).

    For test harnesses (which ops did the tests execute, with which dtypes); a run with no observer pays one
    list check per node.
    """
    _observers.append(observer)
    try:
        yield observer
    finally:
        _observers.remove(observer)


@dataclass
class _Step:
    node: Node
    schema: OpSchema
    attrs: dict[str, Any]
    sources: list[tuple[str, Any]]  # per kernel input: ("edge", name) | ("weight", array) | ("none", None)
    variadic: bool


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray) or np.isscalar(value):
        arr = np.asarray(value)
        return f"{arr.dtype}{list(arr.shape)}"
    if value is None:
        return "None"
    return type(value).__name__


class RunContext:
    """What a control-flow kernel (``ctx`` parameter) may do: run a nested graph."""

    def __init__(self, session: Session, env: MutableMapping[str, Any]) -> None:
        self._session = session
        self._env = env

    def run_graph(self, graph: Graph, inputs: Sequence[Any]) -> list[Any]:
        """Run a nested graph with positional ``inputs``; it may read any value of the enclosing scopes."""
        if len(inputs) > len(graph.inputs):
            raise GraphError(f"nested graph takes {len(graph.inputs)} inputs. Received: {len(inputs)}")
        # the body's own values go in a fresh front map; the enclosing scopes are read through, never copied
        # (a Loop runs its body once per iteration, and copying every outer value each time adds up)
        env: MutableMapping[str, Any] = ChainMap({}, self._env)
        for info, value in zip(graph.inputs, inputs, strict=False):
            env[info.name] = value
        env = self._session.execute(graph, env)
        return [env[o.name] for o in graph.outputs]


class Session:
    """A model prepared for repeated runs: schemas looked up, attributes resolved, weights read once."""

    def __init__(self, model: Model, *, trace: TraceFn | None = None) -> None:
        self.model = model
        self.trace = trace
        self._plans: dict[int, list[_Step]] = {}
        self._plan(model.graph)

    # -- preparation -------------------------------------------------------------------------------------------
    def _plan(self, graph: Graph) -> list[_Step]:
        plan = self._plans.get(id(graph))
        if plan is not None:
            return plan
        plan = []
        version_of = self.model.opset
        for node in graph.nodes:
            schema = get_schema(node.op, node.domain, version_of.get(node.domain), where=node.label)
            schema.check_node(node)
            attrs = schema.resolve_attrs(node)
            sources: list[tuple[str, Any]] = []
            variadic = bool(schema.inputs) and schema.inputs[-1].variadic
            n_fixed = len(schema.inputs) - (1 if variadic else 0)
            for i in range(max(n_fixed, len(node.inputs))):
                spec = schema.inputs[min(i, len(schema.inputs) - 1)]
                name = node.inputs[i] if i < len(node.inputs) else ""
                if name:
                    sources.append(("edge", name))
                elif spec.param and spec.name in node.weights and i < n_fixed:
                    try:
                        sources.append(("weight", as_array(node.weights[spec.name])))
                    except K5Error as e:
                        raise e.located(f"{node.label}: weight {spec.name!r}") from None
                else:
                    sources.append(("none", None))
            plan.append(_Step(node, schema, attrs, sources, variadic))
            for _, sub in node.subgraphs():
                self._plan(sub)
        self._plans[id(graph)] = plan
        return plan

    # -- execution ---------------------------------------------------------------------------------------------
    def execute(self, graph: Graph, env: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Run every node of ``graph`` over ``env`` (name -> value) and return the extended env."""
        for step in self._plan(graph):
            node = step.node
            args: list[Any] = []
            for kind, ref in step.sources:
                if kind == "edge":
                    try:
                        args.append(env[ref])
                    except KeyError:
                        msg = f"input {ref!r} is not computed by any earlier node"
                        raise GraphError(msg, where=node.label) from None
                else:
                    args.append(ref)
            kwargs = dict(step.attrs)
            if step.schema.wants_ctx:
                kwargs["ctx"] = RunContext(self, env)
            start = time.perf_counter()
            try:
                result = step.schema.kernel(*args, **kwargs)
            except K5Error as e:
                raise e if e.where else e.located(node.label) from None
            except Exception as e:
                shapes = ", ".join(_describe(a) for a in args)
                raise RunError(f"kernel failed on inputs ({shapes}): {type(e).__name__}: {e}", where=node.label) from e
            outputs = list(result) if isinstance(result, tuple) else [result]  # a tuple means several outputs
            outputs = [np.asarray(v) if isinstance(v, np.generic) else v for v in outputs]
            if len(outputs) < len(node.outputs) and any(node.outputs[len(outputs) :]):
                raise RunError(
                    f"kernel returned {len(outputs)} outputs; the node names {len(node.outputs)}", where=node.label
                )
            for name, value in zip(node.outputs, outputs, strict=False):
                if name:
                    env[name] = value
            if self.trace is not None:
                self.trace(node, args, outputs[: len(node.outputs)], time.perf_counter() - start)
            for observer in _observers:
                observer(step.schema, node, args, outputs)
        return env

    def run(
        self,
        inputs: Mapping[str, Any] | Sequence[Any] | np.ndarray,
        *,
        outputs: Sequence[str] | None = None,
        intermediate: bool = False,
    ) -> dict[str, Any]:
        graph = self.model.graph
        feeds = _bind_inputs(graph.inputs, inputs, self.model.path)
        env = self.execute(graph, dict(feeds))
        if intermediate:
            return dict(env)
        wanted = list(outputs) if outputs is not None else [o.name for o in graph.outputs]
        missing = [n for n in wanted if n not in env]
        if missing:
            raise GraphError(f"requested outputs {missing} are not computed by the graph")
        return {n: env[n] for n in wanted}


def _bind_inputs(
    declared: list[TensorInfo], given: Mapping[str, Any] | Sequence[Any] | np.ndarray, path: str | None
) -> dict[str, Any]:
    where = path or None
    if isinstance(given, np.ndarray) or np.isscalar(given):
        given = [given]
    if not isinstance(given, Mapping):
        given = list(given)
        if len(given) != len(declared):
            raise InputMismatchError(
                f"the graph takes {len(declared)} inputs {[t.name for t in declared]}. Received: {len(given)} values",
                where=where,
            )
        given = {t.name: v for t, v in zip(declared, given, strict=True)}
    names = [t.name for t in declared]
    unknown = [k for k in given if k not in names]
    missing = [k for k in names if k not in given]
    if unknown or missing:
        raise InputMismatchError(
            f"inputs do not match. Expected: {names}. Missing: {missing}. Unknown: {unknown}", where=where
        )
    symbols: dict[str, tuple[int, str]] = {}
    feeds: dict[str, Any] = {}
    for t in declared:
        value = given[t.name]
        if t.kind != "tensor":  # sequences (lists) and optionals (None allowed) pass as they are
            feeds[t.name] = value
            continue
        if not isinstance(value, np.ndarray):
            # an array-like keeps its own dtype (checked below); plain Python numbers and lists take the declared one
            has_dtype = hasattr(value, "dtype")
            value = np.asarray(value, dtype=None if has_dtype or not t.dtype else dtype_of(t.dtype).numpy)
        if t.dtype is not None and value.dtype != dtype_of(t.dtype).numpy:
            raise InputMismatchError(
                f"input {t.name!r} expects dtype {t.dtype}. Received: {value.dtype} (cast it first)", where=where
            )
        if t.shape is not None:
            if value.ndim != len(t.shape):
                raise InputMismatchError(
                    f"input {t.name!r} expects shape {t.shape} (rank {len(t.shape)}). Received: {list(value.shape)}",
                    where=where,
                )
            for axis, (dim, size) in enumerate(zip(t.shape, value.shape, strict=True)):
                if isinstance(dim, int) and dim != size:
                    raise InputMismatchError(
                        f"input {t.name!r} expects shape {t.shape}. Received: {list(value.shape)} (axis {axis})",
                        where=where,
                    )
                if isinstance(dim, str):
                    seen = symbols.setdefault(dim, (size, t.name))
                    if seen[0] != size:
                        raise InputMismatchError(
                            f"dimension {dim!r} is {seen[0]} in input {seen[1]!r} but {size} in input {t.name!r}",
                            where=where,
                        )
        feeds[t.name] = value
    return feeds


def run(
    model: Model | str,
    inputs: Mapping[str, Any] | Sequence[Any] | np.ndarray,
    *,
    outputs: Sequence[str] | None = None,
    intermediate: bool = False,
    trace: TraceFn | None = None,
) -> dict[str, Any]:
    """Run ``model`` (a :class:`Model` or a path) on ``inputs`` with the NumPy reference kernels.

    ``inputs``: a dict by input name, a list in input order, or one array for a single-input graph. Returns the
    graph outputs by name; with ``intermediate=True`` every value computed (graph inputs, every node output).
    ``trace(node, inputs, outputs, seconds)`` is called after each node.
    """
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        from k5.format.hdf5 import load

        with load(model) as loaded:
            return Session(loaded, trace=trace).run(inputs, outputs=outputs, intermediate=intermediate)
    return Session(model, trace=trace).run(inputs, outputs=outputs, intermediate=intermediate)
