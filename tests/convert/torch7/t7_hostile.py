"""Hostile .t7 files, crafted byte by byte (binary, little-endian, 8-byte longs), with the error each must raise."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from k5.convert.torch7 import T7Object, T7Table, t7_bytes


def i32(v: int) -> bytes:
    return struct.pack("<i", v)


def i64(*vs: int) -> bytes:
    return struct.pack(f"<{len(vs)}q", *vs)


def f64(v: float) -> bytes:
    return struct.pack("<d", v)


def s(text: str) -> bytes:
    raw = text.encode()
    return i32(len(raw)) + raw


def torch_head(index: int, class_name: str) -> bytes:
    return i32(4) + i32(index) + s("V 1") + s(class_name)


def float_tensor(sizes: list[int], strides: list[int], storage: bytes, offset: int = 1) -> bytes:
    return (torch_head(1, "torch.FloatTensor") + i32(len(sizes)) + i64(*sizes) + i64(*strides) + i64(offset)
            + storage)  # fmt: skip


def float_storage(n: int, index: int = 2, cls: str = "torch.FloatStorage", fill: bool = True) -> bytes:
    body = np.arange(n, dtype="<f4" if "Float" in cls else "<f8").tobytes() if fill else b""
    return torch_head(index, cls) + i64(n) + body


def module(name: str, **fields: Any) -> T7Object:
    return T7Object(f"nn.{name}", T7Table(fields), version=1)


def sequential(*mods: Any) -> T7Object:
    return module("Sequential", modules=T7Table({float(i + 1): m for i, m in enumerate(mods)}))


# torch.save(torch.FloatTensor{{1.5, -2}, {3.25, 4}}) in ASCII mode, as Torch's THDiskFile writes it
ASCII_TENSOR = (b"4\n1\n3\nV 1\n17\ntorch.FloatTensor\n2\n2 2\n2 1\n1\n"
                b"4\n2\n3\nV 1\n18\ntorch.FloatStorage\n4\n1.5 -2 3.25 4\n")  # fmt: skip


def valid_net() -> bytes:
    """A small valid network file (the base of the truncation and fuzz cases)."""
    rng = np.random.default_rng(0)
    conv = module("SpatialConvolution", nInputPlane=2, nOutputPlane=3, kW=3, kH=3, dW=1, dH=1, padW=1, padH=1,
                  weight=rng.standard_normal((3, 2, 3, 3)).astype(np.float32),
                  bias=rng.standard_normal(3).astype(np.float32))  # fmt: skip
    return t7_bytes(sequential(conv, module("ReLU"), module("Tanh")))


def deep_tables(depth: int) -> bytes:
    # table {[1] = <next table>}, nested depth times
    return b"".join(i32(3) + i32(i + 1) + i32(1) + i32(1) + f64(1.0) for i in range(depth)) + i32(0)


def self_containing_table() -> bytes:
    return i32(3) + i32(1) + i32(1) + s_rec("self") + i32(3) + i32(1)  # t = {self = t}


def s_rec(text: str) -> bytes:
    return i32(2) + s(text)


def self_containing_module() -> bytes:
    # nn.Sequential whose modules[1] is the Sequential itself
    return (torch_head(1, "nn.Sequential") + i32(3) + i32(2) + i32(1) + s_rec("modules")
            + i32(3) + i32(3) + i32(1) + i32(1) + f64(1.0) + i32(4) + i32(1))  # fmt: skip


def many_nils(n: int) -> bytes:
    body = b"".join(i32(1) + f64(float(i + 1)) + i32(1) + f64(0.0) for i in range(n))
    return i32(3) + i32(1) + i32(n) + body


#: name -> (file bytes, call, keyword arguments, expected K5Error class name)
CASES: dict[str, tuple[bytes, str, dict[str, Any], str]] = {
    "empty_file": (b"", "read", {"ascii": False}, "TruncatedFileError"),
    "huge_storage": (float_storage(1 << 40, index=1, fill=False), "read", {}, "HostileSizeError"),
    "huge_string": (i32(2) + i32(2**31 - 1) + b"abc", "read", {}, "HostileSizeError"),
    "negative_string": (i32(2) + i32(-5) + b"abc", "read", {}, "FormatError"),
    "huge_table": (i32(3) + i32(1) + i32(2**30), "read", {}, "HostileSizeError"),
    "negative_table": (i32(3) + i32(1) + i32(-1), "read", {}, "FormatError"),
    "deep_nesting": (deep_tables(100_000), "read", {}, "HostileSizeError"),
    "tensor_past_storage": (float_tensor([10], [1], float_storage(5)), "read", {}, "HostileSizeError"),
    "tensor_offset_past_storage": (float_tensor([2], [1], float_storage(5), offset=5), "read", {}, "HostileSizeError"),
    "tensor_huge_rank": (torch_head(1, "torch.FloatTensor") + i32(1000), "read", {}, "HostileSizeError"),
    "tensor_negative_size": (float_tensor([-3], [1], float_storage(5)), "read", {}, "FormatError"),
    "tensor_wrong_storage": (
        float_tensor([2], [1], float_storage(4, cls="torch.DoubleStorage")),
        "read",
        {},
        "FormatError",
    ),
    "tensor_without_storage": (float_tensor([2], [1], i32(0)), "read", {}, "FormatError"),
    "unknown_tensor_class": (torch_head(1, "torch.QuantumTensor") + i32(0), "read", {}, "FormatError"),
    "unknown_type_code": (i32(42), "read", {"ascii": False}, "FormatError"),
    "lua_function": (i32(6) + i32(1) + s("\x1bLuaR") + i32(3) + i32(2) + i32(0), "read", {}, "UnsafeFileError"),
    "bad_version": (i32(4) + i32(1) + s("V one") + s("nn.ReLU"), "read", {}, "FormatError"),
    "object_cap": (many_nils(5000), "read", {"max_objects": 1000}, "HostileSizeError"),
    "not_t7_text": (b"hello world, not a torch file\n", "read", {}, "FormatError"),
    "ascii_huge_storage": (b"4\n1\n3\nV 1\n18\ntorch.FloatStorage\n99999999999\n1 2\n", "read", {}, "HostileSizeError"),
    "ascii_bad_number": (b"4\n1\n3\nV 1\n18\ntorch.FloatStorage\n2\n1 zz\n", "read", {}, "FormatError"),
    "ascii_truncated": (
        b"4\n1\n3\nV 1\n17\ntorch.FloatTensor\n2\n2 2\n",
        "read",
        {},
        "TruncatedFileError|HostileSizeError",
    ),
    "tensor_absurd_empty_dims": (
        float_tensor([0, 1 << 62, 1 << 62], [1, 1, 1], i32(0)),
        "read",
        {},
        "HostileSizeError",
    ),
    "self_containing_table": (self_containing_table(), "read", {}, "ok"),
    "self_containing_module": (self_containing_module(), "convert", {}, "ConversionError"),
    "unsupported_modules": (
        t7_bytes(
            sequential(module("Foo"), module("ReLU"), module("Bar"), module("Foo"), T7Object("cudnn.Baz", T7Table(), 1))
        ),
        "convert",
        {},
        "UnsupportedOpsError",
    ),
    "module_without_weight": (t7_bytes(sequential(module("Linear"))), "convert", {}, "ConversionError"),
}

_net = valid_net()
for _cut in (1, 4, 9, 30, 100, len(_net) // 2, len(_net) - 9, len(_net) - 1):
    # a cut file ends early, or declares a size its remaining bytes cannot hold
    CASES[f"truncated_at_{_cut}"] = (_net[:_cut], "read", {"ascii": False}, "TruncatedFileError|HostileSizeError")
