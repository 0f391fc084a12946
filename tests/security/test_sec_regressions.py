"""One regression test per reader bug the corpus and the fuzzer found (each failed before its fix).

Files are built with plain h5py from a valid ``k5.save`` output; where the unfixed bug hung or crashed the process
(a virtual dataset read), the load runs in the sandboxed worker.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from _sec_harness import Sandbox
from _sec_models import mlp

import k5
from k5.errors import HostileSizeError, SchemaError, UnsafeFileError
from k5.format import network


@pytest.fixture
def base(tmp_path: Path) -> Path:
    path = tmp_path / "base.k5"
    k5.save(mlp(0), path)
    return path


def _copy(base: Path, name: str) -> Path:
    path = base.with_name(name)
    shutil.copyfile(base, path)
    return path


def _replace(path: Path, h5path: str, **create: object) -> None:
    with h5py.File(path, "r+") as f:
        parent, name = h5path.rsplit("/", 1)
        del f[h5path]
        f[parent or "/"].create_dataset(name, **create)


def test_fixed_length_network_string_is_size_checked_before_reading(base: Path) -> None:
    """Was: a 2 GB fixed-length string declared in a 50 KB file was allocated (MemoryError under a memory cap)."""
    path = _copy(base, "bomb.k5")
    _replace(path, "/model/network", shape=(), dtype="S2000000000")
    with pytest.raises(HostileSizeError, match="network JSON"):
        k5.load(path)


def test_fixed_length_metadata_string_is_size_checked_before_reading(base: Path) -> None:
    path = _copy(base, "bomb.k5")
    _replace(path, "/author", shape=(), dtype="S1500000000")
    with pytest.raises(HostileSizeError, match="author"):
        k5.load(path)


def test_text_in_external_storage_is_refused(base: Path, tmp_path: Path) -> None:
    """Was: /author stored in an external raw file was read, leaking a local file's contents into the metadata."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"TOPSECRET")
    path = _copy(base, "leak.k5")
    _replace(path, "/author", shape=(1,), dtype="S9", external=[(str(secret), 0, 9)])
    with pytest.raises(UnsafeFileError, match="external"):
        k5.load(path)


def test_network_in_external_storage_is_refused(base: Path, tmp_path: Path) -> None:
    with h5py.File(base, "r") as f:
        text = f["model/network"][()]
    outside = tmp_path / "outside.json"
    outside.write_bytes(text)
    path = _copy(base, "outside.k5")
    _replace(path, "/model/network", shape=(1,), dtype=f"S{len(text)}", external=[(str(outside), 0, len(text))])
    with pytest.raises(UnsafeFileError):
        k5.load(path)


def test_virtual_network_dataset_is_refused(base: Path, tmp_path: Path) -> None:
    """Was: reading a virtual (VDS) string dataset as the network JSON hung or segfaulted inside HDF5."""
    with h5py.File(base, "r") as f:
        text = f["model/network"][()]
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as o:
        o.create_dataset("net", data=np.frombuffer(text, f"S{len(text)}")[0])
    path = _copy(base, "vds.k5")
    with h5py.File(path, "r+") as f:
        layout = h5py.VirtualLayout(shape=(), dtype=f"S{len(text)}")
        layout[...] = h5py.VirtualSource(str(other), "/net", shape=())
        del f["model/network"]
        f["model"].create_virtual_dataset("network", layout)
    with Sandbox(timeout=20.0) as sandbox:
        result = sandbox.check(path, "load-only")
    assert result["outcome"] == "k5error" and result["type"] == "UnsafeFileError", result


def _doc_with_weight_shape(shape: list[int]) -> str:
    doc = network.network_to_dict(mlp(0))
    doc["graph"]["nodes"][0]["weights"]["weight"]["shape"] = shape
    return json.dumps(doc)


@pytest.mark.parametrize("shape", [[2**63, 2**63], [2**70], [2**40, 2**40], [1] * 40])
def test_unstorable_declared_shapes_are_refused(shape: list[int]) -> None:
    """Was: the network JSON accepted weight shapes no file can hold (more than 2**63 elements, rank 40)."""
    with pytest.raises(HostileSizeError, match="shape"):
        network.loads_network(_doc_with_weight_shape(shape))


def test_largest_storable_shape_is_accepted() -> None:
    network.loads_network(_doc_with_weight_shape([2**31, 2**31]))  # a declaration: nothing is allocated


def test_lone_surrogate_names_are_refused() -> None:
    """Was: a node id "\\ud800" (legal JSON escape) loaded, then broke every HDF5 path built from it."""
    doc = network.network_to_dict(mlp(0))
    text = json.dumps(doc).replace('"fc0"', '"fc\\ud800"')
    model = network.loads_network(text)
    from k5.format.checks import check_model

    with pytest.raises(SchemaError, match="surrogate"):
        check_model(model)


