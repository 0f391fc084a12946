"""Graph integrity: each structural problem is found, named, and the right K5Error subclass."""

from __future__ import annotations

import numpy as np
import pytest

from k5.errors import (
    AttrError,
    CycleError,
    DanglingEdgeError,
    DuplicateNameError,
    OpError,
    SchemaError,
    UnknownOpError,
    VersionError,
)
from k5.format.checks import check_model, topological_order
from k5.format.model import Graph, Model, Node, TensorInfo

X = [TensorInfo("x", "float32", [2])]


def model(nodes, outputs=("y",), inputs=X) -> Model:
    return Model(Graph(list(nodes), list(inputs), [TensorInfo(o, "float32", [2]) for o in outputs]))


def relu(i, src, dst):
    return Node(i, "Relu", [src], [dst])


def test_valid_graph_passes():
    check_model(model([relu("a", "x", "h"), Node("b", "Add", ["h", "x"], ["y"])]))


def test_dangling_edge_names_node_and_input():
    with pytest.raises(DanglingEdgeError, match=r"node 'b' \(Add\): input 1 'nope' is not a graph input"):
        check_model(model([relu("a", "x", "h"), Node("b", "Add", ["h", "nope"], ["y"])]))


def test_unresolved_graph_output():
    with pytest.raises(DanglingEdgeError, match="graph output 'z'"):
        check_model(model([relu("a", "x", "y")], outputs=("y", "z")))


def test_cycle_is_reported_with_its_nodes():
    nodes = [Node("a", "Add", ["x", "q"], ["p"]), Node("b", "Relu", ["p"], ["q"]), relu("c", "q", "y")]
    with pytest.raises(CycleError, match=r"cycle: node 'a' \(Add\) -> node 'b' \(Relu\) -> node 'a'"):
        check_model(model(nodes))


def test_self_loop_is_a_cycle():
    with pytest.raises(CycleError, match="cycle: node 'a'"):
        check_model(model([Node("a", "Add", ["x", "y"], ["y"])]))


def test_misordering_is_not_called_a_cycle():
    nodes = [relu("b", "h", "y"), relu("a", "x", "h")]
    with pytest.raises(CycleError, match="not in topological order: node 'b' \\(Relu\\) reads 'h'") as info:
        check_model(model(nodes))
    assert "no cycle" in str(info.value)
    assert [n.id for n in topological_order(model(nodes).graph)] == ["a", "b"]


def test_duplicate_node_ids_and_outputs():
    with pytest.raises(DuplicateNameError, match="node id 'a' is used twice"):
        check_model(model([relu("a", "x", "h"), relu("a", "h", "y")]))
    with pytest.raises(DuplicateNameError, match="output 'h' is already produced by node 'a'"):
        check_model(model([relu("a", "x", "h"), relu("b", "x", "h"), relu("c", "h", "y")]))
    with pytest.raises(DuplicateNameError, match="output 'x' is already produced by a graph input"):
        check_model(model([relu("a", "x", "x"), relu("c", "x", "y")]))


def test_nested_graphs_read_outer_names_and_share_the_id_space():
    body = Graph([Node("inner", "Add", ["t", "h"], ["u"])], [TensorInfo("t")], [TensorInfo("u")])
    ok = [relu("a", "x", "h"), Node("loop", "Scan", ["x"], ["y"], attrs={"body": body}, domain="org.test")]
    check_model(model(ok))  # 'h' comes from the enclosing graph; custom-domain ops are kept unchecked
    clash = Graph([Node("a", "Relu", ["t"], ["u"])], [TensorInfo("t")], [TensorInfo("u")])
    bad = [relu("a", "x", "h"), Node("loop", "Scan", ["x"], ["y"], attrs={"body": clash}, domain="org.test")]
    with pytest.raises(DuplicateNameError, match="node id 'a' is used twice"):
        check_model(model(bad))
    dangling = Graph([Node("inner", "Add", ["t", "zz"], ["u"])], [TensorInfo("t")], [TensorInfo("u")])
    nodes = [relu("a", "x", "h"), Node("loop", "Scan", ["x"], ["y"], attrs={"body": dangling}, domain="org.test")]
    with pytest.raises(DanglingEdgeError, match=r"node 'loop' \(org.test.Scan\): attribute 'body': .*'zz'"):
        check_model(model(nodes))


def test_nested_graph_reading_a_later_outer_value_is_misordering():
    body = Graph([Node("inner", "Add", ["t", "h"], ["u"])], [TensorInfo("t")], [TensorInfo("u")])
    nodes = [Node("loop", "Scan", ["x"], ["y"], attrs={"body": body}, domain="org.test"), relu("a", "x", "h")]
    with pytest.raises(CycleError, match="not in topological order"):
        check_model(model(nodes, outputs=("y",)))


def test_op_schema_checks():
    with pytest.raises(UnknownOpError, match="node 'f' \\(Frobnicate\\): unknown op 'Frobnicate'"):
        check_model(model([Node("f", "Frobnicate", ["x"], ["y"])]))
    check_model(model([Node("f", "Frobnicate", ["x"], ["y"])]), allow_unknown_ops=True)
    with pytest.raises(OpError, match="missing required input 1 'weight'"):
        check_model(model([Node("fc", "Linear", ["x"], ["y"])]))
    with pytest.raises(AttrError, match=r"attribute 'alpha' expects float\. Received: alpha='big'"):
        check_model(model([Node("g", "Gemm", ["x", "x"], ["y"], attrs={"alpha": "big"})]))
    with pytest.raises(OpError, match="has a weight 'wieght'"):
        check_model(model([Node("fc", "Linear", ["x"], ["y"], weights={"wieght": np.zeros((2, 2), "f4")})]))


def test_weights_must_be_k5_dtypes():
    w = np.zeros((2, 2), dtype="U3")
    with pytest.raises(SchemaError, match="node 'fc' \\(Linear\\): weight 'weight': NumPy dtype <U3 has no k5"):
        check_model(model([Node("fc", "Linear", ["x"], ["y"], weights={"weight": w})]))


def test_opset_version_newer_than_implemented():
    m = model([relu("a", "x", "y")])
    m.opset = {"k5": 99}
    with pytest.raises(VersionError, match="op set k5 v99"):
        check_model(m)


def test_validation_pair_names_must_be_graph_names():
    from k5.format.model import ValidationPair

    m = model([relu("a", "x", "y")])
    m.validation = ValidationPair({"q": np.zeros(2, "f4")}, {})
    with pytest.raises(SchemaError, match="validation input 'q' is not a graph input"):
        check_model(m)


def test_a_graph_without_outputs_is_not_a_model(tmp_path):
    """Refused by the checks with a GraphError that says why; `k5 validate` calls such a file invalid."""
    import k5
    from k5.cli.main import main
    from k5.errors import GraphError

    model = Model(Graph([Node("r", "Relu", ["x"], ["y"])], [TensorInfo("x", "float32", [2])], []))
    with pytest.raises(GraphError, match="no outputs"):
        check_model(model)
    path = tmp_path / "empty.k5"
    k5.save(model, path, check=False)
    with pytest.raises(GraphError, match="no outputs"):
        k5.load(path)
    assert main(["validate", str(path)]) == 1
