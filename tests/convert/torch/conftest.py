"""Shared fixtures of the PyTorch converter tests: the zoo models, converted once per session."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch converter tests need torch")

from torch_zoo import build  # noqa: E402 - after the importorskip

_CACHE: dict[str, Any] = {}


def max_abs_diff(got: Any, want: Any) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    return float(np.abs(got - want).max()) if got.size else 0.0


def assert_close(got: Any, want: Any, *, atol: float = 1e-4, rtol: float = 1e-4) -> float:
    """Max abs diff within ``atol`` and relative error (to the reference's scale) within ``rtol``."""
    diff = max_abs_diff(got, want)
    scale = float(np.abs(np.asarray(want, dtype=np.float64)).max()) or 1.0
    assert diff <= atol, f"max abs diff {diff:.3e} > {atol}"
    assert diff / scale <= rtol, f"relative error {diff / scale:.3e} > {rtol}"
    return diff


def converted(name: str) -> tuple[Any, tuple[Any, ...], Any, list[Any]]:
    """(module, example inputs, k5 model, reference outputs as a flat list) for zoo model ``name``."""
    if name not in _CACHE:
        from k5.convert.torch import from_torch

        module, inputs = build(name)
        model = from_torch(module, inputs)
        with torch.no_grad():
            ref = [t.numpy() for t in torch.utils._pytree.tree_leaves(module(*inputs))]
        _CACHE[name] = (module, inputs, model, ref)
    return _CACHE[name]
