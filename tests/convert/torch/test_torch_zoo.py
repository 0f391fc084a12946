"""The model zoo through every path, each compared with the original PyTorch module (the oracle):

- ``torch``: torch -> k5 -> file -> k5 -> torch (``to_torch`` of the loaded file),
- ``runtime``: torch -> k5 -> the NumPy reference runtime,
- ``onnx``: torch -> k5 -> ONNX -> onnxruntime,
- ``train``: the round-tripped module trains (one optimizer step changes its loss),
all within 1e-4 (float32) of the original.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_close, converted
from torch_zoo import ZOO

import k5

NAMES = sorted(ZOO)


@pytest.mark.parametrize("name", NAMES)
def test_torch_roundtrip_through_file(name: str, tmp_path) -> None:
    from k5.convert.torch import to_torch

    _, inputs, model, ref = converted(name)
    path = tmp_path / f"{name}.k5"
    k5.save(model, path)
    with k5.load(path) as loaded:
        module = to_torch(loaded)
    with torch.no_grad():
        out = module(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    assert len(outs) == len(ref)
    for got, want in zip(outs, ref, strict=True):
        assert_close(got.numpy(), want)


@pytest.mark.parametrize("name", NAMES)
def test_k5_runtime(name: str) -> None:
    _, inputs, model, ref = converted(name)
    out = k5.run(model, [x.numpy() for x in inputs])
    for info, want in zip(model.graph.outputs, ref, strict=True):
        assert_close(out[info.name], want)


@pytest.mark.parametrize("name", NAMES)
def test_onnxruntime(name: str) -> None:
    ort = pytest.importorskip("onnxruntime", reason="the ONNX path needs onnxruntime")
    _, inputs, model, ref = converted(name)
    proto = k5.to_onnx(model)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {t.name: x.numpy() for t, x in zip(model.graph.inputs, inputs, strict=True)})
    for got, want in zip(outs, ref, strict=True):
        assert_close(got, want)


@pytest.mark.parametrize("name", NAMES)
def test_validation_pair_recorded(name: str) -> None:
    _, inputs, model, ref = converted(name)
    assert model.validation is not None
    for info, x in zip(model.graph.inputs, inputs, strict=True):
        np.testing.assert_array_equal(model.validation.inputs[info.name], x.numpy())
    for info, want in zip(model.graph.outputs, ref, strict=True):
        np.testing.assert_array_equal(model.validation.outputs[info.name], want)


@pytest.mark.parametrize("name", NAMES)
def test_roundtripped_module_trains(name: str) -> None:
    from k5.convert.torch import to_torch

    _, inputs, model, _ = converted(name)
    module = to_torch(model)
    params = [p for p in module.parameters() if p.requires_grad]
    assert params, "no trainable parameters"
    opt = torch.optim.SGD(params, lr=0.1)
    module.train()

    def loss() -> torch.Tensor:
        out = module(*inputs)
        outs = out if isinstance(out, tuple) else (out,)
        return sum((o.float() ** 2).mean() for o in outs)

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    after = loss()
    assert after.item() != pytest.approx(before.item(), rel=1e-6, abs=0.0)
