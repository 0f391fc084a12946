"""The model zoo for the PyTorch converter tests: small models built in code with fixed seeds (no downloads).

Every builder returns ``(module, example_inputs)``; the module is in eval mode, with BatchNorm statistics and every
zero-initialised parameter re-randomised so that each layer carries signal.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["ZOO", "build", "randomize"]


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Re-randomise parameters that start as constants (biases, norm scales) and BatchNorm running statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            for name, p in m.named_parameters(recurse=False):
                if p.numel() and (p == p.flatten()[0]).all():
                    p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if "weight" in name else 0.0))
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return module.eval()


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(32, 32)
        self.act2 = nn.GELU()
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))


class LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 84)
        self.fc2 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(torch.relu(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return torch.log_softmax(self.fc2(torch.tanh(self.fc1(x))), dim=-1)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + identity)


class ResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 16, 1))
        self.layer2 = nn.Sequential(BasicBlock(16, 32, 2), BasicBlock(32, 32, 1))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class DepthwiseSeparable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()]
        for cin, cout, stride in [(16, 24, 1), (24, 32, 2)]:
            layers += [
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
                nn.BatchNorm2d(cin),
                nn.ReLU6(),
                nn.Conv2d(cin, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.Hardswish(),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class RNNModel(nn.Module):
    def __init__(self, kind: str, batch_first: bool, bidirectional: bool, num_layers: int) -> None:
        super().__init__()
        cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
        self.kind = kind
        self.rnn = cls(8, 12, num_layers=num_layers, batch_first=batch_first, bidirectional=bidirectional)
        self.head = nn.Linear(12 * (2 if bidirectional else 1), 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, state = self.rnn(x)
        h_n = state[0] if self.kind == "lstm" else state
        return self.head(out), h_n


class LSTMWithState(nn.Module):
    """An LSTM fed an explicit initial state, returning every output."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(6, 10, num_layers=2, bidirectional=True)

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, (h, c) = self.lstm(x, (h0, c0))
        return out, h, c


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(dim=1))


class GPTBlock(nn.Module):
    def __init__(self, vocab: int = 50, ctx: int = 16, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(ctx, dim)
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))
        self.ln_f = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.register_buffer("mask", torch.triu(torch.ones(ctx, ctx, dtype=torch.bool), diagonal=1))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=self.mask[:t, :t], need_weights=False)[0]
        x = x + self.mlp(self.ln2(x))
        return self.lm_head(self.ln_f(x))


class AutoEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU()
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1),
            nn.LeakyReLU(0.1),
            nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class Functional(nn.Module):
    """ATen-level ops outside any layer: chunk, cat, silu, functional attention, norms, pads, where, clamp..."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(16, 16) * 0.2)
        self.scale = nn.Parameter(torch.rand(16) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = (x @ self.w).chunk(2, dim=-1)
        h = torch.cat([nn.functional.silu(a) * b, a - b], dim=-1)
        h = nn.functional.layer_norm(h, (16,)) * self.scale
        q = h.view(h.shape[0], h.shape[1], 2, 8).transpose(1, 2)
        att = nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
        h = att.transpose(1, 2).reshape(h.shape) + h
        h = torch.where(h > 0, h, 0.1 * h).clamp(-2.0, 2.0)
        h = nn.functional.pad(h.unsqueeze(1), (1, 1)).squeeze(1)
        return h.mean(dim=1, keepdim=True) + h.amax(dim=-1, keepdim=True).softmax(dim=1)


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rnn(kind: str, batch_first: bool, bidirectional: bool, layers: int) -> Callable[[], tuple]:
    def make() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        m = RNNModel(kind, batch_first, bidirectional, layers)
        shape = (3, 7, 8) if batch_first else (7, 3, 8)
        return m, (torch.randn(shape, generator=_g(1)),)

    return make


def _lstm_state() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    g = _g(1)
    return LSTMWithState(), (torch.randn(5, 2, 6, generator=g), torch.randn(4, 2, 10, generator=g),
                             torch.randn(4, 2, 10, generator=g))  # fmt: skip


#: name -> builder of (module, example inputs); builders are deterministic
ZOO: dict[str, Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...]]]] = {
    "mlp": lambda: (MLP(), (torch.randn(4, 16, generator=_g(1)),)),
    "lenet": lambda: (LeNet(), (torch.randn(2, 1, 28, 28, generator=_g(1)),)),
    "resnet": lambda: (ResNet(), (torch.randn(2, 3, 32, 32, generator=_g(1)),)),
    "depthwise": lambda: (DepthwiseSeparable(), (torch.randn(2, 3, 32, 32, generator=_g(1)),)),
    "lstm_bf_bidir_2l": _rnn("lstm", True, True, 2),
    "lstm_seq_first_1l": _rnn("lstm", False, False, 1),
    "lstm_state": _lstm_state,
    "gru_bf_bidir_2l": _rnn("gru", True, True, 2),
    "gru_seq_first_2l": _rnn("gru", False, False, 2),
    "rnn_tanh_bidir": _rnn("rnn", True, True, 1),
    "transformer_encoder": lambda: (Encoder(), (torch.randn(2, 9, 32, generator=_g(1)),)),
    "gpt_block": lambda: (GPTBlock(), (torch.randint(0, 50, (2, 11), generator=_g(1)),)),
    "autoencoder": lambda: (AutoEncoder(), (torch.randn(2, 1, 16, 16, generator=_g(1)),)),
    "functional": lambda: (Functional(), (torch.randn(2, 6, 16, generator=_g(1)),)),
}


def build(name: str) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The zoo model ``name`` with seeded weights, in eval mode, and its example inputs."""
    torch.manual_seed(0)
    module, inputs = ZOO[name]()
    return randomize(module), inputs
