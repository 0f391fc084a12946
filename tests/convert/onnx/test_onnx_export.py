"""k5 -> ONNX export, run in onnxruntime. Oracle: PyTorch modules holding the same weights."""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from k5.convert.onnx import exporter, save_onnx, to_onnx, writer  # noqa: E402
from k5.errors import ConversionError  # noqa: E402
from k5.format.model import Graph, Model, Node, TensorInfo  # noqa: E402
from k5.runtime import run  # noqa: E402

RNG = np.random.default_rng(0)


def _ort(proto, feeds):
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))


def _np(t):
    return t.detach().numpy().copy()


def _layers_model():
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 5)
    emb = torch.nn.Embedding(10, 8)
    nodes = [
        Node("emb", "Embedding", ["ids"], ["e"], weights={"weight": _np(emb.weight)}),
        Node("fc", "Linear", ["e"], ["y"], weights={"weight": _np(lin.weight), "bias": _np(lin.bias)}),
        Node("pool", "AdaptiveAveragePool", ["img"], ["p"], {"output_size": [2, 4]}),
        Node("gmax", "AdaptiveMaxPool", ["img"], ["g"], {"output_size": [1, 1]}),
    ]
    graph = Graph(
        nodes,
        inputs=[TensorInfo("ids", "int64", ["batch", 3]), TensorInfo("img", "float32", [1, 2, 8, 8])],
        outputs=[TensorInfo("y", "float32"), TensorInfo("p", "float32"), TensorInfo("g", "float32")],
    )
    return Model(graph), lin, emb


def test_layer_ops_decompose_and_match_torch() -> None:
    model, lin, emb = _layers_model()
    ids = RNG.integers(0, 10, (2, 3)).astype(np.int64)
    img = RNG.standard_normal((1, 2, 8, 8)).astype(np.float32)
    with torch.no_grad():
        expected = {
            "y": _np(lin(emb(torch.from_numpy(ids)))),
            "p": _np(torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(img), (2, 4))),
            "g": _np(torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(img), 1)),
        }
    proto = to_onnx(model)
    onnx.checker.check_model(proto)
    assert {"Embedding", "Linear", "AdaptiveAveragePool"}.isdisjoint({n.op_type for n in proto.graph.node})
    assert len(proto.graph.initializer) == 3  # embedding table, fc weight (transposed once), fc bias
    got = _ort(proto, {"ids": ids, "img": img})
    for name, e in expected.items():
        np.testing.assert_allclose(got[name], e, rtol=1e-5, atol=1e-6)


def test_non_uniform_adaptive_pool_is_refused() -> None:
    node = Node("pool", "AdaptiveAveragePool", ["img"], ["p"], {"output_size": [3, 3]})
    graph = Graph([node], [TensorInfo("img", "float32", [1, 2, 8, 8])], [TensorInfo("p", "float32")])
    with pytest.raises(ConversionError, match=r"node 'pool' \(AdaptiveAveragePool\).*uniform bins"):
        to_onnx(Model(graph))


def _mha_model(mha, causal: int):
    E = mha.embed_dim
    w, b = _np(mha.in_proj_weight), _np(mha.in_proj_bias)
    weights = {
        "q_weight": w[:E], "k_weight": w[E : 2 * E], "v_weight": w[2 * E :],
        "q_bias": b[:E], "k_bias": b[E : 2 * E], "v_bias": b[2 * E :],
        "out_weight": _np(mha.out_proj.weight), "out_bias": _np(mha.out_proj.bias),
    }  # fmt: skip
    inputs = ["q", "k", "v", "mask", "pad"]
    node = Node(
        "attn", "MultiHeadAttention", inputs, ["y", "w"], {"num_heads": mha.num_heads, "causal": causal}, weights
    )
    infos = [TensorInfo(n, "float32", ["batch", "len", E]) for n in "qkv"]
    infos += [TensorInfo("mask", "bool", [None, None]), TensorInfo("pad", "bool", ["batch", "len"])]
    return Model(Graph([node], infos, [TensorInfo("y", "float32"), TensorInfo("w", "float32")]))


@pytest.mark.parametrize("causal", [0, 1])
def test_multi_head_attention_matches_torch(causal: int) -> None:
    torch.manual_seed(1)
    mha = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
    N, L = 2, 5
    q, k, v = (RNG.standard_normal((N, L, 16)).astype(np.float32) for _ in range(3))
    mask = RNG.random((L, L)) < 0.3
    np.fill_diagonal(mask, False)  # no query loses every key (PyTorch would give NaN there)
    pad = np.zeros((N, L), dtype=bool)
    pad[1, -2:] = True
    torch_mask = mask | np.triu(np.ones((L, L), dtype=bool), 1) if causal else mask
    with torch.no_grad():
        y, w = mha(*(torch.from_numpy(a) for a in (q, k, v)), key_padding_mask=torch.from_numpy(pad),
                   attn_mask=torch.from_numpy(torch_mask), average_attn_weights=False)  # fmt: skip
    model = _mha_model(mha, causal)
    feeds = {"q": q, "k": k, "v": v, "mask": mask, "pad": pad}
    got = _ort(to_onnx(model), feeds)
    np.testing.assert_allclose(got["y"], _np(y), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["w"], _np(w), rtol=1e-4, atol=1e-6)
    k5_out = run(model, feeds)
    np.testing.assert_allclose(k5_out["y"], _np(y), rtol=1e-4, atol=1e-5)


def test_opset_choice_and_refusal() -> None:
    model, *_ = _layers_model()
    assert to_onnx(model).opset_import[0].version == exporter.EXPORT_FLOOR_OPSET
    assert to_onnx(model, opset=21).opset_import[0].version == 21
    graph = Graph(
        [Node("dft", "DFT", ["x", "", "axis"], ["y"])],
        [TensorInfo("x", "float32", [1, 8, 1]), TensorInfo("axis", "int64", [])],
        [TensorInfo("y", "float32")],
    )
    with pytest.raises(ConversionError, match=r"DFT \(>= 20\)"):
        to_onnx(Model(graph), opset=19)


def test_external_data_beyond_threshold(tmp_path, monkeypatch) -> None:
    model, *_ = _layers_model()
    monkeypatch.setattr(writer, "EXTERNAL_DATA_THRESHOLD", 100)
    proto = to_onnx(model)
    path = tmp_path / "m.onnx"
    save_onnx(proto, path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[0] == "m.onnx" and re.fullmatch(r"m\.onnx\.[0-9a-f]{8}\.data", names[1]), names
    assert (tmp_path / names[1]).stat().st_size > 100
    # saving again writes a new data file before switching the .onnx over, then removes the old one
    save_onnx(proto, path)
    again = sorted(p.name for p in tmp_path.iterdir())
    assert len(again) == 2 and again[1] != names[1], again
    loaded = onnx.load(str(path))
    assert any(
        t.data_location == onnx.TensorProto.EXTERNAL
        for t in onnx.load(str(path), load_external_data=False).graph.initializer
    )
    feeds = {"ids": np.array([[1, 2, 3]], np.int64), "img": RNG.standard_normal((1, 2, 8, 8)).astype(np.float32)}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(["y"], feeds)[0], _ort(loaded, feeds)["y"])
    assert len(proto.graph.initializer[0].raw_data) > 0  # the in-memory model is left as it was
