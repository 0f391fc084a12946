"""from_torch's defaults: a dynamic ``batch`` dimension (static, with a warning, where torch.export cannot keep it),
and output names taken from the module's output structure. Oracle: the PyTorch module itself."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import pytest
import torch
from conftest import assert_close
from torch import nn

import k5


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


def test_batch_is_dynamic_by_default() -> None:
    from k5.convert.torch import from_torch, to_torch

    module = _mlp()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = from_torch(module, (torch.randn(4, 6),))
    assert model.graph.inputs[0].shape == ["batch", 6]
    assert model.graph.outputs[0].shape == ["batch", 3]
    x = torch.randn(1, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = module(x).numpy()
        assert_close(to_torch(model)(x).numpy(), want)
    assert_close(k5.run(model, {"input": x.numpy()})["output"], want)


class FixedBatch(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(4, 3, 2).sum(-1)  # the batch is baked into the reshape


def test_batch_falls_back_to_static_with_a_warning() -> None:
    from k5.convert.torch import from_torch

    with pytest.warns(UserWarning, match=r"FixedBatch: the batch dimension stays static \(.*specialized"):
        model = from_torch(FixedBatch(), (torch.randn(4, 6),))
    assert model.graph.inputs[0].shape == [4, 6]
    x = torch.randn(4, 6)
    assert_close(k5.run(model, [x.numpy()])["output"], FixedBatch()(x).numpy())


def test_an_example_batch_of_one_stays_static_with_a_warning() -> None:
    from k5.convert.torch import from_torch

    with pytest.warns(UserWarning, match=r"batch size is 1.*batch of 2 or more"):
        model = from_torch(_mlp(), (torch.randn(1, 6),))
    assert model.graph.inputs[0].shape == [1, 6]


def test_dynamic_batch_false_keeps_sizes_static() -> None:
    from k5.convert.torch import from_torch

    model = from_torch(_mlp(), (torch.randn(4, 6),), dynamic_batch=False)
    assert model.graph.inputs[0].shape == [4, 6]


def test_inputs_of_another_leading_size_stay_static() -> None:
    from k5.convert.torch import from_torch

    class AddRow(nn.Module):
        def forward(self, x: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
            return x + row.sum(0)

    model = from_torch(AddRow(), (torch.randn(4, 6), torch.randn(2, 6)))
    assert [t.shape for t in model.graph.inputs] == [["batch", 6], [2, 6]]


class Pair(NamedTuple):
    mean: torch.Tensor
    spread: torch.Tensor


class Structured(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> object:
        y = self.fc(x)
        if self.kind == "dict":
            return {"logits": y, "aux": (y.relu(), y.sigmoid())}
        if self.kind == "namedtuple":
            return Pair(y.mean(-1), y.amax(-1))
        if self.kind == "tuple":
            return y, y * 2
        return y


@pytest.mark.parametrize(
    ("kind", "names"),
    [
        ("dict", ["logits", "aux.0", "aux.1"]),
        ("namedtuple", ["mean", "spread"]),
        ("tuple", ["output_0", "output_1"]),
        ("tensor", ["output"]),
    ],
)
def test_output_names_follow_the_output_structure(kind: str, names: list[str]) -> None:
    from k5.convert.torch import from_torch

    torch.manual_seed(0)
    module = Structured(kind).eval()
    x = torch.randn(3, 6)
    model = from_torch(module, (x,))
    assert [t.name for t in model.graph.outputs] == names
    with torch.no_grad():
        ref = torch.utils._pytree.tree_leaves(module(x))
    out = k5.run(model, [x.numpy()])
    for name, want in zip(names, ref, strict=True):
        assert_close(out[name], want.numpy())


def test_output_names_argument_wins() -> None:
    from k5.convert.torch import from_torch

    model = from_torch(Structured("dict").eval(), (torch.randn(3, 6),), output_names=["a", "b", "c"])
    assert [t.name for t in model.graph.outputs] == ["a", "b", "c"]


def test_keyword_inputs_are_named_and_batched() -> None:
    from k5.convert.torch import from_torch

    class Masked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(6, 3)

        def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, scale: float = 1.0) -> torch.Tensor:
            y = self.fc(x) * scale
            return y if mask is None else y * mask

    torch.manual_seed(0)
    module = Masked().eval()
    g = torch.Generator().manual_seed(1)
    model = from_torch(module, {"mask": torch.rand(4, 3, generator=g), "x": torch.randn(4, 6, generator=g)})
    assert [(t.name, t.shape) for t in model.graph.inputs] == [("mask", ["batch", 3]), ("x", ["batch", 6])]
    x, mask = torch.randn(2, 6, generator=g), torch.rand(2, 3, generator=g)
    with torch.no_grad():
        want = module(x, mask=mask).numpy()
    assert_close(k5.run(model, {"x": x.numpy(), "mask": mask.numpy()})["output"], want)
