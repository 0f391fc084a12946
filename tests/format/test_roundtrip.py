"""save -> load returns what was saved: every dtype bit for bit, shapes, attributes, metadata, pair, datasets."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

import k5
from k5.format.dtypes import DTYPES
from k5.format.hdf5 import LazyDataset, LazyTensor
from k5.format.model import DataSplit, Graph, Metadata, Model, Node, TensorInfo


def _values(name: str, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random values of a k5 dtype, including its special values where it has them."""
    d = DTYPES[name].numpy
    if name == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(d, np.integer):
        info = np.iinfo(d)
        return rng.integers(info.min, info.max, shape, dtype=d, endpoint=True)
    if name in ("int4", "uint4", "int2", "uint2"):  # ml_dtypes' sub-byte integers
        info = ml_dtypes.iinfo(d)
        return rng.integers(int(info.min), int(info.max), shape, endpoint=True).astype(d)
    if name.startswith("complex"):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(d)
    values = (rng.standard_normal(shape) * 4).astype(np.float32).astype(d)
    flat = values.reshape(-1)
    if flat.size >= 3:
        flat[0] = np.nan if name not in ("float8_e4m3fn", "float4_e2m1fn") and "fnuz" not in name else flat[0]
        flat[1] = -0.0 if name != "float8_e8m0fnu" else flat[1]  # e8m0 has no sign bit
        if name in ("float16", "bfloat16", "float32", "float64", "float8_e5m2"):
            flat[2] = np.inf
    return values


@pytest.mark.parametrize("name", list(DTYPES))
def test_every_dtype_round_trips_bit_for_bit(tmp_path, name):
    rng = np.random.default_rng(len(name))
    shapes = {"full": (3, 5), "scalar": (), "empty": (0, 4), "long": (1000,)}
    nodes = [Node(f"c_{k}", "Constant", [], [f"v_{k}"], weights={"value": _values(name, rng, s)})
             for k, s in shapes.items()]  # fmt: skip
    graph = Graph(nodes, [], [TensorInfo(f"v_{k}", name, list(s)) for k, s in shapes.items()])
    path = tmp_path / "dtypes.k5"
    k5.save(Model(graph), path)
    for lazy in (True, False):
        loaded = k5.load(path, lazy=lazy)
        for node, original in zip(loaded.nodes, nodes, strict=True):
            got = node.weights["value"]
            assert isinstance(got, LazyTensor) == lazy
            arr = np.asarray(got)
            want = original.weights["value"]
            assert arr.dtype == want.dtype and arr.shape == want.shape
            assert arr.tobytes() == want.tobytes(), (name, node.id)
            if lazy:
                assert got.k5_dtype == name and got.shape == want.shape and got.nbytes == want.nbytes
        loaded.close()
    # the run of Constant nodes gives the stored values back
    with k5.load(path) as loaded:
        out = k5.run(loaded, {})
    assert out["v_full"].tobytes() == nodes[0].weights["value"].tobytes()


def test_symbolic_shapes_value_info_kinds_and_docs(tmp_path, mlp):
    model = mlp()
    model.graph.inputs = [TensorInfo("x", "float32", ["batch", 4])]
    model.graph.value_info = [TensorInfo("h", "float32", ["batch", 8]), TensorInfo("a", None, None)]
    model.graph.outputs = [TensorInfo("y", "float32", ["batch", 3])]
    model.graph.name = "main"
    model.graph.nodes[1].doc = "ReLU, é ü 中文"
    k5.save(model, tmp_path / "m.k5")
    with k5.load(tmp_path / "m.k5") as got:
        assert got.graph.name == "main"
        assert got.graph.inputs == model.graph.inputs
        assert got.graph.outputs == model.graph.outputs
        assert got.graph.value_info == model.graph.value_info
        assert got.graph.nodes[1].doc == "ReLU, é ü 中文"
        assert [(n.id, n.op, n.inputs, n.outputs) for n in got.nodes] == [
            (n.id, n.op, n.inputs, n.outputs) for n in model.nodes
        ]


