"""to_torch reads attribute defaults from the op registry: a node that omits an attribute gets the declared default.

The expected outputs are the ops' formulas written out in NumPy with the ONNX defaults (the oracle), so a builder
that restated a different default, or ignored the attribute, fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from math import erf

import numpy as np
import pytest
import torch

from k5.errors import AttrError
from k5.format.model import Graph, Model, Node, TensorInfo

_erf = np.vectorize(erf)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


CASES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "LeakyRelu": lambda x: np.where(x > 0, x, 0.01 * x),  # alpha=0.01
    "Elu": lambda x: np.where(x > 0, x, np.exp(x) - 1.0),  # alpha=1
    "HardSigmoid": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),  # alpha=0.2, beta=0.5
    "Gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),  # approximate="none"
    "Softmax": _softmax,  # axis=-1
    "Flatten": lambda x: x.reshape(x.shape[0], -1),  # axis=1
    "ReduceMean": lambda x: x.mean(keepdims=True),  # no axes: all, keepdims=1
}


def _run(node: Node, x: np.ndarray) -> np.ndarray:
    from k5.convert.torch import to_torch

    graph = Graph(
        nodes=[node], inputs=[TensorInfo("x", "float32", list(x.shape))], outputs=[TensorInfo("y", "float32", None)]
    )
    with torch.no_grad():
        return to_torch(Model(graph))(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("op", sorted(CASES))
def test_omitted_attributes_take_the_registry_default(op: str) -> None:
    x = np.random.default_rng(0).normal(scale=3.0, size=(2, 3, 4)).astype(np.float32)
    want = CASES[op](x.astype(np.float64))
    got = _run(Node("n", op, ["x"], ["y"]), x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


def test_an_unknown_attribute_names_the_node() -> None:
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(AttrError, match=r"node 'n' \(LeakyRelu\).*unknown attribute 'alfa'"):
        _run(Node("n", "LeakyRelu", ["x"], ["y"], {"alfa": 0.5}), x)
