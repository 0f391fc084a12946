"""Control flow (If, Loop, Scan): ONNX's backend cases, hand-built k5 graphs checked against hand maths, and an
ONNX model with nested loops checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from _onnx_cases import cases_for, check_case, family

import k5
from k5.errors import K5Error
from k5.format.model import Graph, Model, Node, TensorInfo

OPS = family("control")


@pytest.mark.parametrize("case", cases_for(OPS))
def test_onnx_backend_case(case) -> None:
    check_case(case)


def _t(name: str, dtype: str | None = "float32", shape: list | None = None) -> TensorInfo:
    return TensorInfo(name, dtype, shape)


def _run(graph: Graph, feeds: dict) -> dict:
    return k5.run(Model(graph), feeds)


# --- If -------------------------------------------------------------------------------------------------------
def _if_graph() -> Graph:
    then_g = Graph(nodes=[Node("t_add", "Add", ["x", "y"], ["t_out"])], outputs=[_t("t_out")])
    # the else branch returns an outer value directly and a value computed from another outer value
    else_g = Graph(nodes=[Node("e_neg", "Neg", ["x"], ["e_out"])], outputs=[_t("e_out")])
    return Graph(
        nodes=[
            Node("cmp", "Greater", ["s", "zero"], ["c"]),
            Node("branch", "If", ["c"], ["r"], attrs={"then_branch": then_g, "else_branch": else_g}),
        ],
        inputs=[_t("x", shape=[2, 3]), _t("y", shape=[2, 3]), _t("s", shape=[]), _t("zero", shape=[])],
        outputs=[_t("r")],
    )


@pytest.mark.parametrize("s", [1.0, -1.0])
def test_if_branches_read_outer_scope(s: float) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 2, 3), dtype=np.float32)
    out = _run(_if_graph(), {"x": x, "y": y, "s": np.float32(s), "zero": np.float32(0)})["r"]
    np.testing.assert_array_equal(out, x + y if s > 0 else -x)


def test_if_branches_may_return_different_shapes() -> None:
    then_g = Graph(nodes=[Node("c1", "Concat", ["x", "x"], ["o1"], attrs={"axis": 0})], outputs=[_t("o1")])
    else_g = Graph(nodes=[Node("id", "Identity", ["x"], ["o2"])], outputs=[_t("o2")])
    g = Graph(
        nodes=[Node("if", "If", ["c"], ["r"], attrs={"then_branch": then_g, "else_branch": else_g})],
        inputs=[_t("c", "bool", []), _t("x", shape=[2])],
        outputs=[_t("r")],
    )
    x = np.array([1.0, 2.0], np.float32)
    assert _run(g, {"c": np.array(True), "x": x})["r"].tolist() == [1, 2, 1, 2]
    assert _run(g, {"c": np.array(False), "x": x})["r"].tolist() == [1, 2]


def test_if_rejects_branches_with_different_output_counts() -> None:
    then_g = Graph(outputs=[_t("x"), _t("x")])
    else_g = Graph(outputs=[_t("x")])
    g = Graph(
        nodes=[Node("if", "If", ["c"], ["a", "b"], attrs={"then_branch": then_g, "else_branch": else_g})],
        inputs=[_t("c", "bool", []), _t("x", shape=[1])],
        outputs=[_t("a")],
    )
    with pytest.raises(K5Error, match="then_branch has 2 outputs but else_branch has 1"):
        _run(g, {"c": np.array(True), "x": np.zeros(1, np.float32)})


# --- Loop -----------------------------------------------------------------------------------------------------
def _growing_loop() -> Graph:
    """acc grows by one row per iteration (its shape changes), total += step * i (step read from the outer
    scope), and the scan output records total after each iteration."""
    body = Graph(
        nodes=[
            Node("i_f", "Cast", ["i"], ["i_f"], attrs={"to": "float32"}),
            Node("row", "Mul", ["step", "i_f"], ["inc"]),  # `step` is an outer-scope value
            Node("tot", "Add", ["total_in", "inc"], ["total_out"]),
            Node("grow", "Concat", ["acc_in", "row_vec"], ["acc_out"], attrs={"axis": 0}),  # `row_vec`: outer
            Node("keep", "Identity", ["cond_in"], ["cond_out"]),
            Node("rec", "Identity", ["total_out"], ["scan_total"]),
        ],
        inputs=[_t("i", "int64", []), _t("cond_in", "bool", []), _t("total_in", shape=[]), _t("acc_in")],
        outputs=[_t("cond_out", "bool", []), _t("total_out", shape=[]), _t("acc_out"), _t("scan_total", shape=[])],
    )
    return Graph(
        nodes=[Node("loop", "Loop", ["M", "", "total0", "acc0"], ["total", "acc", "totals"], attrs={"body": body})],
        inputs=[
            _t("M", "int64", []),
            _t("total0", shape=[]),
            _t("acc0", shape=[1, 2]),
            _t("step", shape=[]),
            _t("row_vec", shape=[1, 2]),
        ],
        outputs=[_t("total"), _t("acc"), _t("totals")],
    )


@pytest.mark.parametrize("trips", [0, 1, 5])
def test_loop_carried_shapes_change_and_outer_values_are_read(trips: int) -> None:
    step = np.float32(1.5)
    row = np.array([[3.0, 4.0]], np.float32)
    acc0 = np.zeros((1, 2), np.float32)
    out = _run(
        _growing_loop(),
        {"M": np.array(trips, np.int64), "total0": np.float32(0.5), "acc0": acc0, "step": step, "row_vec": row},
    )
    total, acc, totals = 0.5, acc0, []
    for i in range(trips):  # hand maths
        total += 1.5 * i
        acc = np.concatenate([acc, row])
        totals.append(total)
    assert out["total"].shape == () and out["total"].dtype == np.float32
    np.testing.assert_allclose(out["total"], total)
    np.testing.assert_array_equal(out["acc"], acc)
    assert out["acc"].shape == (1 + trips, 2)
    assert out["totals"].dtype == np.float32 and out["totals"].shape == (trips,)
    np.testing.assert_allclose(out["totals"], np.array(totals, np.float32))


def test_loop_without_trip_count_stops_on_cond() -> None:
    """while (x < limit): x = x * 2 -- M omitted, cond computed by the body."""
    body = Graph(
        nodes=[
            Node("dbl", "Mul", ["x_in", "two"], ["x_out"]),
            Node("cmp", "Less", ["x_out", "limit"], ["c_out"]),
        ],
        inputs=[_t("i", "int64", []), _t("c_in", "bool", []), _t("x_in", shape=[])],
        outputs=[_t("c_out", "bool", []), _t("x_out", shape=[])],
    )
    g = Graph(
        nodes=[Node("loop", "Loop", ["", "c0", "x0"], ["x"], attrs={"body": body})],
        inputs=[_t("c0", "bool", []), _t("x0", shape=[]), _t("two", shape=[]), _t("limit", shape=[])],
        outputs=[_t("x")],
    )
    feeds = {"c0": np.array(True), "x0": np.float32(3), "two": np.float32(2), "limit": np.float32(100)}
    assert float(_run(g, feeds)["x"]) == 192.0  # 3, 6, ..., 96 < 100, then 192
    feeds["c0"] = np.array(False)
    assert float(_run(g, feeds)["x"]) == 3.0  # the initial cond is checked before the first iteration


def test_nested_loops_against_onnxruntime() -> None:
    """An ONNX model: outer Loop over i, inner Loop over j, inner body reads i (outer body scope) and w (graph
    scope); both scan outputs and a carried sum. The oracle is onnxruntime (onnx.reference's Loop vstacks scan
    outputs, which is wrong for scalar and nested scan outputs)."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto
    from onnx import helper as h

    f32 = lambda n, s=None: h.make_tensor_value_info(n, TensorProto.FLOAT, s)  # noqa: E731
    i64 = lambda n: h.make_tensor_value_info(n, TensorProto.INT64, [])  # noqa: E731
    b = lambda n: h.make_tensor_value_info(n, TensorProto.BOOL, [])  # noqa: E731
    inner = h.make_graph(
        [
            h.make_node("Cast", ["j"], ["jf"], to=TensorProto.FLOAT),
            h.make_node("Cast", ["i"], ["if_"], to=TensorProto.FLOAT),
            h.make_node("Mul", ["if_", "jf"], ["ij"]),
            h.make_node("Mul", ["ij", "w"], ["term"]),
            h.make_node("Add", ["s_in", "term"], ["s_out"]),
            h.make_node("Identity", ["ci"], ["co"]),
            h.make_node("Identity", ["term"], ["term_scan"]),
        ],
        "inner",
        [i64("j"), b("ci"), f32("s_in", [3])],
        [b("co"), f32("s_out", [3]), f32("term_scan", [3])],
    )
    outer = h.make_graph(
        [
            h.make_node("Loop", ["N", "", "acc_in"], ["acc_out", "terms"], body=inner),
            h.make_node("Identity", ["c"], ["c_out"]),
            h.make_node("ReduceSum", ["acc_out"], ["rs"], keepdims=0),
        ],
        "outer",
        [i64("i"), b("c"), f32("acc_in", [3])],
        [b("c_out"), f32("acc_out", [3]), f32("rs", []), f32("terms", [None, 3])],
    )
    graph = h.make_graph(
        [h.make_node("Loop", ["M", "", "acc0"], ["acc", "sums", "all_terms"], body=outer)],
        "g",
        [i64("M"), i64("N"), f32("acc0", [3]), f32("w", [3])],
        [f32("acc", [3]), f32("sums", [None]), f32("all_terms", [None, None, 3])],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 21)])
    onnx.checker.check_model(model)
    rng = np.random.default_rng(3)
    feeds = {
        "M": np.array(4, np.int64),
        "N": np.array(3, np.int64),
        "acc0": rng.standard_normal(3).astype(np.float32),
        "w": rng.standard_normal(3).astype(np.float32),
    }
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    got = k5.run(k5.from_onnx(model), feeds)
    for name, e in zip(["acc", "sums", "all_terms"], expected, strict=True):
        assert got[name].shape == e.shape and got[name].dtype == e.dtype, name
        np.testing.assert_allclose(got[name], e, rtol=1e-6, atol=1e-6)
    assert got["all_terms"].shape == (4, 3, 3)


