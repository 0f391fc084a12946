"""Opening a file reads the JSON and metadata only; weights are read (or memory-mapped) when asked for."""

from __future__ import annotations

import os
import sys
import tracemalloc

import numpy as np
import pytest

import k5
from k5.format.hdf5 import LazyTensor
from k5.format.model import Graph, Model, Node, TensorInfo

MB = 1 << 20


def _big_model(n: int = 8, mbytes: int = 8) -> Model:
    rng = np.random.default_rng(0)
    size = mbytes * MB // 4
    nodes = [Node(f"c{i}", "Constant", [], [f"y{i}"], weights={"value": rng.standard_normal(size, dtype="f4")})
             for i in range(n)]  # fmt: skip
    return Model(Graph(nodes, [], [TensorInfo(f"y{i}", "float32", [size]) for i in range(n)]))


def _rchar() -> int:
    """Bytes this process has passed through read()/pread() (page cache hits included)."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar")).split()[1])


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("lazy") / "big.k5"
    k5.save(_big_model(), path)  # 64 MB of weights
    return path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/io read counters are Linux only")
def test_open_reads_no_weights(big_file):
    before = _rchar()
    model = k5.load(big_file)
    opened = _rchar() - before
    assert opened < 2 * MB, f"opening read {opened} bytes of a {os.path.getsize(big_file)}-byte file"
    w = model.nodes[3].weights["value"]
    assert isinstance(w, LazyTensor) and w.mapped
    before = _rchar()
    arr = np.asarray(w)  # a view of the memory map: no read() at all
    assert _rchar() - before < MB
    assert not arr.flags.writeable and arr.size == 2 * MB
    model.close()
    # the h5py fallback (mmap disabled) reads exactly the tensor asked for
    with k5.load(big_file, mmap=False) as model:
        before = _rchar()
        np.asarray(model.nodes[3].weights["value"])
        read = _rchar() - before
    assert 8 * MB <= read < 10 * MB


def test_open_allocates_no_weight_memory(big_file):
    tracemalloc.start()
    try:
        model = k5.load(big_file)
        _, peak = tracemalloc.get_traced_memory()
        assert peak < 4 * MB, f"opening allocated {peak} bytes"
        one = np.asarray(model.nodes[0].weights["value"])  # mapped: no allocation either
        _, peak = tracemalloc.get_traced_memory()
        assert peak < 4 * MB
        copy = model.nodes[1].weights["value"].read()
        _, peak = tracemalloc.get_traced_memory()
        assert 8 * MB <= peak < 16 * MB
        del one, copy
        model.close()
    finally:
        tracemalloc.stop()


def test_mapped_values_equal_saved_values(big_file):
    original = _big_model()
    with k5.load(big_file) as model:
        for got, want in zip(model.nodes, original.nodes, strict=True):
            assert np.array_equal(np.asarray(got.weights["value"]), want.weights["value"])


def test_eager_load_closes_the_file(big_file):
    model = k5.load(big_file, lazy=False)
    assert model._source is None
    assert all(isinstance(v, np.ndarray) and v.flags.writeable for v in model.weights().values())


def test_running_a_lazily_loaded_model(tmp_path, mlp):
    m = mlp()
    k5.save(m, tmp_path / "m.k5")
    with k5.load(tmp_path / "m.k5") as model:
        x = np.asarray(model.validation.inputs["x"])
        np.testing.assert_allclose(k5.run(model, x)["y"], m.validation.outputs["y"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(k5.run(str(tmp_path / "m.k5"), x)["y"], m.validation.outputs["y"], rtol=1e-5)
