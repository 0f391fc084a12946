"""A deterministic generator of malicious and malformed k5 inputs (the corpus of docs/security.md).

``generate(out_dir)`` writes a few hundred files and returns one :class:`Case` per file. Two kinds:

- ``mode="json"``: raw network JSON bytes (``/model/network`` as it would be stored), fed to
  ``k5.format.network.loads_network`` + ``checks.check_model`` + a run on zeros;
- ``mode="load"``: whole ``.k5`` files derived from a valid file written by ``k5.save``, fed to ``k5.load`` +
  reading every weight + validation + running the validation pair.

Every case must end in a :class:`k5.K5Error` (``may_load``: or load cleanly, for mutations that can be harmless,
e.g. a bit flip in padding). ``expect`` names the K5Error classes that describe the defect (any subclass of them
counts); the corpus test checks those separately from the robustness sweep. Nothing here depends on random state
outside ``random.Random(seed)``.

Run it by hand: ``python tests/security/corpus.py OUT_DIR`` writes the corpus and prints one line per case.
"""

from __future__ import annotations

import copy
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _sec_models import mlp

FORMAT = ("FormatError",)  # a malformed file or JSON document
SIZE = ("HostileSizeError",)
GRAPH = ("GraphError",)


@dataclass(frozen=True)
class Case:
    name: str
    slot: str  # which part of the file the case attacks (for the report)
    path: Path
    mode: str = "load"
    expect: tuple[str, ...] = ()  # acceptable K5Error class names (subclasses count); () = any K5Error
    may_load: bool = False
    notes: str = field(default="", compare=False)


# --- network JSON cases ------------------------------------------------------------------------------------------
def base_doc() -> dict[str, Any]:
    from k5.format.network import network_to_dict

    return network_to_dict(mlp(0))


def _weightless_doc() -> dict[str, Any]:
    """A valid document with no weights (so a json-mode case can also be run): x -> Relu -> Neg -> y."""
    return {
        "k5_network": "1.0",
        "opset": {"k5": 1},
        "graph": {
            "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}],
            "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 4]}],
            "nodes": [
                {"id": "r", "op": "Relu", "inputs": ["x"], "outputs": ["h"]},
                {"id": "n", "op": "Neg", "inputs": ["h"], "outputs": ["y"]},
            ],
        },
    }


def _nested_graphs(depth: int) -> dict[str, Any]:
    doc = _weightless_doc()
    leaf: dict[str, Any] = {"inputs": [], "outputs": [{"name": "x"}], "nodes": []}
    inner = leaf  # one deep branch per level (two would double the text at every level)
    for i in range(depth):
        inner = {
            "inputs": [],
            "outputs": [{"name": f"o{i}"}],
            "nodes": [
                {"id": f"if{i}", "op": "If", "inputs": ["c"], "outputs": [f"o{i}"],
                 "attrs": {"then_branch": inner, "else_branch": leaf}},
            ],
        }  # fmt: skip
    doc["graph"]["nodes"].append({"id": "deep", "op": "If", "inputs": ["c"], "outputs": ["z"],
                                  "attrs": {"then_branch": inner, "else_branch": leaf}})  # fmt: skip
    return doc


def _chain(n: int) -> dict[str, Any]:
    doc = _weightless_doc()
    nodes = [{"id": f"r{i}", "op": "Relu", "inputs": [f"t{i}" if i else "x"], "outputs": [f"t{i + 1}"]}
             for i in range(n)]  # fmt: skip
    nodes.append({"id": "out", "op": "Identity", "inputs": [f"t{n}"], "outputs": ["y"]})
    doc["graph"]["nodes"] = nodes
    return doc


