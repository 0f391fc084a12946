"""Converters between k5 and frameworks. Each subpackage imports its framework inside functions only, through
:func:`require`, so that a missing framework is a :class:`~k5.errors.MissingDependencyError` naming the extra to
install (``pip install 'k5[torch]'``) rather than a bare ``No module named 'torch'``."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from k5.errors import K5Error, MissingDependencyError

__all__ = ["EXTRAS", "framework_missing", "install_hint", "require", "requires_extra"]

#: pip extra -> the top-level modules it installs
EXTRAS: dict[str, tuple[str, ...]] = {
    "onnx": ("onnx", "onnxruntime"),
    "torch": ("torch",),
    "keras": ("keras",),
    "tensorflow": ("tensorflow", "keras"),
    "hf": ("transformers",),
}

F = TypeVar("F", bound=Callable[..., Any])


def install_hint(extra: str) -> str:
    return f"pip install 'k5[{extra}]'"


def require(module: str, extra: str, *, purpose: str | None = None) -> ModuleType:
    """Import ``module`` (a framework) or raise :class:`MissingDependencyError` naming the extra that installs it.

    ``purpose`` says what needed it (``"reading .onnx files"``); a converter calls this instead of ``import torch``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        what = f" for {purpose}" if purpose else ""
        absent = isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] == module.split(".")[0]
        why = "is not installed" if absent else f"cannot be imported ({e})"
        hint = install_hint(extra)
        raise MissingDependencyError(f"{module!r} is needed{what} but {why}. Install it with: {hint}") from e


def framework_missing(e: ImportError, extra: str, what: str) -> MissingDependencyError | None:
    """The :class:`MissingDependencyError` for ``e`` when it is ``extra``'s framework failing to import (``what``
    needed it), else None (an unrelated import error, a bug, passes through)."""
    missing = e.name or ""
    if missing.split(".")[0] not in EXTRAS.get(extra, (extra,)):
        return None
    return MissingDependencyError(f"{what} needs {missing!r}, which is not installed. Install it with: "
                                  f"{install_hint(extra)}")  # fmt: skip


def requires_extra(extra: str) -> Callable[[F], F]:
    """Decorate a converter entry point so that its framework failing to import inside it (``import torch``) is a
    :class:`MissingDependencyError` naming ``extra``; any other error passes through unchanged."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except ImportError as e:
                err = framework_missing(e, extra, f"k5.{fn.__name__}")
                if err is None:
                    raise
                raise err from e
            except MissingDependencyError:  # already names its extra
                raise
            except K5Error as e:  # a converter's wrapper may have turned the failed import into a ConversionError
                cause = e.__cause__
                err = framework_missing(cause, extra, f"k5.{fn.__name__}") if isinstance(cause, ImportError) else None
                if err is None:
                    raise
                raise err from cause

        return call  # type: ignore[return-value]

    return wrap
