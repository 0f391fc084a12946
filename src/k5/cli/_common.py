"""Helpers shared by the subcommands: formatting of shapes, sizes and tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["describe_array", "fmt_bytes", "fmt_shape", "table"]


def fmt_shape(shape: Any) -> str:
    if shape is None:
        return "?"
    return "[" + ", ".join(str(d) for d in shape) + "]"


def fmt_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """A plain-text table; columns listed in ``right`` are right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def describe_array(value: Any, *, values: int = 6) -> str:
    """``float32[2, 3] min=.. max=.. mean=.. [first values]`` for a quick look at a tensor."""
    if value is None:
        return "None"
    if isinstance(value, list):
        return f"sequence of {len(value)}: " + "; ".join(describe_array(v, values=2) for v in value[:3])
    arr = np.asarray(value)
    from k5.format.dtypes import from_numpy

    try:
        dtype = from_numpy(arr.dtype)
    except Exception:  # noqa: BLE001 - any odd dtype is just shown as NumPy names it
        dtype = str(arr.dtype)
    head = f"{dtype}{fmt_shape(arr.shape)}"
    if arr.size == 0:
        return head
    flat = arr.reshape(-1)
    shown = ", ".join(_fmt_value(v) for v in flat[:values]) + (", ..." if flat.size > values else "")
    if arr.dtype.kind in "fiub" or arr.dtype.name.startswith(("bfloat", "float8")):
        f64 = flat.astype(np.float64)
        stats = f" min={_fmt_value(np.nanmin(f64))} max={_fmt_value(np.nanmax(f64))} mean={_fmt_value(np.nanmean(f64))}"
    else:
        stats = ""
    return f"{head}{stats} [{shown}]"


def _fmt_value(v: Any) -> str:
    if isinstance(v, (float, np.floating)) or getattr(v, "dtype", np.dtype("O")).kind == "V":
        return f"{float(v):.6g}"
    return str(v)
