"""What the interpreter executed while tests ran: which ops, and whether each op's declared output dtype rule
(``@op(..., out_dtype=...)``) gave the dtype its kernel returned. Fed by :func:`k5.runtime.observe_kernels`."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from k5.format.model import Node
from k5.ops import OpSchema, value_dtype


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
