"""The shipped JSON Schema, checked with the `jsonschema` package as an independent oracle of our validator."""

from __future__ import annotations

import copy
import json

import pytest

import k5
from k5.errors import SchemaError
from k5.format.dtypes import DTYPES
from k5.format.network import network_to_dict, schema, validate_schema

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is the independent oracle of the schema tests")


def _oracle() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_dtype_enum_matches_dtype_table():
    assert schema()["$defs"]["dtype"]["enum"] == list(DTYPES)


def _written_doc(tmp_path, model) -> dict:
    import h5py

    k5.save(model, tmp_path / "m.k5")
    with h5py.File(tmp_path / "m.k5", "r") as f:
        return json.loads(f["model/network"][()])


def _rich_doc() -> dict:
    from k5.format.model import Graph, Model, Node, TensorInfo

    body = Graph([Node("b.relu", "Relu", ["t"], ["u"])], [TensorInfo("t", "float32", None)], [TensorInfo("u")])
    node = Node("c", "Op", ["x", ""], ["y", ""], attrs={"g": body, "gs": [], "f": float("inf"), "s": ["a"]},
                domain="org.test")  # fmt: skip
    g = Graph([node], [TensorInfo("x", "float32", ["n", 3])], [TensorInfo("y", None, None, "sequence")])
    return network_to_dict(Model(g))


def test_files_k5_writes_are_accepted(tmp_path, mlp):
    doc = _written_doc(tmp_path, mlp())
    _oracle().validate(doc)
    validate_schema(doc)
    rich = _rich_doc()
    _oracle().validate(rich)
    validate_schema(rich)


def _set(doc: dict, path: list, value) -> dict:
    out = copy.deepcopy(doc)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


_DELETE = object()
# (mutation path, new value, expected JSON path in our message)
MUTATIONS = [
    (["k5_network"], 1.0, "$.k5_network"),
    (["k5_network"], "one", "$.k5_network"),
    (["opset"], _DELETE, "$"),
    (["opset", "k5"], 0, "$.opset.k5"),
    (["opset", "k5"], "1", "$.opset.k5"),
    (["graph", "nodes"], {}, "$.graph.nodes"),
    (["graph", "nodes", 0, "id"], "", "$.graph.nodes[0].id"),
    (["graph", "nodes", 0, "id"], 7, "$.graph.nodes[0].id"),
    (["graph", "nodes", 0, "op"], _DELETE, "$.graph.nodes[0]"),
    (["graph", "nodes", 1, "inputs"], ["h", 3], "$.graph.nodes[1].inputs[1]"),
    (["graph", "nodes", 1, "inputs"], ["a\u0000b"], "$.graph.nodes[1].inputs[0]"),
    (["graph", "nodes", 0, "weights", "weight", "dtype"], "float128", "$.graph.nodes[0].weights.weight.dtype"),
    (["graph", "nodes", 0, "weights", "weight", "shape"], [8, -4], "$.graph.nodes[0].weights.weight.shape[1]"),
    (["graph", "nodes", 0, "weights", "weight", "shape"], [8, "n"], "$.graph.nodes[0].weights.weight.shape[1]"),
    (["graph", "nodes", 0, "attrs"], {"alpha": True}, "$.graph.nodes[0].attrs.alpha"),
    (["graph", "nodes", 0, "attrs"], {"alpha": None}, "$.graph.nodes[0].attrs.alpha"),
    (["graph", "nodes", 0, "attrs"], {"p": [[1, 2]]}, "$.graph.nodes[0].attrs.p[0]"),
    (["graph", "nodes", 0, "attrs"], {"g": {"nodes": []}}, "$.graph.nodes[0].attrs.g"),
    (["graph", "nodes", 0, "atrs"], {}, "$.graph.nodes[0].atrs"),
    (["graph", "inputs", 0, "shape"], [-1, 4], "$.graph.inputs[0].shape[0]"),
    (["graph", "inputs", 0, "shape"], "batch", "$.graph.inputs[0].shape"),
    (["graph", "inputs", 0, "kind"], "list", "$.graph.inputs[0].kind"),
    (["graph", "outputs"], _DELETE, "$.graph"),
    (["graph", "nodes", 0, "domain"], "bad domain!", "$.graph.nodes[0].domain"),
    (["extra"], 1, "$.extra"),
]


@pytest.mark.parametrize(("path", "value", "where"), MUTATIONS, ids=[str(m[:2]) for m in MUTATIONS])
def test_malformed_documents_rejected_by_both(tmp_path, mlp, path, value, where):
    doc = _set(_written_doc(tmp_path, mlp()), path, value)
    assert list(_oracle().iter_errors(doc)), "the jsonschema oracle accepts the mutated document"
    with pytest.raises(SchemaError) as info:
        validate_schema(doc)
    assert str(info.value).startswith(where + ":") or str(info.value).startswith(where + " "), str(info.value)


def test_extension_keys_and_newer_minor_versions(tmp_path, mlp):
    doc = _written_doc(tmp_path, mlp())
    doc["x-vendor"] = {"anything": [1, 2]}
    doc["graph"]["nodes"][0]["x-note"] = "kept out of the way"
    _oracle().validate(doc)
    validate_schema(doc)
    doc["graph"]["nodes"][0]["future_key"] = 1
    with pytest.raises(SchemaError, match="unknown key 'future_key'"):
        validate_schema(doc)
    validate_schema(doc, allow_unknown_keys=True)  # what a reader does for a 1.x file with x > its minor


def test_schema_dtype_enum_is_the_dtype_table():
    """The shipped JSON Schema and the dtype table name the same dtypes (one cannot grow without the other)."""
    import json
    from importlib import resources

    from k5.format.dtypes import DTYPES

    schema = json.loads(resources.files("k5.format").joinpath("network.schema.json").read_text())
    assert sorted(schema["$defs"]["dtype"]["enum"]) == sorted(DTYPES)
