"""Constant folding meets converted layers: a layer called on values known at export time (T5's relative position
bias: an ``nn.Embedding`` on an ``arange``) stays a k5 layer, and the ATen ops that read its output are converted
rather than evaluated on the layer's name (issue 8: ``aten::permute() Expected a value of type 'Tensor' ... 'str'``).
"""

from __future__ import annotations

import torch
from conftest import assert_close
from torch import nn

import k5


class PositionBias(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Embedding(16, 4)
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(8)
        b = self.bias(pos).permute(1, 0).to(x.dtype).unsqueeze(0)  # [1, 4, 8], known at export time
        return self.proj(x) + b.mean(1, keepdim=True) + torch.cumsum(pos > 3, 0)


def test_ops_on_a_constant_layer_output_are_converted() -> None:
    from k5.convert.torch import from_torch, to_torch

    torch.manual_seed(0)
    module = PositionBias().eval()
    x = torch.randn(2, 3, 8)
    model = from_torch(module, (x,))
    assert any(nd.id == "bias" and nd.op == "Embedding" for nd in model.graph.nodes)
    x2 = torch.randn(5, 3, 8)  # another batch: dynamic by default
    with torch.no_grad():
        want = module(x2).numpy()
        got = to_torch(model)(x2)
    assert_close(got.numpy(), want)
    assert_close(k5.run(model, [x2.numpy()])[model.graph.outputs[0].name], want)
