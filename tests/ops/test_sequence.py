"""Sequence and optional ops: ONNX's backend cases, hand maths on lists, and k5 graphs that pass sequences and
optionals between nodes, through SequenceMap bodies and in and out of the graph."""

from __future__ import annotations

import numpy as np
import pytest
from _observed import run_op
from _onnx_cases import cases_for, check_case, family

import k5
from k5.errors import K5Error
from k5.format.model import Graph, Model, Node, TensorInfo
from k5.ops import sequence as K  # noqa: N812 - short alias for the kernels module

OPS = family("sequence")


@pytest.mark.parametrize("case", cases_for(OPS))
def test_onnx_backend_case(case) -> None:
    check_case(case)


def _arrays(n: int) -> list[np.ndarray]:
    return [np.full((2,), i, np.float32) for i in range(n)]


def test_insert_at_erase_with_negative_positions_never_mutate_the_input() -> None:
    seq = _arrays(3)
    original = list(seq)
    out = K.sequence_insert(seq, np.full(2, 9, np.float32), np.array(-1))  # before the last
    assert [float(a[0]) for a in out] == [0, 1, 9, 2]
    assert [float(a[0]) for a in K.sequence_insert(seq, np.zeros(2, np.float32), None)] == [0, 1, 2, 0]
    assert [float(a[0]) for a in K.sequence_insert(seq, np.zeros(2, np.float32), np.array(3))] == [0, 1, 2, 0]
    assert float(K.sequence_at(seq, np.array(-3))[0]) == 0
    assert [float(a[0]) for a in run_op("SequenceErase", seq, np.array(-2))] == [0, 2]
    assert [float(a[0]) for a in K.sequence_erase(seq, None)] == [0, 1]
    assert seq == original and len(seq) == 3
    length = K.sequence_length(seq)
    assert length.dtype == np.int64 and length.shape == () and int(length) == 3
    with pytest.raises(K5Error, match="position 3 is out of range"):
        K.sequence_at(seq, np.array(3))
    with pytest.raises(K5Error, match="empty sequence"):
        K.sequence_erase([], None)


def test_concat_from_sequence_and_split_to_sequence_hand_maths() -> None:
    seq = [np.arange(6, dtype=np.int32).reshape(2, 3) + 10 * i for i in range(3)]
    cat = run_op("ConcatFromSequence", seq, axis=1)
    assert cat.shape == (2, 9) and cat[1, 3:6].tolist() == [13, 14, 15]
    stacked = K.concat_from_sequence(seq, axis=-1, new_axis=1)
    assert stacked.shape == (2, 3, 3) and stacked[1, 2].tolist() == [5, 15, 25]
    x = np.arange(7 * 2).reshape(7, 2)
    assert [p.shape for p in K.split_to_sequence(x, np.array(3))] == [(3, 2), (3, 2), (1, 2)]
    assert [p.shape for p in K.split_to_sequence(x, np.array([2, 5]))] == [(2, 2), (5, 2)]
    ones = K.split_to_sequence(x, None, axis=1, keepdims=0)
    assert len(ones) == 2 and ones[1].tolist() == list(range(1, 14, 2))
    with pytest.raises(K5Error, match="must be >= 0 and sum to the axis length 7"):
        K.split_to_sequence(x, np.array([2, 2]))


def test_optionals() -> None:
    x = np.ones(3, np.float32)
    assert K.optional(x) is x and K.optional(None) is None
    assert K.optional_has_element(x).dtype == np.bool_ and bool(K.optional_has_element(x))
    assert not bool(K.optional_has_element(None))
    assert K.optional_get_element([x]) == [x]
    with pytest.raises(K5Error, match="empty optional"):
        K.optional_get_element(None)


def _t(name: str, dtype: str | None = "float32", shape: list | None = None, kind: str = "tensor") -> TensorInfo:
    return TensorInfo(name, dtype, shape, kind)


def test_sequence_map_graph_with_extra_inputs_and_two_outputs() -> None:
    """SequenceMap over a sequence graph input, with a second sequence and a whole tensor as extra inputs; the body
    returns two values, so the node yields two sequences. Checked against hand maths."""
    body = Graph(
        nodes=[
            Node("add", "Add", ["a", "b"], ["ab"]),
            Node("mul", "Mul", ["ab", "scale"], ["out1"]),
            Node("shape", "Shape", ["a"], ["out2"]),
        ],
        inputs=[_t("a"), _t("b"), _t("scale")],
        outputs=[_t("out1"), _t("out2", "int64")],
    )
    graph = Graph(
        nodes=[
            Node("map", "SequenceMap", ["xs", "ys", "s"], ["zs", "shapes"], attrs={"body": body}),
            Node("len", "SequenceLength", ["zs"], ["n"]),
            Node("last", "SequenceAt", ["zs", "minus_one"], ["z_last"]),
        ],
        inputs=[_t("xs", kind="sequence"), _t("ys", kind="sequence"), _t("s", shape=[]), _t("minus_one", "int64", [])],
        outputs=[_t("zs", kind="sequence"), _t("shapes", "int64", kind="sequence"), _t("n", "int64"), _t("z_last")],
    )
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal(k).astype(np.float32) for k in (2, 5, 3)]  # elements of different shapes
    ys = [rng.standard_normal(k).astype(np.float32) for k in (2, 5, 3)]
    out = k5.run(Model(graph), {"xs": xs, "ys": ys, "s": np.float32(3), "minus_one": np.array(-1)})
    assert isinstance(out["zs"], list) and len(out["zs"]) == 3 and int(out["n"]) == 3
    for x, y, z, shape in zip(xs, ys, out["zs"], out["shapes"], strict=True):
        np.testing.assert_allclose(z, (x + y) * 3, rtol=1e-6)
        assert shape.tolist() == list(x.shape)
    np.testing.assert_allclose(out["z_last"], (xs[2] + ys[2]) * 3, rtol=1e-6)


def test_optional_graph_input_may_be_empty() -> None:
    then_g = Graph(nodes=[Node("get", "OptionalGetElement", ["opt"], ["v"])], outputs=[_t("v")])
    else_g = Graph(nodes=[Node("dflt", "Identity", ["fallback"], ["d"])], outputs=[_t("d")])
    graph = Graph(
        nodes=[
            Node("has", "OptionalHasElement", ["opt"], ["h"]),
            Node("pick", "If", ["h"], ["y"], attrs={"then_branch": then_g, "else_branch": else_g}),
        ],
        inputs=[_t("opt", kind="optional"), _t("fallback", shape=[2])],
        outputs=[_t("y")],
    )
    fallback = np.array([7.0, 8.0], np.float32)
    given = np.array([1.0, 2.0], np.float32)
    assert k5.run(Model(graph), {"opt": None, "fallback": fallback})["y"].tolist() == [7, 8]
    assert k5.run(Model(graph), {"opt": given, "fallback": fallback})["y"].tolist() == [1, 2]
