"""The one-pass weight binding of ``k5.load``: what it returns agrees with h5py's own view of the file (the oracle),
for every dtype, nested graphs and links HDF5 lists once; what it cannot vouch for still raises the precise error."""

from __future__ import annotations

from pathlib import Path

import h5py
import ml_dtypes
import numpy as np
import pytest

import k5
from k5.errors import FormatError, WeightMismatchError
from k5.format.dtypes import from_numpy
from k5.format.hdf5 import LazyTensor, weight_paths
from k5.format.model import Graph, Model, Node, TensorInfo


def _constant(node_id: str, value: np.ndarray) -> Node:
    return Node(node_id, "Constant", [], [node_id], weights={"value": value})


def _mixed_model() -> Model:
    rng = np.random.default_rng(0)
    values = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f16": rng.standard_normal(7).astype(np.float16),
        "f64": rng.standard_normal((2, 2, 2)),
        "i64": rng.integers(-(2**40), 2**40, 5),
        "u8": rng.integers(0, 255, 6).astype(np.uint8),
        "flag": rng.random(5) > 0.5,
        "bf16": rng.standard_normal(9).astype(ml_dtypes.bfloat16),
        "scalar": np.array(1.5, np.float32),
        "empty": np.zeros((0, 3), np.float32),
    }
    nodes = [_constant(k, v) for k, v in values.items()]
    branches = {
        attr: Graph(
            [_constant(name, rng.standard_normal(4).astype(np.float32))], [], [TensorInfo(name, "float32", [4])]
        )
        for attr, name in (("then_branch", "inner_then"), ("else_branch", "inner_else"))
    }
    nodes.append(Node("branch", "If", ["cond"], ["y"], attrs=branches))
    outputs = [TensorInfo(k, from_numpy(v.dtype), list(v.shape)) for k, v in values.items()]
    return Model(Graph(nodes, [TensorInfo("cond", "bool", [])], [*outputs, TensorInfo("y", "float32", [4])]))


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_bound_weights_agree_with_h5py(tmp_path: Path, compression: str | None) -> None:
    model = _mixed_model()
    path = tmp_path / "mixed.k5"
    k5.save(model, path, compression=compression)
    saved = {h5path: node.weights[param] for h5path, node, param in weight_paths(model.graph)}
    with k5.load(path) as loaded, h5py.File(path, "r", locking=False) as f:
        bound = {h5path: node.weights[param] for h5path, node, param in weight_paths(loaded.graph)}
        assert bound.keys() == saved.keys()
        for h5path, t in bound.items():
            assert isinstance(t, LazyTensor), h5path
            ds = f[h5path]
            assert t.shape == ds.shape, h5path
            want = saved[h5path]
            assert t.dtype == want.dtype, h5path
            got = np.asarray(t).reshape(-1).view(np.uint8)
            np.testing.assert_array_equal(got, want.reshape(-1).view(np.uint8), h5path)
            stored = ds[()]  # h5py's read of the raw stored values
            np.testing.assert_array_equal(np.asarray(t._stored()), stored, h5path)
            if compression is None and t.size:
                assert t.mapped and t._offset == ds.id.get_offset(), h5path


def test_a_dataset_hard_linked_twice_binds_at_both_paths(tmp_path: Path) -> None:
    """HDF5's link walk lists a group reached twice only once: the second path must still bind."""
    a = np.arange(6, dtype=np.float32)
    outputs = [TensorInfo("a", "float32", [6]), TensorInfo("b", "float32", [6])]
    model = Model(Graph([_constant("a", a), _constant("b", a + 1)], [], outputs))
    path = tmp_path / "linked.k5"
    k5.save(model, path, checksums=False)
    with h5py.File(path, "r+") as f:
        del f["model/weights/b"]
        f["model/weights/b"] = f["model/weights/a"]  # group b is now group a, reached by a second hard link
    with k5.load(path) as loaded:
        np.testing.assert_array_equal(np.asarray(loaded.graph.node("a").weights["value"]), a)
        np.testing.assert_array_equal(np.asarray(loaded.graph.node("b").weights["value"]), a)


def test_stored_type_other_than_declared_is_refused(tmp_path: Path) -> None:
    model = Model(Graph([_constant("w", np.ones(4, np.float32))], [], [TensorInfo("w", "float32", [4])]))
    path = tmp_path / "m.k5"
    k5.save(model, path)
    with h5py.File(path, "r+") as f:
        del f["model/weights/w/value"]
        f["model/weights/w"].create_dataset("value", data=np.ones(4, ">f4"))  # big-endian float32
    with pytest.raises(WeightMismatchError, match="little-endian"):
        k5.load(path)
    with h5py.File(path, "r+") as f:
        del f["model/weights/w/value"]
        f["model/weights/w"].create_dataset("value", data=np.ones(4, "f8"))
    with pytest.raises(WeightMismatchError, match=r"declared dtype float32\. Received: float64"):
        k5.load(path)
    with h5py.File(path, "r+") as f:
        del f["model/weights/w"]
        f["model/weights"].create_dataset("w", data=np.ones(4, "f4"))  # a dataset where the node's group should be
    with pytest.raises(FormatError, match="is a dataset, expected a group"):
        k5.load(path)
