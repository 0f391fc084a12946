"""The four test networks of the Torch7 tests, built in PyTorch with fixed seeds (no downloads)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    """Fixed-seed weights everywhere, and BatchNorm statistics/affine terms away from their identity defaults."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5)
    return module.eval()


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(20, 32), nn.Linear(32, 24), nn.Linear(24, 10)
        self.bn = nn.BatchNorm1d(32)
        self.drop = nn.Dropout(0.3)
        self.prelu = nn.PReLU(24)
        self.elu = nn.ELU(0.8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(torch.tanh(self.bn(self.fc1(x))))
        y = self.prelu(self.elu(self.fc2(y)))
        return torch.log_softmax(self.fc3(torch.sigmoid(y) * 2.0), dim=1)


class LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16)
        self.pool1 = nn.MaxPool2d(2)
        self.pool2 = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.fc1, self.fc2 = nn.Linear(16 * 6 * 6, 64), nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool1(torch.relu(self.bn1(self.conv1(x))))
        y = self.pool2(torch.relu(self.bn2(self.conv2(y))))
        y = torch.relu(self.fc1(torch.flatten(y, 1)))
        return torch.softmax(self.fc2(y), dim=1)


class ResNet(nn.Module):
    """A stem, two residual blocks (ConcatTable + CAddTable in Lua) and a two-branch concat (JoinTable)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.a1, self.abn, self.a2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, padding=1)
        self.b1, self.b2 = nn.Conv2d(8, 8, 3, padding=2, dilation=2), nn.Conv2d(8, 8, 1)
        self.left, self.right = nn.Conv2d(8, 4, 1), nn.Conv2d(8, 6, 3, padding=1)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.fc = nn.Linear(10 * 5 * 5, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.stem(x)))
        y = torch.relu(y + self.a2(torch.relu(self.abn(self.a1(y)))))
        y = torch.relu(self.b2(torch.relu(self.b1(y))) + y)
        y = torch.cat([self.left(y), torch.relu(self.right(y))], dim=1)
        return self.fc(torch.flatten(self.pool(y), 1))


class EncoderDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.e1, self.ebn = nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8)
        self.e2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.d1 = nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.pad = nn.ReflectionPad2d(1)
        self.out = nn.Conv2d(8, 3, 3)
        self.zpad = nn.ZeroPad2d((1, 1, 2, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.ebn(self.e1(x)))
        y = torch.relu(self.e2(y))
        y = torch.relu(self.d1(y))
        y = self.out(self.pad(self.up(y)))
        return torch.tanh(self.zpad(y))


NETS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "mlp": (MLP, (4, 20)),
    "lenet": (LeNet, (2, 1, 28, 28)),
    "resnet": (ResNet, (2, 3, 9, 9)),
    "encdec": (EncoderDecoder, (2, 3, 16, 16)),
}


def build(name: str) -> tuple[nn.Module, Any]:
    """The network and its input, both from fixed seeds."""
    make, shape = NETS[name]
    torch.manual_seed(7)
    module = _randomise(make(), seed=11)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    return module, x
