"""The k5 op set, and the public way to look ops up.

Importing this package imports every op family module, and each registers its ops with the leaf module
:mod:`k5.ops.registry` as it is imported; so ``all_schemas``, ``find_schema`` and ``get_schema`` imported from here
always see the complete table. Code outside ``k5.ops`` imports them from here, never from the registry module.
"""

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
from k5.ops.infer import infer_dtypes, value_dtype
from k5.ops.registry import OPSET_VERSION, OpSchema, all_schemas, find_schema, get_schema, op, qualname

__all__ = [
    "OPSET_VERSION",
    "OpSchema",
    "all_schemas",
    "find_schema",
    "get_schema",
    "infer_dtypes",
    "op",
    "qualname",
    "value_dtype",
]
