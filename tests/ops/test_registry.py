"""The registry turns a kernel's signature into its schema, and the schema checks nodes."""

from __future__ import annotations

import numpy as np
import pytest

from k5.errors import AttrError, OpError, UnknownOpError
from k5.format.model import Graph, Node
from k5.ops import get_schema, op, registry
from k5.ops.registry import REQUIRED


@pytest.fixture
def scratch_domain():
    """Ops registered in a throwaway domain are removed after the test."""
    domain = "test.scratch"
    yield domain
    for key in [k for k in registry._REGISTRY if k[0] == domain]:
        del registry._REGISTRY[key]


def test_signature_becomes_schema(scratch_domain):
    @op("Thing", inputs=["X", "@weight", "@bias?", "rest*"], outputs=["Y", "Z?"], domain=scratch_domain)
    def thing(x, w, b, *rest, alpha: float = 0.5, axes: list[int] | None = None, mode: str, g: Graph | None = None):
        """Does a thing."""
        return x

    s = thing.schema
    assert [str(i) for i in s.inputs] == ["X", "@weight", "@bias?", "rest*"]
    assert [str(o) for o in s.outputs] == ["Y", "Z?"]
    assert {n: (a.type, a.default) for n, a in s.attrs.items()} == {
        "alpha": ("float", 0.5),
        "axes": ("ints", None),
        "mode": ("string", REQUIRED),
        "g": ("graph", None),
    }
    assert s.min_inputs == 2 and s.max_inputs is None
    assert set(s.params) == {"weight", "bias"}
    assert s.doc == "Does a thing."


def test_registering_twice_is_an_error(scratch_domain):
    @op("Once", inputs=["X"], outputs=["Y"], domain=scratch_domain)
    def once(x):
        return x

    with pytest.raises(ValueError, match="already registered"):

        @op("Once", inputs=["X"], outputs=["Y"], domain=scratch_domain)
        def again(x):
            return x


def test_signature_must_match_declared_inputs(scratch_domain):
    with pytest.raises(TypeError, match="positional"):

        @op("Bad", inputs=["A", "B"], outputs=["Y"], domain=scratch_domain)
        def bad(a):
            return a

    with pytest.raises(TypeError, match="annotation"):

        @op("Bad2", inputs=["A"], outputs=["Y"], domain=scratch_domain)
        def bad2(a, *, k=3):
            return a


def test_version_selection(scratch_domain):
    @op("V", inputs=["X"], outputs=["Y"], domain=scratch_domain, since=1)
    def v1(x):
        return x

    @op("V", inputs=["X"], outputs=["Y"], domain=scratch_domain, since=3)
    def v3(x):
        return x

    assert get_schema("V", scratch_domain, 2).kernel is v1
    assert get_schema("V", scratch_domain, 3).kernel is v3
    assert get_schema("V", scratch_domain).kernel is v3
    with pytest.raises(UnknownOpError):
        get_schema("Nope", scratch_domain, 1)


def test_unknown_default_domain_op_names_node_and_docs():
    with pytest.raises(UnknownOpError, match=r"node 'n1' \(Frobnicate\).*unknown op 'Frobnicate'"):
        get_schema("Frobnicate", where="node 'n1' (Frobnicate)")


def test_check_node_attribute_types():
    schema = get_schema("Linear")
    node = Node("fc", "Linear", ["x"], ["y"], attrs={"bogus": 1}, weights={"weight": np.zeros((2, 2))})
    with pytest.raises(AttrError, match=r"node 'fc' \(Linear\): unknown attribute 'bogus'"):
        schema.check_node(node)


def test_check_node_param_given_twice_or_missing():
    schema = get_schema("Linear")
    both = Node("fc", "Linear", ["x", "w"], ["y"], weights={"weight": np.zeros((2, 2))})
    with pytest.raises(OpError, match="both as input 'w' and as a stored weight"):
        schema.check_node(both)
    missing = Node("fc", "Linear", ["x"], ["y"])
    with pytest.raises(OpError, match="missing required input 1 'weight'"):
        schema.check_node(missing)
    stray = Node("fc", "Linear", ["x"], ["y"], weights={"weight": np.zeros((2, 2)), "gamma": np.zeros(2)})
    with pytest.raises(OpError, match="weight 'gamma' that the op does not take"):
        schema.check_node(stray)


@pytest.mark.parametrize(
    ("type_", "good", "bad"),
    [
        ("int", 3, 3.5),
        ("int", 3, True),
        ("float", 2, "x"),
        ("ints", [1, 2], [1, 2.5]),
        ("floats", [1, 2.5], ["a"]),
        ("string", "a", 1),
        ("strings", ["a"], "a"),
    ],
)
def test_coerce_attr(type_, good, bad):
    spec = registry.AttrSpec("a", type_)
    registry.coerce_attr(spec, good, where="n")
    with pytest.raises(AttrError, match=f"attribute 'a' expects {type_}"):
        registry.coerce_attr(spec, bad, where="n")
