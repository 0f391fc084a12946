"""Whole-file cases of the malicious corpus (see corpus.py): mutations of a valid file written by ``k5.save``.

Layout-generic where possible: "wrong HDF5 type in every slot" walks the base file and replaces each dataset,
group and attribute it finds, so new slots are covered as the format grows.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from _sec_models import mlp
from corpus import FORMAT, SIZE, Case

UNSAFE = ("UnsafeFileError",)
Mutator = Callable[[h5py.File, Path], Any]


def _base(out_dir: Path, name: str = "base.k5", **kwargs: Any) -> Path:
    import k5

    path = out_dir / name
    if not path.exists():
        k5.save(mlp(0), path, **kwargs)
    return path


def _slots(base: Path) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """(datasets, groups, (object path, attribute name)) of the base file."""
    datasets: list[str] = []
    groups: list[str] = []
    with h5py.File(base, "r") as f:
        attrs: list[tuple[str, str]] = [("/", a) for a in f.attrs]

        def visit(name: str, obj: Any) -> None:
            (datasets if isinstance(obj, h5py.Dataset) else groups).append("/" + name)
            attrs.extend(("/" + name, a) for a in obj.attrs)

        f.visititems(visit)
    return datasets, groups, attrs


def _replace(f: h5py.File, path: str, make: Callable[[h5py.Group, str], Any]) -> None:
    parent, name = path.rsplit("/", 1)
    group = f[parent or "/"]
    del group[name]
    make(group, name)


def _network(f: h5py.File) -> dict[str, Any]:
    return json.loads(f["model/network"][()].decode("utf-8"))


def _set_network(f: h5py.File, doc: dict[str, Any] | bytes) -> None:
    text = doc if isinstance(doc, bytes) else json.dumps(doc).encode("utf-8")
    del f["model/network"]
    f["model"].create_dataset("network", data=np.frombuffer(text, dtype=f"S{len(text)}")[0])


def _network_bytes(base: Path) -> bytes:
    with h5py.File(base, "r") as f:
        return f["model/network"][()]


# --- replacement kinds for a dataset slot --------------------------------------------------------------------------
def _dataset_kinds() -> dict[str, Callable[[h5py.Group, str], Any]]:
    ref_holder: dict[str, Any] = {}

    def reference(g: h5py.Group, n: str) -> None:
        ds = g.create_dataset(n, shape=(2,), dtype=h5py.ref_dtype)
        ds[0] = g.file["/"].ref
        ref_holder["x"] = ds

    def region_ref(g: h5py.Group, n: str) -> None:
        target = g.file.require_dataset("/aux_target", shape=(4,), dtype="f4")
        ds = g.create_dataset(n, shape=(1,), dtype=h5py.regionref_dtype)
        ds[0] = target.regionref[0:2]

    return {
        "group": lambda g, n: g.create_group(n),
        "int_scalar": lambda g, n: g.create_dataset(n, data=7),
        "float_wrong_shape": lambda g, n: g.create_dataset(n, data=np.ones((3, 5, 7), "f4")),
        "empty_dataspace": lambda g, n: g.create_dataset(n, data=h5py.Empty("f4")),
        "zero_size": lambda g, n: g.create_dataset(n, shape=(0, 64), dtype="f4"),
        "fixed_string": lambda g, n: g.create_dataset(n, data=np.bytes_(b"hello")),
        "vlen_string_array": lambda g, n: g.create_dataset(n, data=["a", "b"], dtype=h5py.string_dtype()),
        "vlen_ints": lambda g, n: g.create_dataset(n, shape=(2,), dtype=h5py.vlen_dtype(np.int32)),
        "compound": lambda g, n: g.create_dataset(n, shape=(4,), dtype=np.dtype([("a", "f4"), ("b", "i8")])),
        "enum": lambda g, n: g.create_dataset(n, shape=(4,), dtype=h5py.enum_dtype({"A": 0, "B": 1}, basetype="i1")),
        "opaque": lambda g, n: g.create_dataset(n, data=np.void(b"\x00" * 16)),
        "object_reference": reference,
        "region_reference": region_ref,
        "big_endian": lambda g, n: g.create_dataset(n, data=np.ones((64, 64), ">f4")),
        "float128": lambda g, n: g.create_dataset(n, data=np.ones((64, 64), np.longdouble)),
        "array_dtype": lambda g, n: g.create_dataset(n, shape=(64,), dtype=np.dtype(("f4", (64,)))),
        "bool_enum": lambda g, n: g.create_dataset(n, data=np.ones((64, 64), bool)),
        "complex": lambda g, n: g.create_dataset(n, data=np.ones((64, 64), "c8")),
        "unwritten_contiguous": lambda g, n: g.create_dataset(n, shape=(64, 64), dtype="f4"),
    }


#: replacements of a validation tensor that k5.run accepts (it casts array-likes to the declared dtype)
_CASTABLE = ("zero_size", "complex", "bool_enum", "int_scalar")


def _attr_kinds() -> dict[str, Callable[[h5py.AttributeManager, str], Any]]:
    def setter(value: Any, dtype: Any = None) -> Callable[[h5py.AttributeManager, str], Any]:
        def apply(a: h5py.AttributeManager, n: str) -> None:
            if n in a:
                del a[n]
            if dtype is None:
                a[n] = value
            else:
                a.create(n, value, dtype=dtype)

        return apply

    return {
        "int": setter(3),
        "float_array": setter(np.ones(1000, "f8")),
        "empty": setter(h5py.Empty("f4")),
        "bytes_non_utf8": setter(np.bytes_(b"\xff\xfe1.0")),
        "vlen_non_utf8": setter(b"\xff\xfe", h5py.string_dtype("ascii")),
        "string_array": setter(np.array([b"1.0", b"2.0"])),
        "compound": setter(np.zeros(2, dtype=[("a", "i4"), ("b", "f8")])),
        "huge_string": setter("9" * 60_000),
        "nan": setter(np.nan),
    }


def file_cases(out_dir: Path, rng: random.Random) -> list[Case]:
    out_dir.mkdir(parents=True, exist_ok=True)
    base = _base(out_dir)
    base_gzip = _base(out_dir, "base_gzip.k5", compression="gzip")
    data = base.read_bytes()
    size = len(data)
    cases: list[Case] = []

    def write_bytes(
        name: str, slot: str, blob: bytes, expect: tuple[str, ...] = FORMAT, may_load: bool = False
    ) -> None:
        path = out_dir / f"{name}.k5"
        path.write_bytes(blob)
        cases.append(Case(name, slot, path, "load", expect, may_load))

    def mutate(name: str, slot: str, fn: Mutator, expect: tuple[str, ...] = FORMAT, may_load: bool = False,
               src: Path = base) -> None:  # fmt: skip
        path = out_dir / f"{name}.k5"
        shutil.copyfile(src, path)
        with h5py.File(path, "r+") as f:
            fn(f, path)
        cases.append(Case(name, slot, path, "load", expect, may_load))

    # truncation at many offsets
    offsets = sorted({0, 1, 7, 8, 9, 40, 100, 511, 512, 1000, 2048, size - 1, size - 8, size - 100}
                     | {size * i // 48 for i in range(1, 48)})  # fmt: skip
    for off in offsets:
        write_bytes(f"truncated_at_{off}", "truncation", data[:off])
    write_bytes("extended_garbage", "truncation", data + os.urandom(0) + b"\xab" * 4096, may_load=True)
    write_bytes("not_hdf5_zip", "truncation", b"PK\x03\x04" + b"\x00" * 200)
    write_bytes("pickle_file", "code-exec", b"\x80\x04\x95" + b"cos\nsystem\n(S'echo pwned'\ntR." + b"\x00" * 64)
    # random bit flips anywhere (may be harmless)
    for i in range(80):
        blob = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 4, 16))):
            pos = rng.randrange(size)
            blob[pos] ^= 1 << rng.randrange(8)
        write_bytes(f"bitflip_{i:02d}", "bitflip", bytes(blob), (), may_load=True)
    # bit flips inside the network JSON text (found by its bytes)
    net = _network_bytes(base)
    start = data.find(net[:64])
    for i in range(24):
        blob = bytearray(data)
        pos = start + rng.randrange(len(net))
        blob[pos] ^= 1 << rng.randrange(8)
        write_bytes(f"bitflip_json_{i:02d}", "bitflip", bytes(blob), (), may_load=True)
    # bit flips inside each weight: the stored sha256 must catch them (k5.load's validate() verifies checksums)
    with h5py.File(base, "r") as f:
        weight_offsets = {}
        f["model/weights"].visititems(
            lambda n, o: weight_offsets.__setitem__(n, (o.id.get_offset(), o.nbytes)) if isinstance(o, h5py.Dataset)
            else None)  # fmt: skip
    for name, (off, nbytes) in sorted(weight_offsets.items()):
        blob = bytearray(data)
        blob[off + rng.randrange(nbytes)] ^= 1 << rng.randrange(8)
        write_bytes(f"weight_bitflip_{name.replace('/', '_')}", "checksum", bytes(blob), ("ChecksumError",))

    # wrong HDF5 type in every slot
    datasets, groups, attrs = _slots(base)
    for ds in datasets:
        for kind, make in _dataset_kinds().items():
            label = ds.strip("/").replace("/", "_")
            # a validation tensor of another (valid) dtype/shape fails when run, which is still a K5Error
            mutate(
                f"slot_{label}__{kind}",
                "wrong-type",
                lambda f, p, d=ds, m=make: _replace(f, d, m),
                (),
                may_load=ds.startswith("/validate/output")
                or (ds.startswith("/validate") and kind in _CASTABLE)
                or (ds in ("/author", "/description") and kind == "fixed_string"),
            )
        required = ds.startswith(("/model", "/validate/input"))
        mutate(f"slot_{label}__missing", "wrong-type", lambda f, p, d=ds: f.__delitem__(d), (), may_load=not required)
    for grp in groups:
        label = grp.strip("/").replace("/", "_")
        mutate(f"group_{label}__dataset", "wrong-type", lambda f, p, g=grp: _replace(
            f, g, lambda parent, n: parent.create_dataset(n, data=np.arange(4))))  # fmt: skip
        mutate(f"group_{label}__missing", "wrong-type", lambda f, p, g=grp: f.__delitem__(g), (),
               may_load=not grp.startswith(("/model", "/validate/input")))  # fmt: skip
    for obj, attr in attrs:
        for kind, setter in _attr_kinds().items():
            label = (obj.strip("/").replace("/", "_") or "root") + "." + attr
            # a root attribute such as 'producer' is free text; sha256 of the wrong type counts as absent
            harmless = attr in ("producer", "created") or (attr == "sha256" and kind != "huge_string")
            mutate(
                f"attr_{label}__{kind}",
                "wrong-type",
                lambda f, p, o=obj, a=attr, s=setter: s(f[o].attrs, a),
                (),
                may_load=harmless or (attr in ("rtol", "atol") and kind == "int"),
            )
        mutate(f"attr_{(obj.strip('/').replace('/', '_') or 'root')}.{attr}__missing", "wrong-type",
               lambda f, p, o=obj, a=attr: f[o].attrs.__delitem__(a),
               may_load=attr not in ("k5_version",))  # fmt: skip

    # checksums
    mutate("sha256_wrong", "checksum", lambda f, p: f["model/weights/fc0/weight"].attrs.__setitem__("sha256", "0" * 64),
           ("ChecksumError",))  # fmt: skip
    mutate("sha256_not_hex", "checksum", lambda f, p: f["model/weights/fc0/weight"].attrs.__setitem__("sha256", "zz"),
           ("ChecksumError",))  # fmt: skip

    # huge declared shapes (declared size vs stored size vs file size)
    def huge_weight(f: h5py.File, p: Path, shape: tuple[int, ...], **kw: Any) -> None:
        doc = _network(f)
        doc["graph"]["nodes"][0]["weights"]["weight"]["shape"] = list(shape)
        _set_network(f, doc)
        _replace(f, "/model/weights/fc0/weight", lambda g, n: g.create_dataset(n, shape=shape, dtype="f4", **kw))

    mutate("huge_weight_chunked_unwritten", "huge-shape",
           lambda f, p: huge_weight(f, p, (1 << 20, 1 << 20), chunks=(64, 64)), SIZE)  # fmt: skip
    mutate(
        "huge_weight_gzip_unwritten",
        "huge-shape",
        lambda f, p: huge_weight(f, p, (1 << 16, 1 << 16), chunks=(256, 256), compression="gzip"),
        SIZE,
    )
    mutate("huge_weight_contiguous_unwritten", "huge-shape",
           lambda f, p: huge_weight(f, p, (1 << 18, 1 << 18)), SIZE)  # fmt: skip

    def gzip_bomb(f: h5py.File, p: Path, rows: int) -> None:
        import zlib

        chunk = zlib.compress(bytes(1 << 20), 9)  # 1 MiB of zeros -> ~1 KiB
        doc = _network(f)
        doc["graph"]["nodes"][0]["weights"]["weight"]["shape"] = [rows, 1 << 18]
        _set_network(f, doc)
        del f["model/weights/fc0/weight"]
        ds = f["model/weights/fc0"].create_dataset("weight", shape=(rows, 1 << 18), dtype="f4", chunks=(1, 1 << 18),
                                                   compression="gzip")  # fmt: skip
        for r in range(rows):
            ds.id.write_direct_chunk((r, 0), chunk)

    # within deflate's ~1032:1 limit, so allowed (docs/security.md: memory is bounded by 1100 x the file size)
    mutate("gzip_bomb_256mib", "huge-shape", lambda f, p: gzip_bomb(f, p, 256), (), may_load=True)
    mutate("huge_validation_input", "huge-shape", lambda f, p: _replace(
        f, "/validate/input/x", lambda g, n: g.create_dataset(n, shape=(1 << 40, 64), dtype="f4", chunks=(1, 64))),
        SIZE)  # fmt: skip
    mutate("huge_network_fixed_string", "huge-shape", lambda f, p: _replace(
        f, "/model/network", lambda g, n: g.create_dataset(n, shape=(), dtype="S2000000000")), SIZE)  # fmt: skip
    mutate("huge_author_fixed_string", "huge-shape", lambda f, p: _replace(
        f, "/author", lambda g, n: g.create_dataset(n, shape=(), dtype="S1500000000")), SIZE)  # fmt: skip
    mutate("huge_network_array_of_strings", "huge-shape", lambda f, p: _replace(
        f, "/model/network", lambda g, n: g.create_dataset(n, shape=(1 << 40,), dtype=h5py.string_dtype(),
                                                           chunks=(1024,))), FORMAT)  # fmt: skip
    mutate("huge_training_data", "huge-shape", lambda f, p: f.create_group("training").create_dataset(
        "data", shape=(1 << 40, 1 << 10), dtype="f4", chunks=(16, 1024)), SIZE)  # fmt: skip
    mutate("many_metadata_entries", "graph-size", lambda f, p: [f.require_group("metadata").create_dataset(
        f"k{i}", data="v", dtype=h5py.string_dtype()) for i in range(3000)], (), may_load=True)  # fmt: skip

    # network JSON inside the file: depth, encoding
    mutate("network_deep_json", "json-depth", lambda f, p: _set_network(f, b"[" * 200_000 + b"]" * 200_000), FORMAT)
    mutate("network_not_utf8", "non-utf8", lambda f, p: _set_network(f, b'{"k5_network": "\xff\xfe"}'), FORMAT)
    mutate("network_utf16", "non-utf8", lambda f, p: _set_network(f, json.dumps(_network(f)).encode("utf-16")),
           FORMAT)  # fmt: skip
    mutate("network_vlen_bytes_non_utf8", "non-utf8", lambda f, p: _replace(
        f, "/model/network", lambda g, n: g.create_dataset(n, data=b"\xff{}", dtype=h5py.string_dtype("ascii"))),
        FORMAT)  # fmt: skip
    mutate("author_not_utf8", "non-utf8", lambda f, p: _replace(
        f, "/author", lambda g, n: g.create_dataset(n, data=np.bytes_(b"\xff\xfeevil"))), FORMAT)  # fmt: skip
    mutate("metadata_key_not_utf8", "non-utf8", lambda f, p: f.require_group("metadata").create_dataset(
        b"\xff\xfe", data="v", dtype=h5py.string_dtype()), FORMAT, may_load=True)  # fmt: skip
    mutate("validation_name_not_utf8", "non-utf8", lambda f, p: f["validate/input"].create_dataset(
        b"\xff\xfe", data=np.zeros((2, 64), "f4")), (*FORMAT, "RunError"))  # fmt: skip
    mutate("metadata_key_percent_invalid", "names", lambda f, p: f.require_group("metadata").create_dataset(
        "%ff%fe", data="v", dtype=h5py.string_dtype()), FORMAT)  # fmt: skip

    # names in the JSON that do not match the HDF5 layout
    def rename_node(new: str) -> Mutator:
        def fn(f: h5py.File, p: Path) -> None:
            doc = _network(f)
            doc["graph"]["nodes"][0]["id"] = new
            _set_network(f, doc)

        return fn

    for label, new in (("slash", "fc0/weight"), ("dotdot", ".."), ("dot", "."), ("traversal", "../../validate"),
                       ("percent", "fc%30"), ("surrogate", "fc\ud800")):  # fmt: skip
        mutate(f"node_id_{label}", "names", rename_node(new), (*FORMAT, "WeightError"))

    # links, external and virtual data: refused
    (out_dir / "other.h5").unlink(missing_ok=True)
    with h5py.File(out_dir / "other.h5", "w") as other:
        other["w"] = np.ones((64, 64), "f4")
        other["network"] = _network_bytes(base)
    (out_dir / "secret.json").write_bytes(_network_bytes(base))
    secret = str(out_dir / "secret.json")
    w = "/model/weights/fc0/weight"
    mutate(
        "external_link_weight",
        "external",
        lambda f, p: _replace(f, w, lambda g, n: g.__setitem__(n, h5py.ExternalLink(str(out_dir / "other.h5"), "/w"))),
        UNSAFE,
    )
    mutate("external_link_relative", "external", lambda f, p: _replace(
        f, w, lambda g, n: g.__setitem__(n, h5py.ExternalLink("other.h5", "/w"))), UNSAFE)  # fmt: skip
    mutate(
        "external_link_network",
        "external",
        lambda f, p: _replace(
            f, "/model/network", lambda g, n: g.__setitem__(n, h5py.ExternalLink("other.h5", "/network"))
        ),
        UNSAFE,
    )
    mutate("external_link_etc_passwd", "external", lambda f, p: _replace(
        f, "/author", lambda g, n: g.__setitem__(n, h5py.ExternalLink("/etc/passwd", "/"))), UNSAFE)  # fmt: skip
    mutate(
        "external_link_group",
        "external",
        lambda f, p: _replace(
            f, "/model/weights/fc0", lambda g, n: g.__setitem__(n, h5py.ExternalLink("other.h5", "/"))
        ),
        UNSAFE,
    )
    mutate(
        "soft_link_weight",
        "external",
        lambda f, p: _replace(f, w, lambda g, n: g.__setitem__(n, h5py.SoftLink("/validate/input/x"))),
        (*UNSAFE, "WeightError"),
    )
    mutate("soft_link_loop", "external", lambda f, p: _replace(
        f, "/model/network", lambda g, n: g.__setitem__(n, h5py.SoftLink("/model/network"))), UNSAFE)  # fmt: skip
    mutate("soft_link_model_to_root", "external", lambda f, p: _replace(
        f, "/model", lambda g, n: g.__setitem__(n, h5py.SoftLink("/"))), UNSAFE)  # fmt: skip
    mutate("hard_link_cycle_metadata", "external", lambda f, p: f.require_group("metadata").__setitem__(
        "self", f["metadata"]), FORMAT)  # fmt: skip
    mutate(
        "hard_link_weights_cycle",
        "external",
        lambda f, p: f["model/weights/fc0"].__setitem__("loop", f["model/weights"]),
        (),
        may_load=True,
    )  # an undeclared extra entry: ignored, never walked

    def external_storage(path_in: str, target: str, dtype: str, shape: tuple[int, ...]) -> Mutator:
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return lambda f, p: _replace(f, path_in, lambda g, n: g.create_dataset(
            n, shape=shape, dtype=dtype, external=[(target, 0, size)]))  # fmt: skip

    mutate("external_storage_weight_passwd", "external", external_storage(w, "/etc/passwd", "f4", (64, 64)), UNSAFE)
    mutate("external_storage_weight_devzero", "external", external_storage(w, "/dev/zero", "f4", (64, 64)), UNSAFE)
    mutate("external_storage_weight_relative", "external", external_storage(w, "secret.json", "f4", (64, 64)),
           UNSAFE)  # fmt: skip
    net_len = len(_network_bytes(base))
    mutate("external_storage_network", "external",
           external_storage("/model/network", secret, f"S{net_len}", (1,)), UNSAFE)  # fmt: skip
    mutate("external_storage_author", "external", external_storage("/author", "/etc/hostname", "S8", (1,)), UNSAFE)
    mutate("external_storage_validation", "external",
           external_storage("/validate/input/x", "/dev/urandom", "f4", (2, 64)), UNSAFE)  # fmt: skip

    def virtual(path_in: str, shape: tuple[int, ...], dtype: str, source: str, src_path: str) -> Mutator:
        def fn(f: h5py.File, p: Path) -> None:
            layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
            layout[...] = h5py.VirtualSource(source, src_path, shape=shape)
            _replace(f, path_in, lambda g, n: g.create_virtual_dataset(n, layout))

        return fn

    mutate("virtual_weight", "external", virtual(w, (64, 64), "f4", str(out_dir / "other.h5"), "/w"), UNSAFE)
    mutate("virtual_weight_self", "external", virtual(w, (64, 64), "f4", ".", "/validate/input/x"), UNSAFE)
    mutate("virtual_network", "external", virtual("/model/network", (), f"S{net_len}", str(out_dir / "other.h5"),
                                                  "/network"), UNSAFE)  # fmt: skip
    for filt, kw in (("lzf", {"compression": "lzf"}), ("scaleoffset", {"scaleoffset": 4}),
                     ("nbit_like_szip", {"compression": "lzf", "shuffle": True})):  # fmt: skip
        mutate(
            f"filter_{filt}",
            "external",
            lambda f, p, k=kw: _replace(
                f, w, lambda g, n: g.create_dataset(n, data=np.ones((64, 64), "f4"), chunks=(8, 8), **k)
            ),
            UNSAFE,
        )
    # compressed file variant: bit flips in compressed chunks
    gz = base_gzip.read_bytes()
    for i in range(16):
        blob = bytearray(gz)
        pos = rng.randrange(len(gz) // 4, len(gz))
        blob[pos] ^= 1 << rng.randrange(8)
        write_bytes(f"gzip_bitflip_{i:02d}", "bitflip", bytes(blob), (), may_load=True)
    for off in (len(gz) // 3, len(gz) // 2, len(gz) - 64):
        write_bytes(f"gzip_truncated_at_{off}", "truncation", gz[:off])
    return cases
