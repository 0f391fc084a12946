"""The k5 op set: importing this package registers every op family with :mod:`k5.ops.registry`."""

from k5.ops import (  # noqa: F401 - imported for their registrations
    attention,
    control,
    conv,
    elementwise,
    image,
    linalg,
    loss,
    norm,
    quant,
    reduce,
    rnn,
    sequence,
    shape,
    signal,
)
from k5.ops.registry import OPSET_VERSION, OpSchema, all_schemas, find_schema, get_schema, op

__all__ = ["OPSET_VERSION", "OpSchema", "all_schemas", "find_schema", "get_schema", "op"]