def test_loop_scan_output_with_shape_change_is_an_error() -> None:
    body = Graph(
        nodes=[
            Node("grow", "Concat", ["a_in", "one"], ["a_out"], attrs={"axis": 0}),
            Node("keep", "Identity", ["c_in"], ["c_out"]),
            Node("rec", "Identity", ["a_out"], ["scan"]),
        ],
        inputs=[_t("i", "int64", []), _t("c_in", "bool", []), _t("a_in")],
        outputs=[_t("c_out", "bool", []), _t("a_out"), _t("scan")],
    )
    g = Graph(
        nodes=[Node("loop", "Loop", ["M", "", "a0"], ["a", "scans"], attrs={"body": body})],
        inputs=[_t("M", "int64", []), _t("a0", shape=[1]), _t("one", shape=[1])],
        outputs=[_t("a"), _t("scans")],
    )
    with pytest.raises(K5Error, match="scan output 0 changes shape"):
        _run(g, {"M": np.array(3, np.int64), "a0": np.zeros(1, np.float32), "one": np.ones(1, np.float32)})


# --- Scan -----------------------------------------------------------------------------------------------------
def _scan_graph(in_axes: list[int], in_dirs: list[int], out_axes: list[int], out_dirs: list[int]) -> Graph:
    """state += x_t * scale (scale from the outer scope); scan outputs: the state, and x_t + y_t."""
    body = Graph(
        nodes=[
            Node("mul", "Mul", ["x_t", "scale"], ["xs"]),
            Node("acc", "Add", ["s_in", "xs"], ["s_out"]),
            Node("rec", "Identity", ["s_out"], ["s_scan"]),
            Node("sum", "Add", ["x_t", "y_t"], ["xy"]),
        ],
        inputs=[_t("s_in", shape=[3]), _t("x_t", shape=[3]), _t("y_t", shape=[3])],
        outputs=[_t("s_out", shape=[3]), _t("s_scan", shape=[3]), _t("xy", shape=[3])],
    )
    attrs = {
        "body": body,
        "num_scan_inputs": 2,
        "scan_input_axes": in_axes,
        "scan_input_directions": in_dirs,
        "scan_output_axes": out_axes,
        "scan_output_directions": out_dirs,
    }
    return Graph(
        nodes=[Node("scan", "Scan", ["s0", "x", "y"], ["s", "states", "xys"], attrs=attrs)],
        inputs=[_t("s0", shape=[3]), _t("x"), _t("y"), _t("scale", shape=[])],
        outputs=[_t("s"), _t("states"), _t("xys")],
    )


