"""One test per failure k5.load reports: each is the specific K5Error subclass, naming the file and the culprit."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import k5
from k5.errors import (
    ChecksumError,
    CycleError,
    DanglingEdgeError,
    HostileSizeError,
    JSONSyntaxError,
    K5Error,
    MissingEntryError,
    MissingWeightError,
    NotK5FileError,
    SchemaError,
    TruncatedFileError,
    UnknownOpError,
    UnsafeFileError,
    VersionError,
    WeightMismatchError,
)


@pytest.fixture
def good(tmp_path, mlp):
    path = tmp_path / "m.k5"
    k5.save(mlp(), path)
    return path


def _edit_json(path, edit):
    with h5py.File(path, "r+") as f:
        text = f["model/network"][()].decode()
        new = edit(json.loads(text)) if not isinstance(edit, str) else edit
        del f["model/network"]
        data = new if isinstance(new, str) else json.dumps(new)
        f["model"].create_dataset("network", data=data, dtype=h5py.string_dtype())


def _fails(path, cls, *patterns, **kwargs):
    with pytest.raises(cls) as info:
        k5.load(path, **kwargs).close()
    message = str(info.value)
    assert message.startswith(str(path)), message  # names the file first
    for p in patterns:
        assert p in message, message
    return message


def test_good_file_loads(good):
    k5.load(good, verify=True).close()


def test_missing_file_and_not_hdf5(tmp_path):
    _fails(tmp_path / "absent.k5", NotK5FileError, "no such file")
    (tmp_path / "text.k5").write_text("{'not': 'hdf5'}")
    _fails(tmp_path / "text.k5", NotK5FileError, "not an HDF5 file")
    (tmp_path / "empty.k5").write_bytes(b"")
    _fails(tmp_path / "empty.k5", NotK5FileError, "empty")
    _fails(tmp_path, NotK5FileError, "not a regular file")


def test_hdf5_without_k5_layout(tmp_path):
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = np.zeros(3)
    _fails(tmp_path / "plain.h5", NotK5FileError, "not a k5 file", "k5_version")


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_truncated_file(good, keep):
    data = good.read_bytes()
    good.write_bytes(data[: int(len(data) * keep)])
    _fails(good, TruncatedFileError, "cut short")


def test_missing_network(good):
    with h5py.File(good, "r+") as f:
        del f["model/network"]
    _fails(good, MissingEntryError, "'/model/network' is missing")


def test_malformed_json_gives_line_and_column(good):
    _edit_json(good, '{\n  "k5_network": "1.0",\n  "opset": {"k5": 1},\n  "graph": {"nodes": [,]}\n}')
    _fails(good, JSONSyntaxError, "line 4, column")


def test_json_constants_and_duplicate_keys_are_refused(good):
    _edit_json(good, '{"k5_network": "1.0", "opset": {"k5": 1}, "graph": {"nodes": [], "x": NaN}}')
    _fails(good, JSONSyntaxError, "NaN is not JSON")
    _edit_json(good, '{"k5_network": "1.0", "k5_network": "1.0", "opset": {"k5": 1}, "graph": {}}')
    _fails(good, SchemaError, "duplicate key 'k5_network'")


def test_schema_violation_gives_json_path(good):
    def edit(doc):
        doc["graph"]["nodes"][2]["inputs"][0] = 5
        return doc

    _edit_json(good, edit)
    _fails(good, SchemaError, "$.graph.nodes[2].inputs[0]")


def test_newer_versions_are_refused(good, tmp_path):
    with h5py.File(good, "r+") as f:
        f.attrs["k5_version"] = "2.0"
    _fails(good, VersionError, "k5 format 2.0", "upgrade")
    with h5py.File(good, "r+") as f:
        f.attrs["k5_version"] = "1.7"  # a newer minor version is readable
    k5.load(good).close()

    def newer_network(doc):
        doc["k5_network"] = "3.1"
        return doc

    _edit_json(good, newer_network)
    _fails(good, VersionError, "version 3.1")

    def newer_opset(doc):
        doc["k5_network"] = "1.0"
        doc["opset"]["k5"] = 42
        return doc

    _edit_json(good, newer_opset)
    _fails(good, VersionError, "op set k5 v42")


def test_newer_minor_network_with_unknown_keys_loads(good):
    def edit(doc):
        doc["k5_network"] = "1.9"
        doc["graph"]["nodes"][0]["added_in_1_9"] = {"a": 1}
        return doc

    _edit_json(good, edit)
    k5.load(good).close()


def test_dangling_edge_and_cycle_in_file(good):
    def dangle(doc):
        doc["graph"]["nodes"][2]["inputs"] = ["gone"]
        return doc

    _edit_json(good, dangle)
    _fails(good, DanglingEdgeError, "node 'fc2' (Linear)", "'gone'")

    def cycle(doc):
        doc["graph"]["nodes"][2]["inputs"] = ["a"]
        doc["graph"]["nodes"][0]["inputs"] = ["y"]
        return doc

    _edit_json(good, cycle)
    _fails(good, CycleError, "cycle", "node 'fc1' (Linear)")


def test_unknown_op_names_the_node(good):
    def edit(doc):
        doc["graph"]["nodes"][1]["op"] = "Rleu"
        return doc

    _edit_json(good, edit)
    _fails(good, UnknownOpError, "node 'act' (Rleu)", "unknown op")
    k5.load(good, check=False).close()  # `k5 inspect` can still open it


def test_missing_weight(good):
    with h5py.File(good, "r+") as f:
        del f["model/weights/fc2/bias"]
    _fails(good, MissingWeightError, "node 'fc2' (Linear): weight 'bias'", "/model/weights/fc2/bias")


def test_weight_shape_and_dtype_mismatch(good):
    with h5py.File(good, "r+") as f:
        del f["model/weights/fc1/bias"]
        f["model/weights/fc1"].create_dataset("bias", data=np.zeros(9, "f4"))
    _fails(good, WeightMismatchError, "weight 'bias'", "declared shape [8]. Received: [9]")
    with h5py.File(good, "r+") as f:
        del f["model/weights/fc1/bias"]
        f["model/weights/fc1"].create_dataset("bias", data=np.zeros(8, "f8"))
    _fails(good, WeightMismatchError, "declared dtype float32. Received: float64")
    with h5py.File(good, "r+") as f:
        del f["model/weights/fc1/bias"]
        f["model/weights/fc1"].create_dataset("bias", data=np.zeros(8, ">f4"))
    _fails(good, WeightMismatchError, "little-endian")
    with h5py.File(good, "r+") as f:
        del f["model/weights/fc1/bias"]
        ds = f["model/weights/fc1"].create_dataset("bias", data=np.zeros(8, "<u2"))
        ds.attrs["k5_dtype"] = "bfloat16"
    _fails(good, WeightMismatchError, "declared dtype float32. Received: bfloat16")


def test_hostile_sizes(good):
    """A declared shape whose byte size exceeds the file: refused before anything is allocated."""
    huge = [1 << 20, 1 << 20]

    def edit(doc):
        doc["graph"]["nodes"][0]["weights"]["weight"]["shape"] = huge
        return doc

    _edit_json(good, edit)
    with h5py.File(good, "r+") as f:  # a dataset with a matching dataspace but no data behind it
        del f["model/weights/fc1/weight"]
        f["model/weights/fc1"].create_dataset("weight", shape=huge, dtype="f4")
    _fails(good, HostileSizeError, "weight 'weight'", "4398046511104 bytes")


def test_hostile_compressed_size(good):
    huge = [1 << 24, 1 << 16]

    def edit(doc):
        doc["graph"]["nodes"][0]["weights"]["weight"]["shape"] = huge
        return doc

    _edit_json(good, edit)
    with h5py.File(good, "r+") as f:
        del f["model/weights/fc1/weight"]
        f["model/weights/fc1"].create_dataset("weight", shape=huge, dtype="f4", chunks=(1024, 1024), compression="gzip")
    _fails(good, HostileSizeError, "more than the")


def test_deeply_nested_json(good):
    _edit_json(good, "[" * 100_000 + "]" * 100_000)
    _fails(good, HostileSizeError, "nests")


def test_links_and_external_data_are_refused(good, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["w"] = np.zeros(8, "f4")
    with h5py.File(good, "r+") as f:
        del f["model/weights/fc1/bias"]
        f["model/weights/fc1/bias"] = h5py.ExternalLink(str(other), "w")
    _fails(good, UnsafeFileError, "external link")
    with h5py.File(good, "r+") as f:
        del f["model/weights/fc1/bias"]
        f["model/weights/fc1/bias"] = h5py.SoftLink("/model/weights/fc2/bias")
    _fails(good, UnsafeFileError, "soft link")
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.zeros(8, "f4").tobytes())
    with h5py.File(good, "r+") as f:
        del f["model/weights/fc1/bias"]
        f["model/weights/fc1"].create_dataset("bias", shape=(8,), dtype="f4", external=[(str(raw), 0, 32)])
    _fails(good, UnsafeFileError, "external files")
    layout = h5py.VirtualLayout(shape=(8,), dtype="f4")
    layout[:] = h5py.VirtualSource(str(other), "w", shape=(8,))
    with h5py.File(good, "r+") as f:
        del f["model/weights/fc1/bias"]
        f["model/weights/fc1"].create_virtual_dataset("bias", layout)
    _fails(good, UnsafeFileError, "virtual dataset")


def test_checksum_mismatch_is_found_on_request(good):
    with h5py.File(good, "r+") as f:
        ds = f["model/weights/fc2/weight"]
        values = ds[()]
        values[0, 0] += 1
        ds[...] = values
    k5.load(good).close()  # not verified by default
    _fails(good, ChecksumError, "node 'fc2' (Linear): weight 'weight'", "sha256 mismatch", verify=True)
    with pytest.raises(ChecksumError):
        k5.format.hdf5.validate(good)


def test_every_failure_is_a_k5_error(good):
    good.write_bytes(good.read_bytes()[:-1])
    with pytest.raises(K5Error):
        k5.load(good)


def test_reading_after_close_is_a_k5_error(good):
    model = k5.load(good)
    w = model.nodes[0].weights["weight"]
    model.close()
    with pytest.raises(K5Error, match="closed"):
        np.asarray(w)
