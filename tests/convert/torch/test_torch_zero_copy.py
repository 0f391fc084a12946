"""k5.to_torch hands memory-mapped weights to torch without copying them (a private copy-on-write map of the
file), and training the resulting module never writes the file nor what k5.run reads from the same loaded model."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import assert_close

import k5
from k5.convert.torch import from_torch, to_torch


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 6 * 6, 5)

    def forward(self, x: Any) -> Any:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mapped_files(ptr: int) -> list[str]:
    """The path of every /proc/self/maps entry containing address ``ptr``."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= ptr < hi:
                out.append(fields[5].strip() if len(fields) > 5 else "")
    return out


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, Net, torch.Tensor]:
    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(2, 3, 6, 6)
    path = tmp_path / "net.k5"
    k5.save(from_torch(net, (x,)), path)
    return path, net, x


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc/self/maps to see mappings")
def test_weights_are_shared_with_the_file_not_copied(saved: tuple[Path, Net, torch.Tensor]) -> None:
    path, _, _ = saved
    with k5.load(path) as model:
        gm = to_torch(model)
        for key in ("conv.weight", "fc.weight", "fc.bias"):
            ptr = gm.state_dict()[key].data_ptr()
            assert os.path.realpath(path) in [os.path.realpath(p) for p in _mapped_files(ptr) if p], key


def test_training_never_writes_the_file_or_what_k5_run_reads(saved: tuple[Path, Net, torch.Tensor]) -> None:
    path, net, x = saved
    digest = _sha256(path)
    with torch.no_grad():
        want = net(x).numpy()
    with k5.load(path) as model:
        gm, other = to_torch(model), to_torch(model)
        gm.train()
        opt = torch.optim.SGD(gm.parameters(), lr=0.5)
        loss = gm(x).square().sum()
        loss.backward()
        opt.step()
        for key, value in net.state_dict().items():
            assert not torch.equal(gm.state_dict()[key], value), f"{key} did not train"
            assert torch.equal(other.state_dict()[key], value), f"{key} of a second to_torch changed"
        with torch.no_grad():
            assert_close(other(x).numpy(), want)
        assert_close(k5.run(model, {model.input_names()[0]: x.numpy()})[model.output_names()[0]], want)
        for value in model.weights().values():
            assert not np.asarray(value).flags.writeable  # what kernels see stays read-only
    assert _sha256(path) == digest


def test_compressed_weights_are_copied_and_still_private(saved: tuple[Path, Net, torch.Tensor], tmp_path: Path) -> None:
    path, net, x = saved
    packed = tmp_path / "packed.k5"
    k5.save(k5.load(path, lazy=False), packed, compression="gzip")
    digest = _sha256(packed)
    with k5.load(packed) as model:
        gm = to_torch(model)
        with torch.no_grad():
            for p in gm.parameters():
                p.mul_(2)
        assert_close(k5.run(model, {model.input_names()[0]: x.numpy()})[model.output_names()[0]],
                     net(x).detach().numpy())  # fmt: skip
    assert _sha256(packed) == digest


class FunctionalWeights(torch.nn.Module):
    """Weights read through F.linear (as transformers' GPT-2 Conv1D does): they become Constant nodes, not layers."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(6, 4))
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x: Any) -> Any:
        return self.fc(torch.nn.functional.linear(x, self.w))


def test_from_torch_shares_parameter_memory() -> None:
    """from_torch does not copy weights: layer weights and Constant values view the module's own tensors."""
    torch.manual_seed(0)
    module = FunctionalWeights().eval()
    model = from_torch(module, (torch.randn(2, 4),))
    const = next(nd for nd in model.graph.nodes if nd.op == "Constant" and nd.id == "w")
    layer = model.graph.node("fc")
    assert np.shares_memory(const.weights["value"], module.w.detach().numpy())
    assert np.shares_memory(layer.weights["weight"], module.fc.weight.detach().numpy())
