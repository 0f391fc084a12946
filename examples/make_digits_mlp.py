"""Make examples/digits_mlp.k5: a small MLP trained with NumPy on scikit-learn's bundled digits.

    python examples/make_digits_mlp.py            # needs scikit-learn (only this script does)

The file carries everything the format offers: metadata, the network, per-layer weights, a validation pair (inputs
and the probabilities NumPy computed for them, independently of k5's runtime), and the training and evaluation
splits with their labels.
"""

from __future__ import annotations

import sys

import numpy as np


def train(x: np.ndarray, y: np.ndarray, *, hidden: int = 32, epochs: int = 60, lr: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((hidden, x.shape[1])) * np.sqrt(2 / x.shape[1])).astype(np.float32)
    b1 = np.zeros(hidden, np.float32)
    w2 = (rng.standard_normal((10, hidden)) * np.sqrt(1 / hidden)).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    onehot = np.eye(10, dtype=np.float32)[y]
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(x)), len(x) // 32):
            xb, tb = x[idx], onehot[idx]
            h = np.maximum(xb @ w1.T + b1, 0)
            logits = h @ w2.T + b2
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            g = (p - tb) / len(idx)
            gh = (g @ w2) * (h > 0)
            w2 -= lr * g.T @ h
            b2 -= lr * g.sum(0)
            w1 -= lr * gh.T @ xb
            b1 -= lr * gh.sum(0)
    return w1, b1, w2, b2


def forward(x: np.ndarray, w1, b1, w2, b2) -> np.ndarray:
    logits = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
    p = np.exp(logits - logits.max(1, keepdims=True))
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def main(out: str = "examples/digits_mlp.k5") -> None:
    from sklearn.datasets import load_digits

    import k5
    from k5 import DataSplit, Graph, Metadata, Model, Node, TensorInfo, ValidationPair

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(1).permutation(len(x))
    train_idx, test_idx = order[:1400], order[1400:]
    w1, b1, w2, b2 = train(x[train_idx], y[train_idx])
    acc = float((forward(x[test_idx], w1, b1, w2, b2).argmax(1) == y[test_idx]).mean())

    graph = Graph(
        nodes=[
            Node("fc1", "Linear", ["pixels"], ["fc1"], weights={"weight": w1, "bias": b1}),
            Node("relu", "Relu", ["fc1"], ["relu"]),
            Node("fc2", "Linear", ["relu"], ["logits"], weights={"weight": w2, "bias": b2}),
            Node("softmax", "Softmax", ["logits"], ["probabilities"], attrs={"axis": -1}),
        ],
        inputs=[TensorInfo("pixels", "float32", ["batch", 64])],
        outputs=[TensorInfo("probabilities", "float32", ["batch", 10])],
        name="digits_mlp",
    )
    sample = x[test_idx[:8]]
    model = Model(
        graph,
        metadata=Metadata(
            author="k5 examples",
            description=f"64-32-10 MLP on scikit-learn's 8x8 digits (pixels scaled to [0, 1]); test accuracy {acc:.3f}",
            license="CC0-1.0",
            extra={"dataset": "sklearn.datasets.load_digits", "classes": "0-9"},
        ),
        validation=ValidationPair({"pixels": sample}, {"probabilities": forward(sample, w1, b1, w2, b2)}),
        training=DataSplit(x[train_idx], y[train_idx]),
        evaluate=DataSplit(x[test_idx], y[test_idx]),
    )
    k5.save(model, out, compression="gzip")
    print(f"wrote {out}: test accuracy {acc:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
