"""Dynamic shapes: export with a symbolic batch (torch.export.Dim), run with another batch size everywhere."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close
from torch.export import Dim
from torch_zoo import build

import k5

CASES = {
    "mlp": ({0: Dim("batch")},),
    "lenet": ({0: Dim("batch")},),
    "gpt_block": ({0: Dim("batch"), 1: Dim("seq", max=15)},),
    "lstm_bf_bidir_2l": ({0: Dim("batch")},),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dynamic_batch(name: str) -> None:
    from k5.convert.torch import from_torch, to_torch

    module, (x,) = build(name)
    model = from_torch(module, (x,), dynamic_shapes=CASES[name])
    assert model.graph.inputs[0].shape[0] == "batch"
    if name == "gpt_block":
        assert model.graph.inputs[0].shape[1] == "seq"
        other = torch.randint(0, 50, (3, 7), generator=torch.Generator().manual_seed(5))
    else:
        shape = list(x.shape)
        shape[0] = 5
        other = torch.randn(shape, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = module(other)
        want = (out[0] if isinstance(out, tuple) else out).numpy()
        got = to_torch(model)(other)
        got = (got[0] if isinstance(got, tuple) else got).numpy()
    assert_close(got, want)
    runtime = k5.run(model, [other.numpy()])
    assert_close(runtime[model.graph.outputs[0].name], want)
    ort = pytest.importorskip("onnxruntime", reason="the ONNX leg needs onnxruntime")
    sess = ort.InferenceSession(k5.to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
    assert_close(sess.run(None, {model.graph.inputs[0].name: other.numpy()})[0], want)
