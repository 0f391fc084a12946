"""Each op's declared output dtype rule (``@op(..., out_dtype=...)``) gives the dtype its kernel returns.

The oracle is the kernel itself run on ONNX's backend test cases (whose expected outputs ONNX made, and which the
family tests check): the rule is a static claim about the kernel, which the ONNX exporter and ``k5 inspect`` rely
on without running anything.
"""

from __future__ import annotations

import numpy as np
import pytest
from _observed import Recorder
from _onnx_cases import all_cases

from k5.format.model import Graph, Model, Node, TensorInfo
from k5.ops import op, registry
from k5.runtime import observe_kernels, run


def test_declared_output_dtypes_match_the_kernels_on_onnx_cases():
    from k5.testing import run_case

    recorder = Recorder()
    with observe_kernels(recorder):
        for case in all_cases():
            run_case(case, ("k5",))
    assert len(recorder.checked) > 150, f"only {len(recorder.checked)} ops ran: the cases did not reach the runtime"
    assert not recorder.mismatches, "declared output dtypes differ from the kernels':\n" + recorder.report()


@pytest.fixture
def scratch_domain():
    domain = "test.dtype_rules"
    yield domain
    for key in [k for k in registry._REGISTRY if k[0] == domain]:
        del registry._REGISTRY[key]


def test_a_wrong_rule_is_caught(scratch_domain):
    @op("Halve", inputs=["X"], outputs=["Y"], domain=scratch_domain)  # declares "same", returns float64
    def halve(x):
        return x.astype(np.float64) / 2

    graph = Graph(
        nodes=[Node("h", "Halve", ["x"], ["y"], domain=scratch_domain)],
        inputs=[TensorInfo("x", "float32", [2])],
        outputs=[TensorInfo("y", None, None)],
    )
    recorder = Recorder()
    with observe_kernels(recorder):
        run(Model(graph, opset={"k5": 1, scratch_domain: 1}), np.ones(2, np.float32))
    assert recorder.executed[f"{scratch_domain}.Halve"] == 1
    assert "rule 'same' gives float32, the kernel returned float64" in recorder.report()


def test_rules_are_checked_when_declared(scratch_domain):
    with pytest.raises(TypeError, match="names input 'W'"):
        op("A", inputs=["X"], outputs=["Y"], domain=scratch_domain, out_dtype="same:W")(lambda x: x)
    with pytest.raises(TypeError, match="needs a string attribute 'to'"):
        op("B", inputs=["X"], outputs=["Y"], domain=scratch_domain, out_dtype="attr:to")(lambda x: x)
    with pytest.raises(TypeError, match="'float33' is not a k5 dtype"):
        op("C", inputs=["X"], outputs=["Y"], domain=scratch_domain, out_dtype="float33")(lambda x: x)
    with pytest.raises(TypeError, match="2 rules for 3 outputs"):
        op("D", inputs=["X"], outputs=["Y", "Z", "W"], domain=scratch_domain, out_dtype=("same", "bool"))(lambda x: x)


def _graph_without_value_info() -> Model:
    """x float16 -> Shape (int64) -> Cast to float32 -> Equal with itself (bool); Constant int8; a weight-owning
    ConstantOfShape with no value (float32)."""
    nodes = [
        Node("shape", "Shape", ["x"], ["s"]),
        Node("cast", "Cast", ["s"], ["f"], attrs={"to": "float32"}),
        Node("eq", "Equal", ["f", "f"], ["b"]),
        Node("relu", "Relu", ["x"], ["r"]),
        Node("k", "Constant", [], ["c"], weights={"value": np.array([1, 2], np.int8)}),
        Node("zeros", "ConstantOfShape", ["s"], ["z"]),
        Node("arg", "ArgMax", ["r"], ["i"], attrs={"axis": 1}),
    ]
    outputs = [TensorInfo(n, None, None) for n in ("b", "r", "c", "z", "i")]
    return Model(Graph(nodes=nodes, inputs=[TensorInfo("x", "float16", [2, 3])], outputs=outputs))


def test_infer_dtypes_agrees_with_a_run():
    from k5.ops import infer_dtypes, value_dtype

    model = _graph_without_value_info()
    inferred = infer_dtypes(model.graph)
    env = run(model, np.ones((2, 3), np.float16), intermediate=True)
    assert inferred == {name: value_dtype(value) for name, value in env.items()}
    assert inferred["b"] == "bool" and inferred["i"] == "int64" and inferred["z"] == "float32"


def test_inspect_shows_the_inferred_dtypes():
    from k5.cli.inspect import summarize

    rows = summarize(_graph_without_value_info(), "in-memory.k5")["nodes"]
    dtypes = {o["name"]: o["dtype"] for r in rows for o in r["outputs"]}
    assert dtypes == {
        "s": "int64",
        "f": "float32",
        "b": "bool",
        "r": "float16",
        "c": "int8",
        "z": "float32",
        "i": "int64",
    }
