"""The file-format registry: which files ``k5 convert`` (and every other tool) can read and write.

Each converter package registers the formats it owns in its ``__init__`` with :func:`register_format`; nothing
registers from inside a function. A format is data, not a class hierarchy:

- ``name``: short id used by ``--from/--to`` (``"onnx"``, ``"k5"``, ``"keras"``, ``"t7"``).
- ``extensions``: lower-case suffixes it is recognised by (``(".onnx",)``); ``matches`` recognises a path that a
  suffix cannot (a SavedModel directory, ``*-symbol.json``).
- ``read(path) -> Model`` and ``write(model, path, **options) -> None`` (``None`` where the direction is not
  supported). A reader treats the file as untrusted: every failure is a :class:`~k5.errors.K5Error` naming the file.
  A writer is atomic: the target appears whole or not at all. ``write_options`` names the keyword options the writer
  takes (``("opset",)`` for ONNX), which ``k5 convert`` passes through when the user sets them.
- ``run(path, inputs) -> outputs``: run the file in the format's *own* runtime (onnxruntime for ONNX, Keras for
  ``.keras``, OpenCV for ``.t7`` where it exists). Verification compares this with the other side. ``None`` when
  the format has no runtime of its own to offer (verification then runs the k5 reference runtime).
  ``runtime`` names it for reports (``"onnxruntime"``). ``run`` is called on a file that ``read`` has accepted
  or that k5 has just written.
- ``extra``: the pip extra that provides what it needs (``pip install 'k5[onnx]'``); ``requires``: the modules
  that must be importable for it to work (checked by :func:`FileFormat.available`).

Lookup imports the converter packages listed in :data:`PACKAGES` (cheap: frameworks load only when used).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from k5.convert import install_hint
from k5.errors import ConversionError

if TYPE_CHECKING:  # pragma: no cover
    from k5.format.model import Model

__all__ = ["PACKAGES", "FileFormat", "all_formats", "format_for", "get_format", "register_format"]

#: converter packages that register formats, imported on the first lookup; a package that is missing is skipped
PACKAGES = (
    "k5.convert.k5file",
    "k5.convert.onnx",
    "k5.convert.torch",
    "k5.convert.keras",
    "k5.convert.mxnet",
    "k5.convert.torch7",
)

Reader = Callable[[str], "Model"]
Writer = Callable[..., None]  # (model, path, **write_options)
Runner = Callable[[str, Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class FileFormat:
    name: str
    extensions: tuple[str, ...]
    description: str
    read: Reader | None = None
    write: Writer | None = None
    run: Runner | None = None
    runtime: str = ""
    extra: str | None = None
    requires: tuple[str, ...] = ()
    matches: Callable[[str], bool] | None = None
    write_options: tuple[str, ...] = ()

    def available(self) -> bool:
        """Whether every module in ``requires`` can be imported here (without importing it)."""
        return all(_importable(m) for m in self.requires)

    def recognises(self, path: str) -> bool:
        if self.matches is not None and self.matches(path):
            return True
        lower = os.fspath(path).lower().rstrip("/\\")
        return any(lower.endswith(ext) for ext in self.extensions)

    def install_hint(self) -> str:
        return install_hint(self.extra) if self.extra else "pip install k5"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package ("tensorflow" of "tensorflow.lite")
        return False


_FORMATS: dict[str, FileFormat] = {}
_loaded = False


def register_format(fmt: FileFormat) -> FileFormat:
    """Add ``fmt`` to the registry; a second format with the same name is an error."""
    if fmt.name in _FORMATS:
        raise ValueError(f"file format {fmt.name!r} is registered twice")
    _FORMATS[fmt.name] = fmt
    return fmt


def _load_packages() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package in PACKAGES:
        if importlib.util.find_spec(package) is not None:
            importlib.import_module(package)


def all_formats() -> list[FileFormat]:
    """Every registered format, in registration order."""
    _load_packages()
    return list(_FORMATS.values())


def get_format(name: str) -> FileFormat:
    _load_packages()
    if name not in _FORMATS:
        raise ConversionError(f"unknown format {name!r}. Expected one of {sorted(_FORMATS)}")
    return _FORMATS[name]


def format_for(path: str, override: str | None = None) -> FileFormat:
    """The format of ``path``: ``override`` if given, else the registered format that recognises it."""
    if override is not None:
        return get_format(override)
    _load_packages()
    # longest matching extension wins (".weights.h5" before ".h5"); `matches` checks come first
    found = [f for f in _FORMATS.values() if f.matches is not None and f.matches(path)]
    if not found:
        lower = os.fspath(path).lower().rstrip("/\\")
        scored = [
            (max(len(e) for e in f.extensions if lower.endswith(e)), f)
            for f in _FORMATS.values()
            if any(lower.endswith(e) for e in f.extensions)
        ]
        found = [f for _, f in sorted(scored, key=lambda t: -t[0])]
    if not found:
        known = sorted({e for f in _FORMATS.values() for e in f.extensions})
        raise ConversionError(
            f"cannot tell the format of {path!r} from its extension. Expected one of {known}, or name it with "
            "--from/--to (see `k5 formats`)"
        )
    return found[0]
