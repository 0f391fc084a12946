"""Layer structure: node ids follow module paths, one node per layer owning its weights, state_dict keys of the
round-tripped module follow the node ids (and so the original module), and the op-support table."""

from __future__ import annotations

import pytest
import torch
from conftest import converted
from torch_zoo import ZOO

from k5.ops import find_schema


def test_layers_become_single_nodes_named_by_module_path() -> None:
    _, _, model, _ = converted("resnet")
    ops = {n.id: n.op for n in model.nodes}
    assert ops["layer1.0.conv1"] == "Conv"
    assert ops["layer1.0.bn1"] == "BatchNormalization"
    assert ops["layer2.0.downsample.0"] == "Conv"
    assert ops["fc"] == "Linear"
    assert set(model.graph.node("fc").weights) == {"weight", "bias"}
    assert set(model.graph.node("layer1.0.bn1").weights) == {"scale", "bias", "mean", "var"}
    _, _, gpt, _ = converted("gpt_block")
    assert gpt.graph.node("attn").op == "MultiHeadAttention"
    assert gpt.graph.node("tok").op == "Embedding"
    _, _, rnn, _ = converted("lstm_bf_bidir_2l")
    assert [n.id for n in rnn.nodes if n.op == "LSTM"] == ["rnn.l0", "rnn.l1"]


#: models whose functional code adds constants (masks, positions, folded values) as extra buffers
FUNCTIONAL = {"gpt_block", "functional"}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_state_dict_keys_follow_the_original(name: str) -> None:
    from k5.convert.torch import to_torch

    module, _, model, _ = converted(name)
    back = to_torch(model)
    want = {k: v for k, v in module.state_dict().items() if k != "mask"}  # gpt_block's mask is sliced at run time
    got = back.state_dict()
    if name in FUNCTIONAL:
        assert set(want) <= set(got)
    else:
        assert set(want) == set(got)
    for key, value in want.items():
        assert got[key].shape == value.shape, key


def test_to_torch_modules_are_real_torch_layers() -> None:
    from k5.convert.torch import to_torch

    _, _, model, _ = converted("transformer_encoder")
    back = to_torch(model)
    kinds = {type(m) for m in back.modules()}
    assert {torch.nn.Linear, torch.nn.LayerNorm, torch.nn.MultiheadAttention} <= kinds
    _, _, model, _ = converted("gru_bf_bidir_2l")
    gru = to_torch(model).get_submodule("rnn")
    assert isinstance(gru, torch.nn.GRU) and gru.num_layers == 2 and gru.bidirectional


def test_supported_table_is_generated_and_consistent() -> None:
    from k5.convert.torch import SUPPORTED

    assert "aten.linear.default" in SUPPORTED["Linear"]["export"]
    assert "torch.nn.modules.rnn.LSTM" in SUPPORTED["LSTM"]["export"]
    assert SUPPORTED["Conv"]["import"]
    unknown = [op for op in SUPPORTED if find_schema(op) is None]
    assert not unknown, f"ops in the PyTorch tables that the k5 op set lacks: {unknown}"


def test_activation_modules_keep_their_path_and_save_torch_writes_a_file(tmp_path) -> None:
    import k5
    from k5.convert.torch import save_torch

    module, inputs, _, ref = converted("mlp")
    path = tmp_path / "mlp.k5"
    model = save_torch(module, path, inputs)
    assert [(n.id, n.op) for n in model.nodes] == [
        ("fc1", "Linear"), ("act1", "Relu"), ("fc2", "Linear"), ("act2", "Gelu"), ("fc3", "Linear"),
    ]  # fmt: skip
    with k5.load(path) as loaded:
        assert loaded.validation is not None
        out = k5.run(loaded, loaded.validation.inputs)
        name = loaded.graph.outputs[0].name
        assert abs(out[name] - ref[0]).max() <= 1e-5


def test_importing_the_converter_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, k5.convert.torch as t; t.SUPPORTED; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["resnet", "transformer_encoder"])
def test_to_torch_output_exports_again(name: str) -> None:
    """The module to_torch builds is capturable by torch.export and converts back (layers recovered)."""
    import numpy as np

    import k5
    from k5.convert.torch import from_torch, to_torch

    _, inputs, model, ref = converted(name)
    again = from_torch(to_torch(model), inputs)
    out = k5.run(again, [x.numpy() for x in inputs])[again.graph.outputs[0].name]
    assert float(np.abs(out - ref[0]).max()) <= 1e-4
    assert again.graph.node("fc" if name == "resnet" else "head").op == "Linear"