@pytest.mark.parametrize(
    ("in_axes", "in_dirs", "out_axes", "out_dirs"),
    [([0, 0], [0, 0], [0, 0], [0, 0]), ([1, 0], [1, 0], [1, -1], [0, 1]), ([-1, 1], [0, 1], [0, 1], [1, 0])],
)
def test_scan_axes_and_directions_match_hand_maths(in_axes, in_dirs, out_axes, out_dirs) -> None:
    rng = np.random.default_rng(7)
    T = 4
    xs = rng.standard_normal((T, 3)).astype(np.float32)  # the logical sequence, time first
    ys = rng.standard_normal((T, 3)).astype(np.float32)

    def lay_out(seq: np.ndarray, axis: int, direction: int) -> np.ndarray:
        stored = seq[::-1] if direction else seq  # what the op reads in order is `seq`
        return np.moveaxis(stored, 0, axis)

    x = lay_out(xs, in_axes[0], in_dirs[0])
    y = lay_out(ys, in_axes[1], in_dirs[1])
    s0 = rng.standard_normal(3).astype(np.float32)
    out = _run(_scan_graph(in_axes, in_dirs, out_axes, out_dirs), {"s0": s0, "x": x, "y": y, "scale": np.float32(2)})
    state, states, xys = s0.copy(), [], []
    for t in range(T):  # hand maths over the logical order
        state = state + xs[t] * np.float32(2)
        states.append(state)
        xys.append(xs[t] + ys[t])
    np.testing.assert_allclose(out["s"], state, rtol=1e-6)
    for got, seq, axis, direction in ((out["states"], states, out_axes[0], out_dirs[0]),
                                      (out["xys"], xys, out_axes[1], out_dirs[1])):  # fmt: skip
        want = np.stack(seq[::-1] if direction else seq, axis=axis)
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_scan_rejects_different_sequence_lengths() -> None:
    g = _scan_graph([0, 0], [0, 0], [0, 0], [0, 0])
    feeds = {"s0": np.zeros(3, np.float32), "x": np.zeros((4, 3), np.float32), "y": np.zeros((5, 3), np.float32)}
    with pytest.raises(K5Error, match="different sequence lengths"):
        _run(g, {**feeds, "scale": np.float32(1)})
