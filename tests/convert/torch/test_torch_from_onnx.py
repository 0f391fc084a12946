"""to_torch runs k5 models that came from ONNX (torch.onnx.export -> k5.from_onnx -> to_torch), checked against
the original PyTorch module and onnxruntime on the same inputs."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from conftest import assert_close
from torch import nn

import k5

onnx = pytest.importorskip("onnx", reason="these tests need onnx")
ort = pytest.importorskip("onnxruntime", reason="these tests need onnxruntime")


class ViewNet(nn.Module):
    """Dynamic flatten through x.size(0): ONNX writes Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(torch.relu(self.bn(self.conv(x))))
        return torch.softmax(self.fc(y.view(y.size(0), -1)), dim=-1)


class SeqNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(6, 8, num_layers=1, bidirectional=True)
        self.norm = nn.LayerNorm(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return self.norm(y)


def _onnx(module: nn.Module, x: torch.Tensor, dynamic: dict[str, dict[int, str]] | None) -> bytes:
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), f, dynamo=False, input_names=["x"], output_names=["y"], dynamic_axes=dynamic)
    return f.getvalue()


@pytest.mark.parametrize(
    ("make", "shape", "run_shape", "dynamic"),
    [
        (ViewNet, (2, 3, 16, 16), (5, 3, 16, 16), {"x": {0: "batch"}, "y": {0: "batch"}}),
        (SeqNet, (7, 2, 6), (7, 2, 6), None),
    ],
)
def test_onnx_model_runs_in_torch(make, shape, run_shape, dynamic) -> None:
    from k5.convert.torch import to_torch

    torch.manual_seed(0)
    module = make().eval()
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    data = _onnx(module, torch.randn(shape), dynamic)
    model = k5.from_onnx(onnx.load_from_string(data))
    converted = to_torch(model)
    x = torch.randn(run_shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = module(x).numpy()
        got = converted(x).numpy()
    assert_close(got, want)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert_close(got, sess.run(None, {"x": x.numpy()})[0])
    assert all(isinstance(v, torch.Tensor) for v in converted.state_dict().values())
    assert any(isinstance(m, (nn.Conv2d, nn.LSTM)) for m in converted.modules())
    np.testing.assert_equal(converted.training, False)
