"""A k5 file is readable with plain h5py + json + hashlib: no k5 code in the reading path."""

from __future__ import annotations

import hashlib
import json

import h5py
import ml_dtypes
import numpy as np

import k5
from k5.format.model import Graph, Model, Node, TensorInfo


def test_read_with_h5py_only(tmp_path, mlp):
    model = mlp()
    bf = np.array([[1.5, -2.0], [0.25, 3.0]], dtype=ml_dtypes.bfloat16)
    model.graph.nodes.append(Node("odd/name", "Constant", [], ["c"], weights={"value": bf}))
    model.graph.outputs.append(TensorInfo("c", "bfloat16", [2, 2]))
    k5.save(model, tmp_path / "m.k5")

    with h5py.File(tmp_path / "m.k5", "r") as f:
        assert f.attrs["k5_version"] == "1.0"
        assert "producer" in f.attrs and "created" in f.attrs
        assert f["author"][()].decode() == "Ada"
        assert f["metadata/dataset"][()].decode() == "random"
        net = f["model/network"]
        assert net.shape == () and h5py.check_string_dtype(net.dtype).encoding == "utf-8"
        doc = json.loads(net[()].decode("utf-8"))
        assert doc["k5_network"] == "1.0" and doc["opset"] == {"k5": 1}
        nodes = {n["id"]: n for n in doc["graph"]["nodes"]}
        assert nodes["fc1"]["op"] == "Linear" and nodes["fc1"]["weights"]["weight"] == {"dtype": "float32",
                                                                                        "shape": [8, 4]}  # fmt: skip
        # /model/weights/<node>/<param>, native dtype, C order, sha256 of the stored bytes
        for node_id, param in (("fc1", "weight"), ("fc1", "bias"), ("fc2", "weight"), ("fc2", "bias")):
            ds = f[f"model/weights/{node_id}/{param}"]
            want = model.graph.node(node_id).weights[param]
            assert ds.dtype == np.dtype("<f4") and ds.shape == want.shape
            assert np.array_equal(ds[()], want)
            assert ds.attrs["sha256"] == hashlib.sha256(want.tobytes()).hexdigest()
            assert ds.id.get_offset() % 64 == 0  # aligned, memory-mappable
        # a name with '/' is percent-encoded; bfloat16 is raw uint16 bits with a k5_dtype attribute
        ds = f["model/weights/odd%2Fname/value"]
        assert ds.dtype == np.dtype("<u2") and ds.attrs["k5_dtype"] == "bfloat16"
        assert np.array_equal(ds[()], bf.view(np.uint16))
        # the validation pair
        x = f["validate/input/x"][()]
        assert np.array_equal(x, model.validation.inputs["x"])
        assert np.array_equal(f["validate/output/y"][()], model.validation.outputs["y"])
        assert f["validate"].attrs["rtol"] == model.validation.rtol


def test_contiguous_weights_map_with_numpy_memmap(tmp_path):
    """FORMAT.md's speed path: np.memmap at dataset.id.get_offset() of an uncompressed dataset."""
    w = np.random.default_rng(0).standard_normal((256, 128)).astype("f4")
    g = Graph([Node("c", "Constant", [], ["y"], weights={"value": w})], [], [TensorInfo("y", "float32", [256, 128])])
    k5.save(Model(g), tmp_path / "m.k5")
    with h5py.File(tmp_path / "m.k5", "r") as f:
        offset = f["model/weights/c/value"].id.get_offset()
    mapped = np.memmap(tmp_path / "m.k5", dtype="<f4", mode="r", offset=offset, shape=w.shape)
    assert np.array_equal(mapped, w)
