"""What the interpreter executed while tests ran: which ops, and whether each op's declared output dtype rule
(``@op(..., out_dtype=...)``) gave the dtype its kernel returned. Fed by :func:`k5.runtime.observe_kernels`."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from k5.format.model import Graph, Model, Node, TensorInfo
from k5.ops import OpSchema, value_dtype
from k5.runtime import run


class Recorder:
    """A kernel observer: counts executions per op and keeps every disagreement between rule and kernel."""

    def __init__(self) -> None:
        self.executed: Counter[str] = Counter()  # op qualname -> kernel runs
        self.checked: Counter[str] = Counter()  # op qualname -> outputs whose dtype was checked
        self.mismatches: dict[str, set[str]] = defaultdict(set)  # op qualname -> descriptions

    def __call__(self, schema: OpSchema, node: Node, args: list[Any], outputs: list[Any]) -> None:
        self.executed[schema.qualname] += 1
        in_dtypes = [value_dtype(a) for a in args]
        declared = schema.output_dtypes(in_dtypes, node.attrs, len(outputs))
        rules = schema.out_dtype
        for i, (want, value) in enumerate(zip(declared, outputs, strict=True)):
            got = value_dtype(value)
            if got is None or rules[min(i, len(rules) - 1)] == "?":
                continue  # an absent optional output or an empty sequence; or a rule that declares "unknown"
            self.checked[schema.qualname] += 1
            if want != got:
                name = schema.outputs[min(i, len(schema.outputs) - 1)].name
                self.mismatches[schema.qualname].add(
                    f"output {i} ({name}): rule {rules[min(i, len(rules) - 1)]!r} gives {want}, the kernel returned "
                    f"{got} (inputs {in_dtypes}, attributes {node.attrs})"
                )

    def report(self) -> str:
        return "\n".join(f"{op}: {'; '.join(sorted(found)[:3])}" for op, found in sorted(self.mismatches.items()))


class Executed:
    """Which ops the interpreter ran during this pytest session's op tests (the coverage gate reads it)."""

    def __init__(self) -> None:
        self.executed: Counter[str] = Counter()
        self.incomplete = "the op tests were not collected"  # why the session cannot judge coverage ("": it can)

    def count(self, schema: OpSchema, node: Node, args: list[Any], outputs: list[Any]) -> None:
        self.executed[schema.qualname] += 1


SESSION = Executed()


def run_op(op_name: str, *inputs: Any, n_outputs: int = 1, **attrs: Any) -> Any:
    """Run one node of ``op_name`` through the interpreter (as a model runs it: schema checks, attribute defaults),
    on ``inputs`` (None: an omitted optional input; a list: a sequence). One output, or a tuple of ``n_outputs``."""
    names: list[str] = []
    infos: list[TensorInfo] = []
    feeds: dict[str, Any] = {}
    for i, value in enumerate(inputs):
        if value is None:
            names.append("")
            continue
        names.append(f"in{i}")
        infos.append(TensorInfo(f"in{i}", kind="sequence" if isinstance(value, list) else "tensor"))
        feeds[f"in{i}"] = value
    outs = [f"out{i}" for i in range(n_outputs)]
    graph = Graph(
        nodes=[Node("n", op_name, names, outs, attrs=attrs)], inputs=infos, outputs=[TensorInfo(o) for o in outs]
    )
    got = run(Model(graph), feeds)
    return got[outs[0]] if n_outputs == 1 else tuple(got[o] for o in outs)