@pytest.mark.parametrize(
    "value", [np.array([b"1.0", b"2.0"]), "9" * 1000, np.nan, -1.0, np.ones(1000), h5py.Empty("f8")]
)
def test_validation_tolerances_must_be_one_finite_number(base: Path, value: object) -> None:
    """Was: a string tolerance ("999...9" -> inf) or an array was accepted, so any output "matched"."""
    path = _copy(base, "tol.k5")
    with h5py.File(path, "r+") as f:
        f["validate"].attrs["atol"] = value
    with pytest.raises(k5.errors.FormatError, match="atol"):
        k5.load(path)


def test_validation_pair_names_are_checked_at_load(base: Path) -> None:
    """Was: load() ran the graph checks before reading /validate, so a pair naming no graph input went unchecked."""
    path = _copy(base, "extra.k5")
    with h5py.File(path, "r+") as f:
        f["validate/input"].create_dataset("not_an_input", data=np.zeros(3, "f4"))
    with pytest.raises(SchemaError, match="not_an_input"):
        k5.load(path)


def test_a_weight_too_large_for_memory_is_a_k5_error(base: Path) -> None:
    """Was: a legal but huge compressed weight escaped as MemoryError; it is a HostileSizeError naming the weight."""
    import zlib

    path = _copy(base, "big.k5")
    rows = 64
    with h5py.File(path, "r+") as f:
        doc = json.loads(f["model/network"][()].decode())
        doc["graph"]["nodes"][0]["weights"]["weight"]["shape"] = [rows, 1 << 20]
        del f["model/network"]
        f["model"].create_dataset("network", data=json.dumps(doc), dtype=h5py.string_dtype())
        del f["model/weights/fc0/weight"]
        ds = f["model/weights/fc0"].create_dataset(
            "weight", shape=(rows, 1 << 20), dtype="f4", chunks=(1, 1 << 20), compression="gzip"
        )
        chunk = zlib.compress(bytes(4 << 20), 9)
        for r in range(rows):
            ds.id.write_direct_chunk((r, 0), chunk)
    with Sandbox(mem_mb=128, timeout=30.0) as sandbox:  # 256 MiB of zeros behind ~260 KB of file
        result = sandbox.check(path, "load-only")
    assert result["outcome"] == "k5error" and result["type"] == "HostileSizeError", result
    assert "fc0" in result["message"]


def test_graph_size_is_limited_before_the_schema_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: only the JSON byte size bounded a graph (1 GiB: ~10M nodes, minutes of schema checks)."""
    doc = network.network_to_dict(mlp(0))
    n = len(doc["graph"]["nodes"])
    monkeypatch.setattr(network, "MAX_NODES", n - 1)
    with pytest.raises(HostileSizeError, match=f"{n} nodes"):
        network.loads_network(json.dumps(doc))
    monkeypatch.setattr(network, "MAX_NODES", n)
    network.loads_network(json.dumps(doc))
    nested = {"inputs": [], "outputs": [], "nodes": json.loads(json.dumps(doc["graph"]["nodes"][:2]))}
    doc["graph"]["nodes"][1]["attrs"] = {"body": nested}  # nested graphs count too (the schema is checked later)
    with pytest.raises(HostileSizeError, match=f"{n + 2} nodes"):
        network.loads_network(json.dumps(doc))


def test_variable_length_sequence_attributes_are_refused_before_reading(base: Path) -> None:
    """Was: any attribute type was read; a root attribute typed as a variable-length sequence (not a string) loaded
    as text, and a crafted one segfaulted HDF5 2.0 (next test). The type class is checked before HDF5 reads it."""
    path = _copy(base, "vlen_attr.k5")
    with h5py.File(path, "r+") as f:
        value = np.empty((), dtype=h5py.vlen_dtype(np.uint8))
        value[()] = np.frombuffer(b"2026-01-01", np.uint8)
        del f.attrs["created"]
        f.attrs.create("created", data=value, dtype=h5py.vlen_dtype(np.uint8))
    with pytest.raises(k5.errors.FormatError, match="'created' must be a string or a number"):
        k5.load(path)


def test_fuzzer_crash_input_vlen_attribute() -> None:
    """The input tools/fuzz_load.py found (kept as data): HDF5 2.0 segfaults converting its 'created' attribute."""
    path = Path(__file__).parents[1] / "data" / "malicious" / "fuzz_vlen_attr_segv.k5"
    with Sandbox(timeout=20.0) as sandbox:
        result = sandbox.check(path, "load-only")
    assert result["outcome"] == "k5error" and result["type"] == "FormatError", result


def test_typed_attribute_slots_accept_numbers(base: Path) -> None:
    """The attribute type check keeps numbers readable (tolerances are numbers)."""
    path = _copy(base, "tol.k5")
    with h5py.File(path, "r+") as f:
        f["validate"].attrs["rtol"] = np.int32(0)
    with k5.load(path) as model:
        assert model.validation is not None and model.validation.rtol == 0.0
