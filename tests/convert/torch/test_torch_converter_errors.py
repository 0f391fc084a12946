"""Any exception raised inside a from_torch converter becomes a ConversionError naming the FX node or module path,
the op (ATen overload or module class) and the original message (issue 8, item 3).

The failing converters are real table entries for ops nobody else converts (a custom ``torch.library`` op and a
test-only module class), registered for the test and removed afterwards; the driver under test is not mocked.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from k5.errors import ConversionError

_lib = torch.library.Library("k5test", "DEF")
_lib.define("boom(Tensor x) -> Tensor")
_lib.impl("boom", lambda x: x * 2, "CompositeExplicitAutograd")
_lib.impl("boom", lambda x: torch.empty_like(x), "Meta")


class UsesBoom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.k5test.boom(x.relu()) + 1


class Layer(nn.Linear):
    """A layer class of its own, so that its module converter is the test's."""


class UsesLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Layer(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


@pytest.fixture
def failing_converters() -> Iterator[None]:
    from k5.convert.torch.export_context import module_key
    from k5.convert.torch.registry import ATEN_EXPORTERS, MODULE_EXPORTERS

    def aten(cx: object, n: object) -> str:
        return {"present": "x"}["absent"]  # a KeyError, as a converter bug would raise

    def module(cx: object, fqn: str, mod: object, p: object, used: object) -> list[str]:
        raise RuntimeError("weights of an unexpected layout")

    ATEN_EXPORTERS.register("k5test.boom.default", produces=["Mul"])(aten)
    MODULE_EXPORTERS.register(module_key(Layer), produces=["Linear"])(module)
    try:
        yield
    finally:
        ATEN_EXPORTERS.entries.pop("k5test.boom.default")
        MODULE_EXPORTERS.entries.pop(module_key(Layer))


def test_aten_converter_failure_names_node_op_and_message(failing_converters: None) -> None:
    from k5.convert.torch import from_torch

    with pytest.raises(ConversionError) as info:
        from_torch(UsesBoom(), (torch.randn(2, 4),))
    msg = str(info.value)
    assert "node 'boom'" in msg and "k5test.boom.default" in msg and "KeyError: 'absent'" in msg
    assert isinstance(info.value.__cause__, KeyError)


def test_module_converter_failure_names_module_class_and_message(failing_converters: None) -> None:
    from k5.convert.torch import from_torch

    with pytest.raises(ConversionError) as info:
        from_torch(UsesLayer().eval(), (torch.randn(2, 4),))
    msg = str(info.value)
    assert "module 'block' (Layer)" in msg and "RuntimeError: weights of an unexpected layout" in msg


def test_a_non_tensor_output_is_a_conversion_error() -> None:
    from k5.convert.torch import from_torch

    class ReturnsNone(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
            return x + 1, None

    with pytest.raises(ConversionError):
        from_torch(ReturnsNone(), (torch.randn(2, 4),))
