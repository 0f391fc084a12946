"""k5 -> Keras: ``to_keras`` builds a functional model of Keras layers holding the weights.

Oracles: Keras' own outputs (Keras -> k5 -> Keras round trip) and PyTorch's (torch -> k5 -> Keras). The result
compiles, trains, saves as ``.keras`` and reloads in a fresh process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the Keras converter tests need keras")

from keras_helpers import assert_close, converted  # noqa: E402
from keras_zoo import ZOO  # noqa: E402

import k5  # noqa: E402
from k5.convert.keras import to_keras  # noqa: E402


def _call(model, inputs: list[np.ndarray]) -> list[np.ndarray]:
    out = model(inputs[0] if len(inputs) == 1 else inputs)
    return [keras.ops.convert_to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_keras_round_trip(name: str) -> None:
    model = converted(name)
    back = to_keras(model)
    xs = [model.validation.inputs[t.name] for t in model.graph.inputs]
    for info, got in zip(model.graph.outputs, _call(back, xs), strict=True):
        assert_close(got, model.validation.outputs[info.name])


def test_round_trip_cnn_has_real_layers_and_no_transpose_pairs() -> None:
    back = to_keras(converted("cnn_bn"))
    kinds = [type(layer).__name__ for layer in back.layers]
    assert {"Conv2D", "BatchNormalization", "MaxPooling2D", "Conv2DTranspose", "Dense"} <= set(kinds)
    assert kinds.count("K5Transpose") <= 1  # only the Flatten's channels-first order (folded in the Dense)


def _torch_models():
    torch = pytest.importorskip("torch", reason="the PyTorch models need torch")
    from torch import nn

    torch.manual_seed(0)

    class Cnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.f = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2), nn.GELU(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))

        def forward(self, x):
            return self.f(x)

    class Rnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(5, 6, batch_first=True, bidirectional=True)
            self.gru = nn.GRU(12, 4, batch_first=True)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            y, _ = self.lstm(x)
            y, _ = self.gru(y)
            return self.fc(y[:, -1])

    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
            self.norm = nn.LayerNorm(8)

        def forward(self, x):
            return self.norm(x + self.mha(x, x, x, need_weights=False)[0])

    mlp = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 16), nn.SiLU(), nn.LayerNorm(16),
                        nn.Linear(16, 3), nn.Softmax(-1))
    cnn = Cnn()
    with torch.no_grad():
        bn = cnn.f[1]
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return {"mlp": (mlp, torch.randn(2, 10)), "cnn": (cnn, torch.randn(2, 3, 16, 16)),
            "rnn": (Rnn(), torch.randn(2, 7, 5)), "attention": (Attn(), torch.randn(2, 5, 8))}


@pytest.mark.parametrize("name", ["mlp", "cnn", "rnn", "attention"])
def test_torch_models_to_keras(name: str) -> None:
    import torch

    module, x = _torch_models()[name]
    module.eval()
    with torch.no_grad():
        want = module(x).numpy()
    back = to_keras(k5.from_torch(module, (x,)))
    assert_close(_call(back, [x.numpy()])[0], want)


def test_compile_fit_save_and_reload_in_fresh_process(tmp_path: Path) -> None:
    model = converted("cnn_bn")
    back = to_keras(model)
    x = model.validation.inputs["image"]
    before = _call(back, [x])[0]
    path = tmp_path / "cnn.keras"
    back.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", before)
    code = (
        "import sys, numpy as np, keras\n"
        "import k5.convert.keras.keras_layers  # registers k5's serializable layers\n"
        "m = keras.saving.load_model(sys.argv[1])\n"
        "x, y = np.load(sys.argv[2]), np.load(sys.argv[3])\n"
        "got = keras.ops.convert_to_numpy(m(x))\n"
        "assert np.abs(got - y).max() <= 1e-5 * np.abs(y).max(), np.abs(got - y).max()\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
    mlp = converted("mlp")
    trainable = to_keras(mlp)
    trainable.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    xm = mlp.validation.inputs[mlp.input_names()[0]]
    target = np.full((xm.shape[0], 5), 0.2, np.float32)
    loss0 = float(trainable.evaluate(xm, target, verbose=0))
    trainable.fit(xm, target, epochs=5, verbose=0)
    assert float(trainable.evaluate(xm, target, verbose=0)) < loss0


def test_unsupported_ops_are_listed() -> None:
    from k5.format.model import Graph, Model, Node, TensorInfo

    g = Graph([Node("d", "DFT", ["x"], ["y"]), Node("t", "TopK", ["y", "k"], ["v", "i"])],
              [TensorInfo("x", "float32", [1, 4, 2]), TensorInfo("k", "int64", [1])], [TensorInfo("v")])
    with pytest.raises(k5.K5Error, match=r"DFT \(x1\), TopK \(x1\)"):
        to_keras(Model(g))
