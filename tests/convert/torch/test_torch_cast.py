"""dtype conversions inside a torch model become k5 Cast nodes (``to`` = k5 dtype name) that every path runs."""

from __future__ import annotations

import numpy as np
import pytest

import k5

torch = pytest.importorskip("torch", reason="the PyTorch converter needs torch")


class Casts(torch.nn.Module):
    def forward(self, x):
        mask = (x > 0).to(torch.float32)
        total = x.to(torch.float64).sum(dim=-1, keepdim=True)
        return mask * total.to(torch.float32) + x.to(torch.int64).to(torch.float32)


def test_casts_run_in_k5_and_back_in_torch():
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0)) * 3
    expected = Casts()(x).numpy()
    model = k5.from_torch(Casts(), (x,))
    casts = [n.attrs["to"] for n in model.graph.nodes if n.op == "Cast"]
    assert casts and all(isinstance(t, str) for t in casts), casts
    (out,) = k5.run(model, x.numpy()).values()
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_allclose(k5.to_torch(model)(x).detach().numpy(), expected, rtol=1e-6)
