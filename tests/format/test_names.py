"""Link-name encoding (spec section 6.1): reversible, and never produces '/' or the names '.'/'..'."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import k5
from k5.errors import SchemaError
from k5.format.hdf5 import decode_name, encode_name
from k5.format.model import Graph, Model, Node, TensorInfo


@pytest.mark.parametrize(
    ("name", "link"),
    [("fc1", "fc1"), ("a/b", "a%2Fb"), ("100%", "100%25"), ("%2F", "%252F"), (".", "%2E"), ("..", "%2E%2E"),
     ("...", "..."), ("a.b", "a.b"), ("ünï", "ünï")],
)  # fmt: skip
def test_examples(name, link):
    assert encode_name(name) == link
    assert decode_name(link) == name


@given(st.text(alphabet=st.characters(blacklist_characters="\x00"), min_size=1))
def test_round_trip(name):
    link = encode_name(name)
    assert "/" not in link and link not in (".", "..")
    assert decode_name(link) == name


def test_nul_and_empty_names_are_refused():
    with pytest.raises(SchemaError, match="NUL"):
        encode_name("a\x00b")
    with pytest.raises(SchemaError, match="non-empty"):
        encode_name("")


def test_odd_node_ids_survive_a_file(tmp_path):
    import numpy as np

    ids = ["a/b", "..", ".", "%", "x%2Fy", "空 格"]
    nodes = [Node(i, "Constant", [], [f"v{n}"], weights={"value": np.full(2, n, "f4")}) for n, i in enumerate(ids)]
    k5.save(Model(Graph(nodes, [], [TensorInfo(f"v{n}", "float32", [2]) for n in range(len(ids))])), tmp_path / "m.k5")
    with k5.load(tmp_path / "m.k5") as got:
        assert [n.id for n in got.nodes] == ids
        assert [float(np.asarray(n.weights["value"])[0]) for n in got.nodes] == list(range(len(ids)))
