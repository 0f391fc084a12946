"""Real-size reference models for tests and benchmarks: built in code with PyTorch (random weights, fixed seed) and
exported with ``torch.onnx.export``. PyTorch and onnx are imported inside the functions.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = ["REAL_MODELS", "export_onnx", "resnet18", "transformer_encoder"]


def _randomise(module: Any, seed: int) -> None:
    """Fresh random weights everywhere (BatchNorm statistics included), so every output carries signal."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            scale = 1.0 / max(1.0, float(np.sqrt(p[0].numel()))) if p.ndim > 1 else 0.1
            p.copy_(torch.randn(p.shape, generator=g) * scale + (1.0 if name.endswith("norm1.weight") else 0.0))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
        for m in module.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)


def resnet18(seed: int = 0) -> Any:
    """A ResNet-18 (11.7 M parameters, 1000 classes) in eval mode."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else None
            )

        def forward(self, x: Any) -> Any:
            y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            return self.relu(y + (self.downsample(x) if self.downsample is not None else x))

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
            for i, (cin, cout, stride) in enumerate(widths, 1):
                setattr(self, f"layer{i}", nn.Sequential(Block(cin, cout, stride), Block(cout, cout, 1)))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, 1000)

        def forward(self, x: Any) -> Any:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    model = ResNet().eval()
    _randomise(model, seed)
    return model


def transformer_encoder(seed: int = 0, d_model: int = 256, nhead: int = 8, layers: int = 4) -> Any:
    """``nn.TransformerEncoder`` (batch-first, 4 layers of d_model 256, 8 heads, feed-forward 1024) in eval mode."""
    from torch import nn

    layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=4 * d_model, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False).eval()
    _randomise(model, seed)
    return model


def export_onnx(model: Any, example: np.ndarray, dynamic: dict[int, str], opset: int = 17) -> Any:
    """``torch.onnx.export`` (TorchScript exporter) to an in-memory ``onnx.ModelProto`` with input ``x``, output
    ``y`` and the given dynamic axes."""
    import warnings

    import onnx
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.from_numpy(example),), buf, dynamo=False, input_names=["x"], output_names=["y"],
            dynamic_axes={"x": dynamic, "y": dynamic}, opset_version=opset,
        )  # fmt: skip
    return onnx.load_from_string(buf.getvalue())


#: name -> (builder, example input shape, dynamic axes)
REAL_MODELS: dict[str, tuple[Any, tuple[int, ...], dict[int, str]]] = {
    "resnet18": (resnet18, (2, 3, 224, 224), {0: "batch"}),
    "transformer_encoder": (transformer_encoder, (2, 128, 256), {0: "batch"}),
}
