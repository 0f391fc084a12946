"""Constant folding for the PyTorch exporter: FX nodes whose inputs are all known at export time are evaluated
now, and their results become :class:`~.export_context.ExportConst` values (``Constant`` nodes on use)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from k5.convert.torch.export_context import ExportConst, Exporter, Sym, aten_key
from k5.errors import ConversionError

__all__ = ["NotFoldableError", "evaluate", "functional_key", "functional_target", "is_symbolic"]


_INPLACE = re.compile(r"^aten\.(?!__)(\w+)_\.(\w+)$")  # not dunders such as aten.__and__.Tensor


def functional_key(key: str) -> str | None:
    """``aten.relu_.default`` -> ``aten.relu.default`` (the value-returning twin of an in-place op)."""
    m = _INPLACE.match(key)
    return f"aten.{m.group(1)}.{m.group(2)}" if m else None


def functional_target(target: Any) -> Any:
    """The functional twin of an in-place ATen overload (or the target itself)."""
    import torch

    m = _INPLACE.match(aten_key(target))
    if not m:
        return target
    return getattr(getattr(torch.ops.aten, m.group(1)), m.group(2))


def is_symbolic(n: Any) -> bool:
    import torch

    v = n.meta.get("val")
    return isinstance(v, torch.SymInt | torch.SymFloat | torch.SymBool) and not _static(v)


def _static(v: Any) -> bool:
    try:
        return v.node.expr.is_number
    except AttributeError:
        return True


class NotFoldableError(Exception):
    """An FX node whose inputs are not all known at export time."""


def evaluate(cx: Exporter, n: Any) -> Any:
    """Run an FX node whose inputs are all known now; its result becomes a Const (or a python value)."""
    import torch
    import torch.fx

    def known(v: Any, a: Any) -> Any:
        if isinstance(v, ExportConst):
            return v.value
        if isinstance(v, (str, Sym)):  # a k5 tensor name or a run-time size: not known now
            raise NotFoldableError(a.name)
        if isinstance(v, list):
            return [known(x, a) for x in v]
        return v

    def real(a: Any) -> Any:
        if isinstance(a, torch.fx.Node):
            if a.name not in cx.env:
                raise ConversionError(f"FX value {a.name!r} is used before it is computed")
            return known(cx.env[a.name], a)
        if isinstance(a, (list, tuple)):
            return type(a)(real(x) for x in a)
        if isinstance(a, dict):
            return {k: real(v) for k, v in a.items()}
        return a

    target: Callable[..., Any] = functional_target(n.target)  # never mutate the module's own tensors
    with torch.no_grad():
        result = target(*real(n.args), **real(n.kwargs))
    hint = cx.scoped(n.name)

    def wrap(r: Any) -> Any:
        if isinstance(r, torch.Tensor):
            return ExportConst(r, hint)
        if isinstance(r, (list, tuple)):
            return [wrap(x) for x in r]
        return r

    return wrap(result)
