"""ONNX backend node test cases for the layer op families (linalg, conv, norm, rnn, attention).

ONNX's own cases (inputs and expected outputs made by ONNX) are the oracle. A case is chosen for a family when it
uses one of the family's ops and nothing outside the layer and primitive families; it runs through ONNX import and
the k5 reference runtime with read-only inputs (see _onnx_cases.py).
"""

from __future__ import annotations

import _onnx_cases
from _onnx_cases import check_case as check_case  # re-exported for the family test modules
from _onnx_cases import family
from _primitive_cases import PRIMITIVE

LINALG = family("linalg")
CONV = family("conv")
NORM = family("norm")
RNN = family("rnn")
ATTENTION = family("attention")
LAYER = LINALG | CONV | NORM | RNN | ATTENTION


def cases_for(family: frozenset[str]) -> list:
    """The ONNX cases that exercise ``family`` and only layer/primitive ops."""
    return _onnx_cases.cases_for(family, within=LAYER | PRIMITIVE)
