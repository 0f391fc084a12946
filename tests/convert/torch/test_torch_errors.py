"""Errors: unsupported ops are listed all at once (with counts), in both directions; registries refuse duplicates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from k5.errors import ConversionError, UnsupportedOpsError
from k5.format.model import Graph, Model, Node, TensorInfo


class Unsupported(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values, _ = torch.sort(x, dim=-1)
        a = torch.special.i0(values)
        b = torch.special.i0(a)
        return b + torch.cummax(x, dim=-1).values


def test_from_torch_lists_every_unsupported_op() -> None:
    from k5.convert.torch import from_torch

    with pytest.raises(UnsupportedOpsError) as info:
        from_torch(Unsupported(), (torch.randn(2, 5),))
    err = info.value
    assert err.framework == "PyTorch"
    assert err.counts == {"aten.sort.default": 1, "aten.special_i0.default": 2, "aten.cummax.default": 1}
    assert "3 unsupported PyTorch op(s)" in str(err) and "aten.special_i0.default (x2)" in str(err)


def test_unsupported_layer_configuration_names_the_module() -> None:
    from k5.convert.torch import from_torch

    class Projected(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.LSTM(4, 8, proj_size=3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.enc(x)[0]

    with pytest.raises(ConversionError, match=r"module 'enc' \(LSTM\).*proj_size"):
        from_torch(Projected(), (torch.randn(5, 2, 4),))


def test_to_torch_lists_every_unsupported_op() -> None:
    from k5.convert.torch import to_torch

    graph = Graph(
        nodes=[
            Node("a", "Det", ["x"], ["a"]),
            Node("b", "Det", ["x"], ["b"]),
            Node("c", "NonMaxSuppression", ["x", "x"], ["c"]),
            Node("d", "Relu", ["a"], ["d"]),
        ],
        inputs=[TensorInfo("x", "float32", [2, 2])],
        outputs=[TensorInfo("d", "float32", [])],
    )
    with pytest.raises(UnsupportedOpsError) as info:
        to_torch(Model(graph))
    assert info.value.counts == {"Det": 2, "NonMaxSuppression": 1}


def test_to_torch_unsupported_attribute_names_the_node() -> None:
    from k5.convert.torch import to_torch

    w = np.ones((1, 8, 3), np.float32)
    r = np.ones((1, 8, 2), np.float32)
    graph = Graph(
        nodes=[Node("gru", "GRU", ["x"], ["y"], {"hidden_size": 2, "linear_before_reset": 0}, {"W": w, "R": r})],
        inputs=[TensorInfo("x", "float32", [4, 1, 3])],
        outputs=[TensorInfo("y", "float32", None)],
    )
    with pytest.raises(ConversionError, match=r"node 'gru' \(GRU\).*linear_before_reset=0"):
        to_torch(Model(graph))


def test_registering_a_converter_twice_is_an_error() -> None:
    import k5.convert.torch  # noqa: F401 - fills the tables
    from k5.convert.table import ConverterTable
    from k5.convert.torch.registry import ATEN_EXPORTERS, IMPORTERS

    table = ConverterTable("test")
    table.register("x")(lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        table.register("x")(lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        ATEN_EXPORTERS.register("aten.relu.default")(lambda cx, n: None)
    with pytest.raises(ValueError, match="already registered"):
        IMPORTERS.register("Conv")(lambda b, n, i, a: None)


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("register_builder('Reluu', how='torch.relu')", "Reluu"),  # an importer keyed by an unknown op
        ("MODULE_EXPORTERS.register('my.Layer', produces=['Conv', 'Convv'])", "Convv"),  # produces= a typo
        ("ATEN_EXPORTERS.register('aten.my_op.default', produces=['k5.NoSuchOp'])", "k5.NoSuchOp"),
    ],
)
def test_a_converter_naming_an_unknown_op_fails_at_import(source: str, bad: str, tmp_path, monkeypatch) -> None:
    """A converter module with a typo in an op name cannot be imported: the table checks it against the registry."""
    import importlib

    from k5.convert.torch.registry import ATEN_EXPORTERS, IMPORTERS, MODULE_EXPORTERS

    sizes = [len(t.entries) for t in (ATEN_EXPORTERS, IMPORTERS, MODULE_EXPORTERS)]
    (tmp_path / "k5_typo_converter.py").write_text(
        "from k5.convert.torch.registry import ATEN_EXPORTERS, MODULE_EXPORTERS, register_builder\n"
        f"@{source}\n"
        "def convert(*args):\n"
        "    return None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=rf"names op '{bad}', which is not in the k5 op registry"):
        importlib.import_module("k5_typo_converter")
    assert [len(t.entries) for t in (ATEN_EXPORTERS, IMPORTERS, MODULE_EXPORTERS)] == sizes  # nothing half-registered


def test_a_builder_failure_is_a_conversion_error_naming_node_and_op() -> None:
    """torch's own error (a bias of 5 for 4 outputs) comes back as a ConversionError on the node, chained to it."""
    from k5.convert.torch import to_torch

    weights = {"weight": np.ones((4, 3), np.float32), "bias": np.ones(5, np.float32)}
    graph = Graph(
        nodes=[Node("head.fc", "Linear", ["x"], ["y"], {}, weights)],
        inputs=[TensorInfo("x", "float32", [2, 3])],
        outputs=[TensorInfo("y", "float32", None)],
    )
    with pytest.raises(
        ConversionError, match=r"(?s)^node 'head.fc' \(Linear\): .*RuntimeError: .*size mismatch for bias"
    ) as info:
        to_torch(Model(graph))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_an_input_computed_by_no_node_is_a_conversion_error() -> None:
    from k5.convert.torch import to_torch

    graph = Graph(
        nodes=[Node("r", "Relu", ["nowhere"], ["y"])],
        inputs=[TensorInfo("x", "float32", [2])],
        outputs=[TensorInfo("y", "float32", None)],
    )
    with pytest.raises(
        ConversionError, match=r"node 'r' \(Relu\): input 'nowhere' is not computed by any earlier node"
    ):
        to_torch(Model(graph))