def json_texts() -> list[tuple[str, str, bytes, tuple[str, ...], bool]]:
    """(name, slot, bytes, expect, may_load) for every network JSON case."""
    out: list[tuple[str, str, bytes, tuple[str, ...], bool]] = []

    def add(name: str, slot: str, doc_or_bytes: Any, expect: tuple[str, ...] = (), may_load: bool = False) -> None:
        data = doc_or_bytes if isinstance(doc_or_bytes, bytes) else json.dumps(doc_or_bytes).encode("utf-8")
        out.append((name, slot, data, expect, may_load))

    def mutated(fn: Callable[[dict[str, Any]], Any], doc: dict[str, Any] | None = None) -> dict[str, Any]:
        d = copy.deepcopy(doc if doc is not None else base_doc())
        fn(d)
        return d

    good = json.dumps(base_doc()).encode()
    add("valid_weightless", "control", _weightless_doc(), may_load=True)
    # syntax, encoding, depth
    add("deep_array_100k", "json-depth", b"[" * 100_000 + b"]" * 100_000, FORMAT)
    add("deep_object_50k", "json-depth", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, FORMAT)
    add("deep_array_in_attr", "json-depth", mutated(lambda d: d["graph"]["nodes"][1].setdefault("attrs", {})
        .update(alpha=json.loads("[" * 300 + "]" * 300))), FORMAT)  # fmt: skip
    add("deep_graphs_40", "graph-depth", _nested_graphs(40), SIZE)
    add("deep_graphs_unclosed", "json-depth", b'{"graph":' * 2000, FORMAT)
    add("not_utf8", "non-utf8", good.replace(b'"fc0"', b'"fc\xff\xfe0"', 1), FORMAT)
    add("utf8_overlong_nul", "non-utf8", good.replace(b'"fc0"', b'"fc\xc0\x800"', 1), FORMAT)
    add("utf16", "non-utf8", json.dumps(base_doc()).encode("utf-16"), FORMAT)
    add("utf8_bom", "non-utf8", b"\xef\xbb\xbf" + good, FORMAT, may_load=True)
    add("lone_surrogate_id", "non-utf8", good.replace(b'"fc0"', b'"fc\\ud800"'), ("SchemaError",))
    add("nan_literal", "json-syntax", good.replace(b'"batch"', b"NaN", 1), FORMAT)
    add("infinity_in_shape", "json-syntax", good.replace(b'"batch"', b"Infinity", 1), FORMAT)
    add("huge_int_literal", "json-syntax", good.replace(b'"batch"', b"9" * 5000, 1), FORMAT)
    add("trailing_garbage", "json-syntax", good + b"}}}", FORMAT)
    add("truncated_json", "json-syntax", good[: len(good) // 2], FORMAT)
    add("empty", "json-syntax", b"", FORMAT)
    add("nul_bytes", "json-syntax", b"\x00" * 64, FORMAT)
    add("duplicate_keys", "json-syntax", good.replace(b'"opset"', b'"opset": {"k5": 1}, "opset"', 1), FORMAT)
    for kind, value in (("list", []), ("null", None), ("number", 1), ("string", "k5"), ("true", True)):
        add(f"top_level_{kind}", "json-schema", value, FORMAT)
    # versions
    for name, value in (("major2", "2.0"), ("major0", "0.9"), ("three_parts", "1.0.0"), ("number", 1.0),
                        ("huge", "9" * 400 + ".0"), ("missing", None), ("arabic_digits", "\u0661.\u0660")):  # fmt: skip
        add(
            f"version_{name}",
            "version",
            mutated(lambda d, v=value: d.update(k5_network=v)),
            FORMAT,
            may_load=name == "arabic_digits",
        )
    for name, value in (("op_huge", 2**70), ("op_zero", 0), ("op_negative", -1), ("op_string", "1"),
                        ("op_float", 1.5), ("op_missing_k5", None)):  # fmt: skip

        def set_opset(d: dict[str, Any], v: Any = value) -> None:
            if v is None:
                d["opset"] = {"other": 1}
            else:
                d["opset"]["k5"] = v

        add(f"opset_{name}", "version", mutated(set_opset), FORMAT)
    # graph structure
    nodes = lambda d: d["graph"]["nodes"]  # noqa: E731
    add("cycle_two_nodes", "graph", mutated(lambda d: nodes(d)[0].update(inputs=["r1"])), ("CycleError",))
    add("self_loop", "graph", mutated(lambda d: nodes(d)[1].update(inputs=["r0"])), ("CycleError",))
    add("misordered", "graph", mutated(lambda d: nodes(d).reverse()), ("CycleError",))
    add("dangling_input", "graph", mutated(lambda d: nodes(d)[1].update(inputs=["nowhere"])), ("DanglingEdgeError",))
    add(
        "dangling_output",
        "graph",
        mutated(lambda d: d["graph"]["outputs"][0].update(name="nowhere")),
        ("DanglingEdgeError",),
    )
    add("duplicate_node_id", "graph", mutated(lambda d: nodes(d)[1].update(id="fc0")), ("DuplicateNameError",))
    add("duplicate_output", "graph", mutated(lambda d: nodes(d)[1].update(outputs=["h0"])), ("DuplicateNameError",))
    add(
        "duplicate_graph_input",
        "graph",
        mutated(lambda d: d["graph"]["inputs"].append(d["graph"]["inputs"][0])),
        ("DuplicateNameError",),
    )
    add("unknown_op", "graph", mutated(lambda d: nodes(d)[1].update(op="Exec")), ("UnknownOpError",))
    add("unknown_domain", "graph", mutated(lambda d: nodes(d)[1].update(domain="evil")), FORMAT)
    add(
        "op_pickle_like",
        "graph",
        mutated(lambda d: nodes(d)[1].update(op="__import__('os').system")),
        ("UnknownOpError",),
    )
    add("nodes_not_list", "json-schema", mutated(lambda d: d["graph"].update(nodes={"a": 1})), FORMAT)
    add("node_is_string", "json-schema", mutated(lambda d: nodes(d).append("Relu")), FORMAT)
    add("inputs_are_ints", "json-schema", mutated(lambda d: nodes(d)[1].update(inputs=[0])), FORMAT)
    add("unknown_key", "json-schema", mutated(lambda d: nodes(d)[1].update(code="import os")), FORMAT)
    # attribute types against op schemas (Relu takes none; Linear none; LeakyRelu alpha: float; Gelu approximate)
    leaky = {"id": "lk", "op": "LeakyRelu", "inputs": ["y"], "outputs": ["z"]}
    for name, value in (("string", "x"), ("list", [1.0]), ("graph", {"inputs": [], "outputs": [], "nodes": []}),
                        ("nested_list", [[1]]), ("bool", True), ("null", None), ("object", {"a": 1})):  # fmt: skip

        def add_leaky(d: dict[str, Any], v: Any = value) -> None:
            nodes(d).append(dict(leaky, attrs={"alpha": v}))
            d["graph"]["outputs"][0]["name"] = "z"

        add(f"attr_float_as_{name}", "attr-type", mutated(add_leaky), ("AttrError", "SchemaError"))
    add("attr_unknown", "attr-type", mutated(lambda d: nodes(d)[1].update(attrs={"alpha": 1.0})), ("AttrError",))
    add(
        "attr_string_as_int",
        "attr-type",
        mutated(
            lambda d: nodes(d).append(
                {"id": "g", "op": "Gelu", "inputs": ["y"], "outputs": ["z"], "attrs": {"approximate": 3}}
            )
        ),
        ("AttrError",),
    )
    # shapes and dtypes
    w = lambda d: nodes(d)[0]["weights"]["weight"]  # noqa: E731
    for name, shape in (("huge", [2**40, 2**40]), ("int64_overflow", [2**63, 2**63]), ("beyond_int64", [2**70]),
                        ("negative", [-1, 64]), ("float", [1.5, 64]), ("bool", [True, 64]), ("string", ["a", 64]),
                        ("nested", [[64], 64]), ("null_dim", [None, 64]), ("rank_1000", [1] * 1000),
                        ("float_huge", [1e300, 1.0])):  # fmt: skip
        add(
            f"weight_shape_{name}",
            "huge-shape",
            mutated(lambda d, s=shape: w(d).update(shape=s)),
            (*FORMAT, "WeightError"),
            may_load=name == "rank_1000",
        )
    for dt in ("float128", "object", "O", "<f4", "|S8", "V8", "string", "", None, 7):
        add(f"weight_dtype_{dt!s:.8}", "unknown-dtype", mutated(lambda d, t=dt: w(d).update(dtype=t)), FORMAT)
        add(
            f"input_dtype_{dt!s:.8}",
            "unknown-dtype",
            mutated(lambda d, t=dt: d["graph"]["inputs"][0].update(dtype=t)),
            FORMAT,
            may_load=dt is None,
        )
    add(
        "input_shape_huge",
        "huge-shape",
        mutated(lambda d: d["graph"]["inputs"][0].update(shape=[2**62, 2**62])),
        may_load=True,
    )  # a declared input shape allocates nothing; running needs an input of that size
    add(
        "weight_on_relu",
        "graph",
        mutated(lambda d: nodes(d)[1].update(weights={"w": {"dtype": "float32", "shape": [1]}})),
        ("OpError",),
    )
    add(
        "weight_name_slash",
        "names",
        mutated(lambda d: nodes(d)[0].update(weights={"../weight": w(d)})),
        (*FORMAT, "OpError"),
    )
    # names
    for label, value in (("slash", "a/b"), ("dotdot", ".."), ("dot", "."), ("root", "/"), ("empty", ""),
                         ("nul", "a\x00b"), ("leading_slash", "/model"), ("traversal", "../../validate/input"),
                         ("long_1mb", "n" * (1 << 20)), ("newline", "a\nb"), ("rtl", "a\u202eb")):  # fmt: skip
        # legal in the JSON (names are any non-empty strings without NUL); the file cases test the HDF5 mapping
        bad = label in ("empty", "nul")
        add(
            f"node_id_{label}",
            "names",
            mutated(lambda d, v=value: nodes(d)[0].update(id=v)),
            FORMAT + GRAPH + ("OpError",) if bad else (),
            may_load=not bad,
        )
        add(
            f"tensor_name_{label}",
            "names",
            mutated(lambda d, v=value: (nodes(d)[1].update(inputs=[v]), nodes(d)[0].update(outputs=[v]))),
            FORMAT + GRAPH + ("OpError",) if bad else (),
            may_load=not bad,
        )
    # graph size: a long chain of weightless nodes (a few MB of JSON) must load and run in bounded memory and time
    add("chain_50k_nodes", "graph-size", _chain(50_000), may_load=True)
    add(
        "fanout_inputs_200k",
        "graph-size",
        mutated(
            lambda d: nodes(d).append({"id": "s", "op": "Sum", "inputs": ["x"] * 200_000, "outputs": ["s"]}),
            _weightless_doc(),
        ),
        may_load=True,
    )
    return out


def json_cases(out_dir: Path) -> list[Case]:
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, slot, data, expect, may_load in json_texts():
        path = out_dir / f"net_{name}.json"
        path.write_bytes(data)
        cases.append(Case(f"net_{name}", slot, path, "json", expect, may_load))
    return cases


# --- whole-file cases -----------------------------------------------------------------------------------------------
def file_cases(out_dir: Path, seed: int = 5) -> list[Case]:
    from _sec_files import file_cases as build

    return build(out_dir, random.Random(seed))


def generate(out_dir: Path, *, files: bool = True) -> list[Case]:
    cases = json_cases(out_dir / "json")
    if files:
        cases += file_cases(out_dir / "files")
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "corpus case names must be unique"
    return cases


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "k5_corpus")
    for case in generate(target):
        print(f"{case.slot:14} {case.mode:5} {case.name}")
