"""The PyTorch zoo (``tests/convert/torch/torch_zoo.py``) through torch -> k5 -> Keras (``from_torch`` then
``to_keras``), each output compared with the torch module's own (the oracle) within 1e-4 of its scale.

Zoo models ``to_keras`` cannot build are listed in :data:`NOT_BUILT` with the reason; the test expects the refusal
(a ``K5Error``), so a model that starts converting must be moved out of the table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch zoo needs torch")
keras = pytest.importorskip("keras", reason="to_keras needs Keras")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "torch"))
from keras_helpers import assert_close  # noqa: E402
from torch_zoo import ZOO, build  # noqa: E402

import k5  # noqa: E402
from k5.convert.keras import to_keras  # noqa: E402
from k5.errors import K5Error  # noqa: E402

#: zoo model -> why to_keras refuses it (none today; a model that stops converting must be listed with its reason)
NOT_BUILT: dict[str, str] = {}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_torch_zoo_to_keras(name: str) -> None:
    module, inputs = build(name)
    with torch.no_grad():
        want = [t.numpy() for t in torch.utils._pytree.tree_leaves(module(*inputs))]
    model = k5.from_torch(module, inputs)
    if name in NOT_BUILT:
        with pytest.raises(K5Error):
            to_keras(model)
        return
    back = to_keras(model)
    xs = [x.numpy() for x in inputs]
    out = back(xs[0] if len(xs) == 1 else xs)
    got = [keras.ops.convert_to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert np.abs(w).max() > 0, "the reference output carries no signal"
        assert_close(g, w)


def test_functional_zoo_model_saves_and_reloads(tmp_path: Path) -> None:
    """The ATen-level model (Split, Where with constant operands, Greater, weightless LayerNorm) as a .keras file."""
    module, inputs = build("functional")
    with torch.no_grad():
        want = module(*inputs).numpy()
    path = tmp_path / "functional.keras"
    to_keras(k5.from_torch(module, inputs)).save(path)
    reloaded = keras.saving.load_model(path)  # k5's layers are registered by importing k5.convert.keras
    assert_close(keras.ops.convert_to_numpy(reloaded(inputs[0].numpy())), want)


@pytest.mark.parametrize(("kind", "batch_first"), [("GRU", True), ("RNN", False)])
def test_gru_and_rnn_initial_state_to_keras(kind: str, batch_first: bool) -> None:
    """GRU/RNN fed an initial state (the zoo covers the LSTM): Keras' initial_state per direction, both layouts."""
    from torch import nn

    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = getattr(nn, kind)(4, 6, bidirectional=True, batch_first=batch_first)

        def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            return self.rnn(x, h)[0]

    module = Net().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn((2, 5, 4) if batch_first else (5, 2, 4), generator=g)
    h = torch.randn(2, 2, 6, generator=g)
    with torch.no_grad():
        want = module(x, h).numpy()
    back = to_keras(k5.from_torch(module, (x, h)))
    assert_close(keras.ops.convert_to_numpy(back([x.numpy(), h.numpy()])), want)
