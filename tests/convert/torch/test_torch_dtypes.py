"""Half precision: float16 and bfloat16 weights survive torch -> k5 -> file -> k5 -> torch bit-exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import k5


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights_bit_exact(dtype: torch.dtype, tmp_path) -> None:
    from k5.convert.torch import from_torch, to_torch

    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Conv1d(4, 4, 3), nn.LayerNorm(14)).to(dtype).eval()
    with torch.no_grad():
        module[3].weight.normal_()
        module[3].bias.normal_()
    x = torch.randn(3, 4, 8, dtype=dtype)
    model = from_torch(module, (x,))
    path = tmp_path / "half.k5"
    k5.save(model, path)
    with k5.load(path) as loaded:
        assert {str(v.dtype) for v in loaded.weights().values() if v.dtype.kind == "V" or "float" in str(v.dtype)}
        back = to_torch(loaded)
    want = module.state_dict()
    got = back.state_dict()
    assert set(want) <= set(got)
    for key, w in want.items():
        g = got[key]
        assert g.dtype == dtype, key
        assert torch.equal(g.view(torch.int16), w.view(torch.int16)), f"{key} differs bitwise"
    with torch.no_grad():
        assert torch.equal(back(x), module(x))
