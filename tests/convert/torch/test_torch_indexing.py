"""Indexing ATen ops that transformers' mask code uses: advanced indexing, gather, diff, ``&``; oracle: PyTorch."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from conftest import assert_close

import k5

CASES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "index_leading": lambda x, i: x[i],
    "index_middle": lambda x, i: x[:, i],
    "index_pair_broadcast": lambda x, i: x[i.unsqueeze(-1), i[:2].unsqueeze(0)],
    "index_split_axes": lambda x, i: x[i, :, i],
    "index_negative": lambda x, i: x[:, i - 3],
    "gather": lambda x, i: torch.gather(x, 1, i.view(1, 3, 1).expand(4, 3, 5)),
    "diff": lambda x, i: torch.diff(x, dim=1) + torch.diff(i, prepend=i[:1]).float().sum(),
    "and": lambda x, i: ((x > 0) & (x < 1)).float() + ((i & 1) | 4).float().sum(),
}


class Wrap(torch.nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return self.fn(x, i)


@pytest.mark.parametrize("name", sorted(CASES))
def test_indexing_op(name: str) -> None:
    from k5.convert.torch import from_torch, to_torch

    g = torch.Generator().manual_seed(0)
    x, i = torch.randn(4, 3, 5, generator=g), torch.tensor([2, 0, 1])
    module = Wrap(CASES[name])
    model = from_torch(module, (x, i), dynamic_batch=False)
    with torch.no_grad():
        want = module(x, i).numpy()
        got = to_torch(model)(x, i).numpy()
    assert_close(got, want)
    assert_close(k5.run(model, [x.numpy(), i.numpy()])[model.graph.outputs[0].name], want)
