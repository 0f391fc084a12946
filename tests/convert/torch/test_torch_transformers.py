"""A zoo of ``transformers`` models (see ``hf_zoo``) through every path, exported with a dynamic batch and sequence
length and checked at another size than the one exported, against the original module (the oracle):

- ``runtime``: torch -> k5 -> the NumPy reference runtime,
- ``torch``: torch -> k5 -> ``to_torch``,
- ``onnx``: torch -> k5 -> ONNX -> onnxruntime,

each within 1e-4 relative to the output's scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from conftest import assert_close
from hf_zoo import HF_ZOO, build_hf

import k5

_CACHE: dict[tuple[str, int], Any] = {}


def _converted(name: str, scale: int = 1) -> Any:
    """(k5 model, inputs at the other size, reference outputs by output name) for zoo model ``name``."""
    if (name, scale) not in _CACHE:
        from k5.convert.torch import from_torch

        module, example, dyn, other = build_hf(name, scale)
        model = from_torch(module, example, dynamic_shapes=dyn)
        with torch.no_grad():
            out = module(**other) if isinstance(other, dict) else module(*other)
        ref = [t.numpy() for t in torch.utils._pytree.tree_leaves(out)]
        other = tuple(other.values()) if isinstance(other, dict) else other
        _CACHE[(name, scale)] = (model, other, ref)
    return _CACHE[(name, scale)]


def _check(name: str, path: str, scale: int = 1) -> None:
    model, other, ref = _converted(name, scale)
    feeds = {t.name: x.numpy() for t, x in zip(model.graph.inputs, other, strict=True)}
    if path == "runtime":
        out = k5.run(model, feeds)
        got = [out[t.name] for t in model.graph.outputs]
    elif path == "torch":
        from k5.convert.torch import to_torch

        with torch.no_grad():
            res = to_torch(model)(*other)
        got = [t.numpy() for t in (res if isinstance(res, tuple) else (res,))]
    else:
        ort = pytest.importorskip("onnxruntime", reason="the ONNX path needs onnxruntime")
        sess = ort.InferenceSession(k5.to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(None, feeds)
    assert len(got) == len(ref)
    for g, want in zip(got, ref, strict=True):
        assert np.abs(want).max() > 0, "the reference carries no signal"
        assert_close(g, want, atol=np.inf)


@pytest.mark.parametrize("path", ["runtime", "torch", "onnx"])
@pytest.mark.parametrize("name", sorted(HF_ZOO))
def test_transformers_zoo(name: str, path: str) -> None:
    _check(name, path)


OUTPUT_NAMES = {
    "bert": ["last_hidden_state", "pooler_output"],
    "gpt2": ["logits"],
    "llama": ["logits"],
    "t5_encoder": ["last_hidden_state"],
    "vit": ["last_hidden_state", "pooler_output"],
    "bert_padded": ["last_hidden_state", "pooler_output"],
    "llama_padded": ["logits"],
    "t5_encoder_padded": ["last_hidden_state"],
    "gpt2_padded": ["logits"],
}


@pytest.mark.parametrize("name", sorted(HF_ZOO))
def test_outputs_are_named_by_model_output_fields(name: str) -> None:
    model, _, _ = _converted(name)
    assert [t.name for t in model.graph.outputs] == OUTPUT_NAMES[name]
    if name.endswith("_padded"):
        assert [t.name for t in model.graph.inputs] == ["input_ids", "attention_mask"]
    assert model.graph.inputs[0].shape is not None and model.graph.inputs[0].shape[0] == "batch"


@pytest.mark.slow
@pytest.mark.parametrize("path", ["runtime", "torch", "onnx"])
@pytest.mark.parametrize("name", sorted(HF_ZOO))
def test_transformers_zoo_larger(name: str, path: str) -> None:
    _check(name, path, scale=2)