def test_metadata_round_trips(tmp_path, mlp):
    model = mlp()
    model.metadata = Metadata(
        author="Ada Lovelace <ada@example.org>",
        description="multi\nline, ünïcödé, 模型",
        license="Apache-2.0",
        producer="hand-built test",
        created="2024-01-02T03:04:05+00:00",
        extra={"a/b": "slash", "%": "percent", ".": "dot", "..": "dots", "epochs": "12", "empty": ""},
    )
    k5.save(model, tmp_path / "m.k5")
    with k5.load(tmp_path / "m.k5") as got:
        assert got.metadata == model.metadata


def test_created_and_producer_default(tmp_path, mlp):
    model = mlp()
    model.metadata = Metadata()
    k5.save(model, tmp_path / "m.k5")
    with k5.load(tmp_path / "m.k5") as got:
        assert got.metadata.producer.startswith("k5 ")
        import datetime

        assert datetime.datetime.fromisoformat(got.metadata.created).tzinfo is not None


def test_validation_pair_round_trips_and_runs(tmp_path, mlp):
    model = mlp()
    model.validation.rtol, model.validation.atol = 1e-3, 1e-6
    k5.save(model, tmp_path / "m.k5")
    with k5.load(tmp_path / "m.k5") as got:
        pair = got.validation
        assert (pair.rtol, pair.atol) == (1e-3, 1e-6)
        for part in ("inputs", "outputs"):
            for name, value in getattr(model.validation, part).items():
                assert np.array_equal(np.asarray(getattr(pair, part)[name]), value)
        out = k5.run(got, {k: np.asarray(v) for k, v in pair.inputs.items()})
        np.testing.assert_allclose(out["y"], np.asarray(pair.outputs["y"]), rtol=1e-5, atol=1e-5)


def _batches(data: np.ndarray, size: int):
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_datasets_in_chunks_and_slices(tmp_path, mlp, compression):
    rng = np.random.default_rng(3)
    data = rng.standard_normal((2500, 4)).astype("f4")
    labels = rng.integers(0, 3, 2500).astype("int64")
    model = mlp()
    model.training = DataSplit(data, _batches(labels, 700))  # an iterable of batches
    model.evaluate = DataSplit(_batches(data[:10].astype(ml_dtypes.bfloat16), 3), labels[:10] > 0)
    k5.save(model, tmp_path / "m.k5", compression=compression)
    with k5.load(tmp_path / "m.k5") as got:
        tr = got.training
        assert isinstance(tr.data, LazyDataset) and tr.data.shape == (2500, 4) and len(tr.data) == 2500
        assert np.array_equal(tr.data[1000:1003], data[1000:1003])
        assert np.array_equal(tr.labels[::500], labels[::500])
        assert np.array_equal(np.asarray(tr.labels), labels)
        assert sum(len(b) for b in tr.data.batches(999)) == 2500
        ev = got.evaluate
        assert ev.data.k5_dtype == "bfloat16"
        assert ev.data[()].tobytes() == data[:10].astype(ml_dtypes.bfloat16).tobytes()
        assert ev.labels.k5_dtype == "bool" and np.array_equal(ev.labels[()], labels[:10] > 0)
    # a lazily loaded split is copied to a new file in slices
    with k5.load(tmp_path / "m.k5") as got:
        k5.save(got, tmp_path / "copy.k5")
    with k5.load(tmp_path / "copy.k5", lazy=False) as copy:
        assert isinstance(copy.training.data, np.ndarray) and np.array_equal(copy.training.data, data)


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_compression_and_no_checksums(tmp_path, mlp, compression):
    import h5py

    model = mlp(hidden=512)
    k5.save(model, tmp_path / "m.k5", compression=compression, checksums=False)
    with h5py.File(tmp_path / "m.k5", "r") as f:
        ds = f["model/weights/fc1/weight"]
        assert ds.compression == compression
        assert "sha256" not in ds.attrs
    with k5.load(tmp_path / "m.k5") as got:
        w = got.nodes[0].weights["weight"]
        assert w.mapped == (compression is None)
        assert np.array_equal(np.asarray(w), model.nodes[0].weights["weight"])


