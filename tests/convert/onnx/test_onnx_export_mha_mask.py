"""MultiHeadAttention export when the masks' dtypes are not declared: the exporter derives them from the nodes that
compute the masks (Cast, comparisons, Where, constants...), else from ONNX shape inference, and refuses by name only
when nothing can tell. Oracle: torch.nn.MultiheadAttention given the same mask, computed here in NumPy."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from k5.convert.onnx import to_onnx  # noqa: E402
from k5.errors import ConversionError  # noqa: E402
from k5.format.model import Graph, Model, Node, TensorInfo  # noqa: E402
from k5.runtime import run  # noqa: E402

N, L, E, HEADS = 2, 5, 16, 4
RNG = np.random.default_rng(3)


def _np(t):
    return t.detach().numpy().copy()


@pytest.fixture(scope="module")
def mha():
    torch.manual_seed(5)
    m = torch.nn.MultiheadAttention(E, HEADS, batch_first=True).eval()
    with torch.no_grad():
        m.in_proj_bias.normal_()
        m.out_proj.bias.normal_()
    return m


def _attention(mha, mask_nodes: list[Node], attn_mask: str, pad: str, extra_inputs: list[TensorInfo]) -> Model:
    w, b = _np(mha.in_proj_weight), _np(mha.in_proj_bias)
    weights = {
        "q_weight": w[:E], "k_weight": w[E : 2 * E], "v_weight": w[2 * E :],
        "q_bias": b[:E], "k_bias": b[E : 2 * E], "v_bias": b[2 * E :],
        "out_weight": _np(mha.out_proj.weight), "out_bias": _np(mha.out_proj.bias),
    }  # fmt: skip
    node = Node("attn", "MultiHeadAttention", ["x", "x", "x", attn_mask, pad], ["y"], {"num_heads": HEADS}, weights)
    inputs = [TensorInfo("x", "float32", ["batch", L, E]), *extra_inputs]
    return Model(Graph([*mask_nodes, node], inputs, [TensorInfo("y", "float32")]))


def _check(mha, model: Model, feeds: dict[str, np.ndarray], attn_mask: np.ndarray | None, pad: np.ndarray | None):
    assert all(not i.dtype for i in model.graph.value_info)  # nothing declared about the masks
    with torch.no_grad():
        y, _ = mha(*[torch.from_numpy(feeds["x"])] * 3,
                   attn_mask=None if attn_mask is None else torch.from_numpy(attn_mask),
                   key_padding_mask=None if pad is None else torch.from_numpy(pad))  # fmt: skip
    proto = to_onnx(model)
    onnx.checker.check_model(proto)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, feeds)
    np.testing.assert_allclose(got, _np(y), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(run(model, feeds)["y"], _np(y), rtol=1e-4, atol=1e-5)


def _x() -> np.ndarray:
    return RNG.standard_normal((N, L, E)).astype(np.float32)


def test_bool_masks_from_cast_and_comparison(mha) -> None:
    """attn_mask = Cast(int mask, to=bool); key_padding_mask = Equal(tokens, 0)."""
    ints = (RNG.random((L, L)) < 0.3).astype(np.int64)
    np.fill_diagonal(ints, 0)  # no query loses every key
    tokens = RNG.integers(1, 9, (N, L)).astype(np.int64)
    tokens[1, -2:] = 0
    nodes = [
        Node("zero", "Constant", [], ["zero"], weights={"value": np.array(0, np.int64)}),
        Node("to_bool", "Cast", ["mask_i"], ["m"], {"to": "bool"}),
        Node("is_pad", "Equal", ["tokens", "zero"], ["pad"]),
    ]
    extra = [TensorInfo("mask_i", "int64", [L, L]), TensorInfo("tokens", "int64", ["batch", L])]
    model = _attention(mha, nodes, "m", "pad", extra)
    _check(mha, model, {"x": _x(), "mask_i": ints, "tokens": tokens}, ints.astype(bool), tokens == 0)


def test_float_mask_through_where_and_reshape(mha) -> None:
    """attn_mask = Reshape(Where(bool, -inf, 0)): a float mask, added to the scores."""
    flat = RNG.random(L * L) < 0.3
    flat.reshape(L, L)[np.arange(L), np.arange(L)] = False
    nodes = [
        Node("ninf", "Constant", [], ["ninf"], weights={"value": np.array(-np.inf, np.float32)}),
        Node("zero", "Constant", [], ["zero"], weights={"value": np.array(0.0, np.float32)}),
        Node("shape", "Constant", [], ["shape"], weights={"value": np.array([L, L], np.int64)}),
        Node("sel", "Where", ["flat", "ninf", "zero"], ["additive"]),
        Node("square", "Reshape", ["additive", "shape"], ["m"]),
    ]
    model = _attention(mha, nodes, "m", "", [TensorInfo("flat", "bool", [L * L])])
    additive = np.where(flat, -np.inf, 0.0).astype(np.float32).reshape(L, L)
    _check(mha, model, {"x": _x(), "flat": flat}, additive, None)


def test_float_mask_found_by_onnx_shape_inference(mha) -> None:
    """OneHot has no rule in the exporter: ONNX shape inference over the nodes written so far gives float32."""
    which = (np.arange(L) + 1) % L  # each query loses one key, never its own
    nodes = [
        Node("depth", "Constant", [], ["depth"], weights={"value": np.array(L, np.int64)}),
        Node("vals", "Constant", [], ["vals"], weights={"value": np.array([0.0, -np.inf], np.float32)}),
        Node("hot", "OneHot", ["which", "depth", "vals"], ["m"]),
    ]
    model = _attention(mha, nodes, "m", "", [TensorInfo("which", "int64", [L])])
    additive = np.where(np.eye(L, dtype=bool)[which], -np.inf, 0.0).astype(np.float32)
    _check(mha, model, {"x": _x(), "which": which.astype(np.int64)}, additive, None)


def test_unknowable_mask_dtype_is_refused_by_name(mha) -> None:
    nodes = [Node("mk", "MakeMask", ["x"], ["m"], domain="my.ops")]
    model = _attention(mha, nodes, "m", "", [])
    model.opset["my.ops"] = 1
    with pytest.raises(ConversionError, match=r"node 'attn' \(MultiHeadAttention\): attn_mask 'm' \(computed by "
                                              r"node 'mk' \(my.ops.MakeMask\)\) needs a known dtype"):  # fmt: skip
        to_onnx(model)
