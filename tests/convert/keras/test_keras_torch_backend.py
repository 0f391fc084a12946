"""The Keras converter on Keras' torch backend (a subprocess with KERAS_BACKEND=torch): from_keras on a subset of the
zoo, a masked RNN and a traced subclassed model match Keras' own outputs through the k5 runtime, and to_keras
rebuilds them on that backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("keras", reason="the Keras converter tests need keras")
pytest.importorskip("torch", reason="Keras' torch backend needs torch")

_SCRIPT = r"""
import sys
import numpy as np
import keras
assert keras.backend.backend() == "torch", keras.backend.backend()
sys.path.insert(0, sys.argv[1])
from keras_zoo import ZOO, randomize
import k5
from k5.convert.keras import from_keras, to_keras
keras.utils.set_random_seed(0)
for name in ("mlp", "cnn_bn", "separable", "rnn", "transformer", "text_classifier"):
    m = randomize(ZOO[name](keras))
    model = from_keras(m)
    v = model.validation
    out = k5.run(model, v.inputs)
    back = to_keras(model)
    xs = [v.inputs[t.name] for t in model.graph.inputs]
    again = keras.ops.convert_to_numpy(back(xs[0] if len(xs) == 1 else xs))
    for t in model.graph.outputs:
        want = v.outputs[t.name]
        scale = max(float(np.abs(want).max()), 1e-12)
        for label, got in (("k5", out[t.name]), ("to_keras", again)):
            err = float(np.abs(got - want).max()) / scale
            assert err <= 1e-4, (name, label, err)
    print(name, "ok")

# a masked Embedding -> bidirectional LSTM and a traced subclassed model, against Keras on this backend
from test_keras_masking import IDS, _embedding_rnn
from test_keras_subclassed import ConvNet, _randomize
masked = _embedding_rnn("LSTM", True, True)
x = np.random.default_rng(1).standard_normal((2, 8, 8, 3)).astype("float32")
sub = ConvNet()
sub(x)
_randomize(sub)
for name, m, inp in (("masked", masked, IDS), ("subclassed", sub, x)):
    want = keras.ops.convert_to_numpy(m(inp))
    model = from_keras(m, inp)
    got = k5.run(model, [inp])[model.graph.outputs[0].name]
    again = keras.ops.convert_to_numpy(to_keras(model)(inp))
    scale = max(float(np.abs(want).max()), 1e-12)
    for label, out in (("k5", got), ("to_keras", again)):
        err = float(np.abs(out - want).max()) / scale
        assert err <= 1e-4, (name, label, err)
    print(name, "ok")
"""


def test_torch_backend_subset(tmp_path: Path) -> None:
    here = str(Path(__file__).parent)
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", _SCRIPT, here], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.count(" ok") == 8
