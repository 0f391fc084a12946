"""Keras operations recorded in functional models (``x + 3.0``, ``x * y`` on symbolic tensors become
``keras.src.ops.numpy`` entries in the config, keyed here as ``ops.<Class>``): elementwise arithmetic whose
operands are tensors or Python numbers."""

from __future__ import annotations

from typing import Any

import numpy as np

from k5.convert.keras.config import TENSOR
from k5.convert.keras.graph import Builder, LayerCall, Val
from k5.convert.keras.tables import LAYERS

__all__: list[str] = []

_OPS = {"ops.Add": "Add", "ops.Subtract": "Sub", "ops.Multiply": "Mul", "ops.Divide": "Div",
        "ops.TrueDivide": "Div", "ops.Maximum": "Max", "ops.Minimum": "Min", "ops.Power": "Pow"}


@LAYERS.register(*_OPS, produces=(*sorted(set(_OPS.values())), "Constant", "Transpose", "Reshape", "Flatten"))
def _binary(b: Builder, call: LayerCall) -> list[Val]:
    args = call.args
    if len(args) != 2:
        raise call.error(f"expects 2 operands. Received: {len(args)}")
    tensors = [call.inputs[a[TENSOR]] for a in args if isinstance(a, dict) and TENSOR in a]
    if not tensors:
        raise call.error("has no tensor operand")
    names, layout = b.common(tensors) if len(tensors) > 1 else ([tensors[0].name], tensors[0].layout)
    it = iter(names)
    operands: list[str] = []
    for a in args:
        if isinstance(a, dict) and TENSOR in a:
            operands.append(next(it))
        elif isinstance(a, (int, float)) and not isinstance(a, bool):
            operands.append(b.const(np.float32(a), f"{call.name}.value"))
        else:
            raise call.error(f"operand {a!r} is neither a tensor nor a number")
    first: Any = tensors[0]
    y = b.add1(_OPS[call.class_name], operands, id=call.name)
    return [Val(y, layout, first.rank, first.flat_shape if layout == "flatcf" else ())]