def test_attributes_nested_graphs_and_custom_domains(tmp_path):
    """Attribute values of every type, non-finite floats, and nested graphs owning weights, in a custom domain."""
    rng = np.random.default_rng(5)
    inner_w = rng.standard_normal((2, 2)).astype("f4")

    def body(prefix: str) -> Graph:  # node ids are unique across the whole model, nested graphs included
        return Graph(
            [Node(f"{prefix}.fc", "Linear", ["t"], ["u"], weights={"weight": inner_w}),
             Node(f"{prefix}/c", "Constant", [], ["k"], weights={"value": np.arange(3, dtype="int32")})],
            [TensorInfo("t", "float32", [1, 2])],
            [TensorInfo("u", "float32", [1, 2])],
        )  # fmt: skip

    attrs = {
        "i": 3, "f": 0.5, "s": "text", "ints": [1, -2], "floats": [1.5, math.inf, -math.inf], "strings": ["a", "b"],
        "nan": math.nan, "g": body("inner"), "gs": [body("b0"), Graph([], [TensorInfo("z")], [TensorInfo("z")])],
    }  # fmt: skip
    gemm = Node("gemm", "Gemm", ["x", "x"], ["g"], attrs={"alpha": math.nan, "beta": 2, "transB": 1})
    graph = Graph(
        [Node("cust", "Frobnicate", ["x"], ["y"], attrs=attrs, domain="com.example"), gemm],
        [TensorInfo("x", "float32", [2, 2])],
        [TensorInfo("y"), TensorInfo("g", "float32", [2, 2])],
    )
    model = Model(graph, opset={"k5": 1, "com.example": 3})
    k5.save(model, tmp_path / "m.k5")
    with k5.load(tmp_path / "m.k5") as got:
        assert got.opset == {"k5": 1, "com.example": 3}
        cust = got.nodes[0]
        assert cust.domain == "com.example" and cust.op == "Frobnicate"
        a = cust.attrs
        assert (a["i"], a["f"], a["s"], a["ints"], a["strings"]) == (3, 0.5, "text", [1, -2], ["a", "b"])
        # no schema for a custom op: non-finite floats stay in their JSON spelling
        assert a["floats"] == [1.5, "inf", "-inf"] and a["nan"] == "nan"
        assert isinstance(a["g"], Graph) and [n.id for n in a["g"].nodes] == ["inner.fc", "inner/c"]
        assert isinstance(a["gs"], list) and len(a["gs"]) == 2
        assert np.array_equal(np.asarray(a["g"].nodes[0].weights["weight"]), inner_w)
        assert np.array_equal(np.asarray(a["gs"][0].nodes[1].weights["value"]), np.arange(3))
        assert a["gs"][1].inputs == [TensorInfo("z")] and a["gs"][1].nodes == []
        # Gemm's schema says alpha is a float: "nan" comes back as a float NaN, the int 2 as 2.0
        assert math.isnan(got.nodes[1].attrs["alpha"]) and got.nodes[1].attrs["beta"] == 2.0
        assert set(got.weights()) == {
            "cust/g/inner.fc/weight", "cust/g/inner/c/value", "cust/gs[0]/b0.fc/weight", "cust/gs[0]/b0/c/value",
        }  # fmt: skip


def test_lazy_model_saves_to_a_new_file(tmp_path, mlp):
    model = mlp()
    k5.save(model, tmp_path / "a.k5")
    with k5.load(tmp_path / "a.k5") as lazy:
        k5.save(lazy, tmp_path / "b.k5", compression="gzip")
    with k5.load(tmp_path / "b.k5", verify=True) as got:
        for key, value in model.weights().items():
            assert np.array_equal(np.asarray(got.weights()[key]), value)
