"""ONNX backend node test cases for the primitive op families (elementwise, reduce, shape, loss).

A case is chosen for a family when it uses one of the family's ops and nothing outside the primitive families (so
a failure points at these kernels or the importer, not at another family); see _onnx_cases.py.
"""

from __future__ import annotations

import _onnx_cases
import numpy as np
import pytest
from _onnx_cases import check_case as check_case  # re-exported for the family test modules
from _onnx_cases import family

ELEMENTWISE = family("elementwise")
REDUCE = family("reduce")
SHAPE = family("shape")
LOSS = family("loss")
PRIMITIVE = ELEMENTWISE | REDUCE | SHAPE | LOSS


def cases_for(family: frozenset[str]) -> list:
    """The ONNX cases that exercise ``family`` and only primitive ops (a failure points at these kernels)."""
    return _onnx_cases.cases_for(family, within=PRIMITIVE)


def reference_vs_k5(op_type: str, inputs: dict[str, np.ndarray], attrs: dict | None = None, n_outputs: int = 1):
    """One ONNX node run by ``onnx.reference.ReferenceEvaluator`` (the oracle) and by k5 (import + runtime).

    Returns (expected outputs, k5 outputs) as lists of arrays. Inputs named "" are left out (optional inputs).
    """
    pytest.importorskip("onnx")
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    from k5.convert.onnx.importer import from_onnx
    from k5.runtime import run

    outs = [f"y{i}" for i in range(n_outputs)]
    feeds = [(k, v) for k, v in inputs.items() if k]
    node = helper.make_node(op_type, list(inputs), outs, **(attrs or {}))
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in feeds],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx.defs.onnx_opset_version())])
    expected = ReferenceEvaluator(model).run(None, dict(feeds))
    got = run(from_onnx(model), dict(feeds))
    return [np.asarray(e) for e in expected], [got[o] for o in outs]
