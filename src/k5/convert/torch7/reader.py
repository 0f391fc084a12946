"""A safe reader of Lua Torch7 serialized files (``torch.save`` / ``.t7``): the trust boundary of the ``.t7`` path.

Torch7's serializer writes one object as a typed record: an int type code, then

- ``0`` nil; ``1`` number (a double); ``2`` string (int length + bytes); ``5`` boolean (an int);
- ``3`` table: an int object index, then (if that index is new) an int pair count and that many key/value records;
- ``4`` torch object: an int object index, then (if new) a version string (``"V 1"``) and the class name (files
  older than versioning have the class name alone), then the object's contents: for ``torch.*Storage`` a long
  element count and the raw elements, for ``torch.*Tensor`` the dimension count, the sizes and strides (longs), the
  1-based storage offset (long) and the storage as a record; for any other class (``nn.*`` modules) the object's
  field table as a record;
- ``6``/``7``/``8`` functions (dumped Lua bytecode): refused, as running or even keeping code is not what a weights
  file needs.

An index seen before is a reference to the object read then (shared tensors, reference cycles). Binary files are
native-endian (little-endian here) with longs of 8 bytes (4 on some platforms: ``long_size=4``); ASCII files hold
the same records as text numbers separated by whitespace.

Every count and size is checked against the bytes left in the file before anything is allocated; nesting is
limited (:data:`MAX_DEPTH`), and so is the number of objects (:data:`MAX_OBJECTS`). Nothing in the file is run.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from k5.errors import FormatError, HostileSizeError, TruncatedFileError, UnsafeFileError

__all__ = [
    "MAX_DEPTH",
    "MAX_OBJECTS",
    "TENSOR_DTYPES",
    "T7Object",
    "T7Storage",
    "T7Table",
    "read_t7",
    "read_t7_bytes",
]

MAX_DEPTH = 200  # nested records (an nn tree of 50 levels is deep; Python's own stack must stay far away)
MAX_OBJECTS = 1_000_000  # records of any kind in one file
MAX_DIM = 1 << 40  # a tensor size or stride beyond this is hostile whatever the storage
MAX_FILE_BYTES = 1 << 34  # 16 GiB: larger files are refused before they are read

TYPE_NIL, TYPE_NUMBER, TYPE_STRING, TYPE_TABLE, TYPE_TORCH, TYPE_BOOLEAN = 0, 1, 2, 3, 4, 5
TYPE_FUNCTIONS = {6: "function", 7: "recursive function (legacy)", 8: "recursive function"}

#: the element type of each torch tensor/storage kind ("Long" depends on the file's long size)
TENSOR_DTYPES: dict[str, str] = {
    "Double": "<f8", "Float": "<f4", "Half": "<f2", "Byte": "u1", "Char": "i1", "Short": "<i2", "Int": "<i4",
    "Long": "long", "Bool": "u1",
    "Cuda": "<f4", "CudaDouble": "<f8", "CudaHalf": "<f2", "CudaByte": "u1", "CudaChar": "i1", "CudaShort": "<i2",
    "CudaInt": "<i4", "CudaLong": "long",
}  # fmt: skip


class T7Table(dict[Any, Any]):
    """A Lua table: keys and values as read (numbers are floats). Equality is identity (tables may be cyclic)."""

    __hash__ = object.__hash__  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __repr__(self) -> str:
        return f"T7Table({len(self)} entries)"

    def array(self) -> list[Any] | None:
        """The values at keys 1..n when the keys are exactly those (a Lua array), else None."""
        n = len(self)
        if all(float(i) in self for i in range(1, n + 1)):
            return [self[float(i)] for i in range(1, n + 1)]
        return None


@dataclass(eq=False)
class T7Object:
    """An instance of a torch class other than a tensor or storage (``nn.Linear``...): its class and field table."""

    class_name: str
    fields: T7Table = field(default_factory=T7Table)
    version: int = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def __repr__(self) -> str:
        return f"T7Object({self.class_name!r}, {sorted(str(k) for k in self.fields)})"


@dataclass(eq=False)
class T7Storage:
    """A ``torch.*Storage``: a flat array of one element type (the writer also uses it for ``LongStorage`` sizes)."""

    class_name: str
    data: np.ndarray


def _tensor_kind(class_name: str, suffix: str) -> str | None:
    if class_name.startswith("torch.") and class_name.endswith(suffix):
        kind = class_name[len("torch.") : -len(suffix)]
        return kind if kind in TENSOR_DTYPES else None
    return None


class _Source:
    """Binary or ASCII primitive reads over bytes, each checked against what is left."""

    def __init__(self, data: bytes, *, ascii: bool, long_size: int) -> None:
        self.data = data
        self.pos = 0
        self.ascii = ascii
        self.long_size = long_size

    def left(self) -> int:
        return len(self.data) - self.pos

    def _need(self, n: int, what: str) -> None:
        if n > self.left():
            raise TruncatedFileError(
                f"the file ends inside {what} at byte {self.pos}: {n} bytes needed, {self.left()} left"
            )

    # -- ASCII tokens ------------------------------------------------------------------------------------------
    def _token(self, what: str) -> bytes:
        data, n = self.data, len(self.data)
        i = self.pos
        while i < n and data[i] in b" \t\r\n":
            i += 1
        j = i
        while j < n and j - i < 64 and data[j] not in b" \t\r\n":
            j += 1
        if i == j:
            raise TruncatedFileError(f"the file ends where {what} was expected (byte {self.pos})")
        self.pos = j
        return data[i:j]

    def _end_of_items(self) -> None:
        # Torch's ASCII writer follows every write call by one newline ("auto spacing")
        if self.pos < len(self.data) and self.data[self.pos] == 0x0A:
            self.pos += 1

    def _ascii_numbers(self, count: int, what: str, parse: Any) -> list[Any]:
        if count * 2 > self.left() + 1:  # every number takes a digit and a separator
            raise HostileSizeError(f"{what} declares {count} numbers but only {self.left()} bytes are left")
        out = []
        for _ in range(count):
            tok = self._token(what)
            try:
                out.append(parse(tok.decode("ascii")))
            except (UnicodeDecodeError, ValueError):
                at = self.pos - len(tok)
                raise FormatError(f"{what}: expected a number at byte {at}. Received: {tok[:20]!r}") from None
        if count:
            self._end_of_items()
        return out

    # -- primitives --------------------------------------------------------------------------------------------
    def int32(self, what: str) -> int:
        if self.ascii:
            return int(self._ascii_numbers(1, what, int)[0])
        self._need(4, what)
        (v,) = struct.unpack_from("<i", self.data, self.pos)
        self.pos += 4
        return int(v)

    def longs(self, count: int, what: str) -> list[int]:
        if self.ascii:
            return [int(v) for v in self._ascii_numbers(count, what, int)]
        self._need(count * self.long_size, what)
        fmt = f"<{count}{'q' if self.long_size == 8 else 'i'}"
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += count * self.long_size
        return [int(v) for v in values]

    def double(self, what: str) -> float:
        if self.ascii:
            return float(self._ascii_numbers(1, what, float)[0])
        self._need(8, what)
        (v,) = struct.unpack_from("<d", self.data, self.pos)
        self.pos += 8
        return float(v)

    def chars(self, n: int, what: str) -> bytes:
        self._need(n, what)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        if self.ascii and n:
            self._end_of_items()
        return out

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        if dtype == "long":
            dtype = "<i8" if self.long_size == 8 or self.ascii else "<i4"
        dt = np.dtype(dtype)
        if self.ascii:
            if dt.itemsize == 1:
                return np.frombuffer(self.chars(count, what), dtype=dt).copy()
            parse = float if dt.kind == "f" else int
            return np.asarray(self._ascii_numbers(count, what, parse), dtype=dt).reshape(count)
        self._need(count * dt.itemsize, what)
        out = np.frombuffer(self.data, dtype=dt, count=count, offset=self.pos).copy()
        self.pos += count * dt.itemsize
        return out


class _Reader:
    def __init__(self, src: _Source, *, max_depth: int, max_objects: int) -> None:
        self.src = src
        self.objects: dict[int, Any] = {}
        self.max_depth = max_depth
        self.max_objects = max_objects
        self.count = 0

    def _string(self, what: str) -> str:
        n = self.src.int32(f"the length of {what}")
        if n < 0:
            raise FormatError(f"{what} has a negative length ({n}) at byte {self.src.pos}")
        if n > self.src.left():
            raise HostileSizeError(f"{what} declares {n} bytes but only {self.src.left()} are left in the file")
        raw = self.src.chars(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")

    def read(self, depth: int = 0) -> Any:
        if depth > self.max_depth:
            raise HostileSizeError(f"records nest deeper than {self.max_depth} levels (at byte {self.src.pos})")
        self.count += 1
        if self.count > self.max_objects:
            raise HostileSizeError(f"the file holds more than {self.max_objects} records")
        at = self.src.pos
        code = self.src.int32("a record's type code")
        if code == TYPE_NIL:
            return None
        if code == TYPE_NUMBER:
            return self.src.double("a number")
        if code == TYPE_BOOLEAN:
            return self.src.int32("a boolean") != 0
        if code == TYPE_STRING:
            return self._string("a string")
        if code == TYPE_TABLE:
            return self._table(depth)
        if code == TYPE_TORCH:
            return self._torch(depth)
        if code in TYPE_FUNCTIONS:
            raise UnsafeFileError(
                f"the record at byte {at} is a serialized Lua {TYPE_FUNCTIONS[code]} (bytecode); "
                "k5 refuses to load code from a .t7 file"
            )
        raise FormatError(
            f"unknown record type code {code} at byte {at}. Expected one of 0-5 (nil, number, "
            "string, table, torch object, boolean)"
        )

    def _index(self) -> int:
        index = self.src.int32("an object index")
        if index < 0:
            raise FormatError(f"negative object index {index} at byte {self.src.pos - 4}")
        return index

    def _table(self, depth: int) -> Any:
        index = self._index()
        if index in self.objects:
            return self.objects[index]
        table = T7Table()
        self.objects[index] = table  # registered before its contents: a table may contain itself
        n = self.src.int32("a table's size")
        if n < 0:
            raise FormatError(f"a table declares a negative size ({n}) at byte {self.src.pos}")
        if n * 2 > self.src.left():  # a key/value pair takes at least two type codes
            raise HostileSizeError(f"a table declares {n} entries but only {self.src.left()} bytes are left")
        for _ in range(n):
            key = self.read(depth + 1)
            value = self.read(depth + 1)
            try:
                table[key] = value
            except TypeError:
                raise FormatError(f"table key of type {type(key).__name__} (index {index}) is not supported") from None
        return table

    def _torch(self, depth: int) -> Any:
        index = self._index()
        if index in self.objects:
            return self.objects[index]
        version = self._string("a class version")
        if version.startswith("V "):
            try:
                number = int(version[2:])
            except ValueError:
                raise FormatError(f"malformed class version {version[:40]!r} (object {index})") from None
            class_name = self._string("a class name")
        else:
            number, class_name = 0, version
        if (kind := _tensor_kind(class_name, "Storage")) is not None:
            return self._storage(index, class_name, kind)
        if (kind := _tensor_kind(class_name, "Tensor")) is not None:
            return self._tensor(index, class_name, kind, depth)
        if class_name.startswith("torch.") and (class_name.endswith("Tensor") or class_name.endswith("Storage")):
            raise FormatError(f"unknown tensor class {class_name!r} (object {index})")
        obj = T7Object(class_name, version=number)
        self.objects[index] = obj
        contents = self.read(depth + 1)
        if isinstance(contents, T7Table):
            obj.fields = contents
        elif contents is not None:
            raise FormatError(f"object {index} ({class_name}) holds a {type(contents).__name__}, not a field table")
        return obj

    def _storage(self, index: int, class_name: str, kind: str) -> T7Storage:
        (n,) = self.src.longs(1, f"the size of {class_name} {index}")
        dtype = TENSOR_DTYPES[kind]
        itemsize = 1 if self.src.ascii else (self.src.long_size if dtype == "long" else np.dtype(dtype).itemsize)
        if n < 0 or n * itemsize > self.src.left():
            raise HostileSizeError(
                f"{class_name} {index} declares {n} elements ({n * itemsize} bytes) but only "
                f"{self.src.left()} bytes are left in the file"
            )
        storage = T7Storage(class_name, self.src.array(dtype, n, f"the elements of {class_name} {index}"))
        self.objects[index] = storage
        return storage

    def _tensor(self, index: int, class_name: str, kind: str, depth: int) -> np.ndarray:
        ndim = self.src.int32(f"the rank of {class_name} {index}")
        if ndim < 0 or ndim > 64:
            raise HostileSizeError(f"{class_name} {index} declares rank {ndim}. Expected 0 to 64")
        sizes = self.src.longs(ndim, f"the sizes of {class_name} {index}")
        strides = self.src.longs(ndim, f"the strides of {class_name} {index}")
        (offset,) = self.src.longs(1, f"the storage offset of {class_name} {index}")
        offset -= 1  # Lua's offsets are 1-based
        storage = self.read(depth + 1)
        where = f"{class_name} {index}"
        if any(s > MAX_DIM for s in sizes) or any(s > MAX_DIM for s in strides):
            raise HostileSizeError(f"{where} declares sizes {sizes} and strides {strides} beyond {MAX_DIM}")
        if any(s < 0 for s in sizes) or any(s < 0 for s in strides):
            raise FormatError(f"{where} has negative sizes or strides: sizes={sizes} strides={strides}")
        numel = 1
        for s in sizes:
            numel *= s
        if ndim == 0 or numel == 0:
            out = np.zeros((0,) if ndim == 0 else tuple(sizes), dtype=np.dtype(self._dtype(kind)))
            self.objects[index] = out
            return out
        if not isinstance(storage, T7Storage):
            raise FormatError(f"{where} of {numel} elements has no storage (found {type(storage).__name__})")
        if _tensor_kind(storage.class_name, "Storage") != kind:
            raise FormatError(f"{where} is backed by a {storage.class_name}")
        last = offset + sum((s - 1) * st for s, st in zip(sizes, strides, strict=True))
        if offset < 0 or last >= storage.data.size:
            raise HostileSizeError(
                f"{where} (sizes={sizes}, strides={strides}, offset={offset + 1}) reaches element {last + 1} of a "
                f"storage of {storage.data.size}"
            )
        base = storage.data
        item = base.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[offset:], shape=tuple(sizes), strides=tuple(st * item for st in strides), writeable=False
        )
        out = np.array(view, copy=True)
        self.objects[index] = out
        return out

    def _dtype(self, kind: str) -> str:
        dtype = TENSOR_DTYPES[kind]
        return ("<i8" if self.src.long_size == 8 or self.src.ascii else "<i4") if dtype == "long" else dtype


def read_t7_bytes(
    data: bytes,
    *,
    ascii: bool | None = None,
    long_size: int | None = None,
    max_depth: int = MAX_DEPTH,
    max_objects: int = MAX_OBJECTS,
) -> Any:
    """The object a ``torch.save`` file holds. ``ascii``/``long_size`` default to detection: binary when the first
    four bytes are a known type code, else ASCII; 8-byte longs, else 4-byte longs when the file does not parse with
    8 but parses to its last byte with 4 (otherwise the error of the 8-byte reading is raised)."""
    if ascii is None:
        ascii = not (len(data) >= 4 and 0 <= struct.unpack_from("<i", data, 0)[0] <= 8)
    if long_size not in (None, 4, 8):
        raise ValueError(f"long_size must be 4 or 8. Received: {long_size}")
    sizes = [long_size] if long_size is not None else ([8] if ascii else [8, 4])
    first: FormatError | None = None
    for size in sizes:
        reader = _Reader(_Source(data, ascii=ascii, long_size=size), max_depth=max_depth, max_objects=max_objects)
        try:
            value = reader.read()
        except UnsafeFileError:
            raise
        except FormatError as e:
            first = first or e
            continue
        if first is not None and reader.src.left():  # the 4-byte fallback must account for every byte
            break
        return value
    assert first is not None
    raise first


def read_t7(path: str | os.PathLike[str], **kw: Any) -> Any:
    """Read a ``.t7`` file (see :func:`read_t7_bytes`); errors name the file."""
    path = os.fspath(path)
    where = os.path.basename(path)
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise HostileSizeError(f"the file has {size} bytes; k5 reads .t7 files up to {MAX_FILE_BYTES}")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise FormatError(f"cannot read the file: {e.strerror or e}", where=where) from None
    except FormatError as e:
        raise e.located(where) from None
    try:
        return read_t7_bytes(data, **kw)
    except FormatError as e:
        raise e.located(where) from None
