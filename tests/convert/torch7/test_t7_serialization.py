"""The Torch7 serialization itself: hand-derived byte layouts (ASCII, 4-byte longs, files before versioned class
names), tensor views of shared storages, references, and the writer's atomicity."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
from t7_hostile import ASCII_TENSOR, f64, i32, i64, s

import k5
from k5.convert.formats import format_for
from k5.convert.torch7 import T7Object, T7Storage, T7Table, read_t7, read_t7_bytes, t7_bytes, to_torch7
from k5.errors import UnsupportedOpsError


def test_ascii_tensor() -> None:
    got = read_t7_bytes(ASCII_TENSOR)
    np.testing.assert_array_equal(got, np.array([[1.5, -2], [3.25, 4]], dtype=np.float32))
    assert got.dtype == np.float32


def test_ascii_table_of_scalars() -> None:
    # {name = "ab cd", n = 7, flag = true}
    data = b"3\n1\n3\n2\n4\nname\n2\n5\nab cd\n2\n1\nn\n1\n7\n2\n4\nflag\n5\n1\n"
    got = read_t7_bytes(data)
    assert dict(got) == {"name": "ab cd", "n": 7.0, "flag": True}


def test_four_byte_longs() -> None:
    # a DoubleTensor of shape [3] with 4-byte longs (Torch built where C's long is 32 bits)
    data = (i32(4) + i32(1) + s("V 1") + s("torch.DoubleTensor") + i32(1) + struct.pack("<iii", 3, 1, 1)
            + i32(4) + i32(2) + s("V 1") + s("torch.DoubleStorage") + struct.pack("<i", 3)
            + struct.pack("<3d", 1.0, 2.0, 3.0))  # fmt: skip
    np.testing.assert_array_equal(read_t7_bytes(data), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(read_t7_bytes(data, long_size=4), [1.0, 2.0, 3.0])
    # k5's writer with 4-byte longs produces these very bytes
    assert t7_bytes(np.array([1.0, 2.0, 3.0]), long_size=4) == data


def test_unversioned_class_names_and_references() -> None:
    # files written before "V 1": the class name comes alone; object 2 (the storage) is shared by two tensors,
    # the second a transposed view (strides 1, 2) starting at element 1
    storage = i32(4) + i32(3) + s("torch.FloatStorage") + i64(4) + np.arange(4, dtype="<f4").tobytes()
    first = i32(4) + i32(1) + s("torch.FloatTensor") + i32(2) + i64(2, 2) + i64(2, 1) + i64(1) + storage
    second = i32(4) + i32(2) + s("torch.FloatTensor") + i32(2) + i64(2, 2) + i64(1, 2) + i64(1) + i32(4) + i32(3)
    table = i32(3) + i32(9) + i32(3) + i32(1) + f64(1.0) + first + i32(1) + f64(2.0) + second
    table += i32(1) + f64(3.0) + i32(4) + i32(1)  # [3] = a reference to tensor 1
    got = read_t7_bytes(table)
    np.testing.assert_array_equal(got[1.0], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(got[2.0], [[0, 2], [1, 3]])
    assert got[3.0] is got[1.0]


def test_writer_shares_objects_and_reads_back() -> None:
    shared = np.arange(6, dtype=np.float32).reshape(2, 3)
    obj = T7Object("nn.Foo", T7Table(a=shared, b=shared, size=T7Storage("torch.LongStorage", np.array([2, 3]))))
    back = read_t7_bytes(t7_bytes(obj))
    assert back.class_name == "nn.Foo" and back.version == 1
    assert back.fields["a"] is back.fields["b"]
    np.testing.assert_array_equal(back.fields["a"], shared)
    np.testing.assert_array_equal(back.fields["size"].data, [2, 3])


def test_writer_is_atomic(tmp_path: Path) -> None:
    graph = k5.Graph(
        [k5.Node("g", "Gelu", ["x"], ["y"])], [k5.TensorInfo("x", "float32", [1, 4])], [k5.TensorInfo("y", "float32")]
    )
    target = tmp_path / "net.t7"
    target.write_bytes(b"old")
    with pytest.raises(UnsupportedOpsError, match="Gelu"):
        to_torch7(k5.Model(graph), target)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["net.t7"]


def test_t7_format_is_registered(tmp_path: Path) -> None:
    fmt = format_for(str(tmp_path / "Net.T7"))
    assert fmt.name == "t7" and fmt.read is not None and fmt.write is not None
    graph = k5.Graph(
        [k5.Node("r", "Relu", ["x"], ["y"])], [k5.TensorInfo("x", "float32", [2, 3])], [k5.TensorInfo("y", "float32")]
    )
    fmt.write(k5.Model(graph), str(tmp_path / "net.t7"))
    assert read_t7(tmp_path / "net.t7").class_name == "nn.Sequential"
    assert [n.op for n in fmt.read(str(tmp_path / "net.t7")).nodes] == ["Relu"]
