"""The op registry is the one list of k5's own ops (declared with ``decomposes_to=``): it names exactly the ops
ONNX lacks, and the exporter has a decomposition for exactly those."""

from __future__ import annotations

import pytest

from k5.ops import all_schemas

onnx = pytest.importorskip("onnx", reason="ONNX's op schemas are the oracle for which ops ONNX has")


def test_the_k5_only_ops_are_the_ones_onnx_lacks():
    ours = {s.name for s in all_schemas() if s.domain == "k5" and not onnx.defs.has(s.name)}
    declared = {s.name for s in all_schemas() if s.k5_only}
    missing, extra = sorted(ours - declared), sorted(declared - ours)
    assert declared == ours, f"declare decomposes_to= on {missing}; drop it from {extra}"


def test_the_exporter_decomposes_every_k5_only_op():
    from k5.convert.onnx.exporter import DECOMPOSITIONS

    declared = sorted(s.name for s in all_schemas() if s.k5_only)
    assert DECOMPOSITIONS.keys() == declared


def test_an_unregistered_decomposition_is_refused():
    from k5.convert.onnx.exporter import DECOMPOSITIONS

    with pytest.raises(ValueError, match="not in the k5 op registry"):
        DECOMPOSITIONS.register("Frobnicate")(lambda ex, node, args: [])
    assert "Frobnicate" not in DECOMPOSITIONS
