"""A sandboxed loader process for the security tests and the fuzzer (run as a script, never imported by k5).

It imports k5 first, then caps its own address space at (what it uses now + ``--mem-mb``), then reads requests,
one JSON object per line on stdin, and answers one JSON line per request on stdout, prefixed by ``@@K5SEC``::

    {"path": "/tmp/x.k5", "mode": "load"}   ->   @@K5SEC {"outcome": "k5error", "type": "TruncatedFileError", ...}

``outcome`` is ``ok`` (the file loaded, validated and ran), ``k5error`` (a :class:`k5.K5Error` subclass, the
required answer to a bad file) or ``exception`` (anything else: a bug). A hang or a crash of this process is seen by
the parent (:mod:`_sec_harness`) as ``hang`` or ``died``. ``MemoryError`` is an ``exception``: the cap makes a large
allocation visible instead of letting it take the machine down.

Modes: ``load`` (load, validate, run the validation pair, read every weight), ``load-only`` (load, read every
weight), ``json`` (the file holds raw network JSON bytes: parse them with the network reader, check the graph and
run it on zeros).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback
from typing import Any

MARK = "@@K5SEC "


def _vm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _read_all_weights(model: Any) -> None:
    import numpy as np

    for value in model.weights().values():
        np.asarray(value)


def _zeros_for(graph: Any) -> dict[str, Any]:
    """Small inputs for a graph: symbolic dims become 1; huge declared dims are refused by the caller first."""
    import numpy as np

    from k5.format.dtypes import dtype_of

    feeds: dict[str, Any] = {}
    for t in graph.inputs:
        if t.kind != "tensor":
            feeds[t.name] = None if t.kind == "optional" else []
            continue
        shape = [d if isinstance(d, int) else 1 for d in (t.shape or [])]
        if any(d < 0 for d in shape) or int(np.prod(shape, dtype=np.float64)) > 1 << 20:
            return {}
        feeds[t.name] = np.zeros(shape, dtype=dtype_of(t.dtype or "float32").numpy)
    return feeds


def _attach_zero_weights(model: Any) -> bool:
    """Give every declared weight (a WeightSpec) zeros of its dtype and shape; False when they would be large."""
    import numpy as np

    from k5.format.dtypes import dtype_of
    from k5.format.model import WeightSpec

    specs = [(node, name, w) for _, node in model.graph.walk() for name, w in node.weights.items()]
    total = sum(float(np.prod(w.shape, dtype=np.float64)) for _, _, w in specs if isinstance(w, WeightSpec))
    if total > 1 << 22 or any(len(w.shape) > 32 for _, _, w in specs if isinstance(w, WeightSpec)):
        return False
    for node, name, w in specs:
        if isinstance(w, WeightSpec):
            node.weights[name] = np.zeros(w.shape, dtype_of(w.dtype).numpy)
    return True


def _validate(model: Any, path: str) -> None:
    """Whatever whole-file validation the format offers (``k5 validate``'s function), if it has landed."""
    try:
        from k5.format import hdf5
    except ImportError:
        return
    fn = getattr(hdf5, "validate", None)
    if fn is not None:
        fn(path)


def exercise(path: str, mode: str) -> None:
    import k5

    if mode.startswith("selftest-"):  # proves the parent notices what it must (tests of the harness itself)
        if mode == "selftest-hang":
            import time

            time.sleep(3600)
        elif mode == "selftest-crash":
            import ctypes

            ctypes.string_at(0)
        elif mode == "selftest-alloc":
            import numpy as np

            np.ones(1 << 32, np.uint8)
        return

    if mode == "json":
        from k5.format import checks, network
        from k5.runtime.interpreter import run

        with open(path, "rb") as f:
            text = f.read()
        model = network.loads_network(text)
        checks.check_model(model)
        feeds = _zeros_for(model.graph)
        if (feeds or not model.graph.inputs) and _attach_zero_weights(model):
            run(model, feeds)
        return
    with k5.load(path) as model:
        _read_all_weights(model)
        if mode == "load":
            _validate(model, path)
            if model.validation is not None:
                k5.run(model, dict(model.validation.inputs))


def handle(req: dict[str, Any]) -> dict[str, Any]:
    from k5.errors import K5Error

    try:
        exercise(req["path"], req.get("mode", "load"))
    except K5Error as e:
        return {"outcome": "k5error", "type": type(e).__name__, "message": str(e)[:400]}
    except RecursionError as e:  # before MemoryError/Exception: named for clarity in reports
        return {"outcome": "exception", "type": "RecursionError", "message": str(e)[:200], "tb": _tb(e)}
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        return {"outcome": "exception", "type": type(e).__name__, "message": str(e)[:400], "tb": _tb(e)}
    return {"outcome": "ok"}


def _tb(e: BaseException) -> str:
    return "".join(traceback.format_exception(e))[-3000:]


def main() -> None:
    mem_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import h5py  # noqa: F401 - imported before the cap, so only the file's demands count against it
    import numpy  # noqa: F401

    import k5
    import k5.ops
    import k5.runtime.interpreter

    try:
        import k5.format.checks
        import k5.format.hdf5
        import k5.format.network  # noqa: F401
    except ImportError:
        pass
    limit = _vm_bytes() + mem_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints (e.g. from C libraries) go to stderr, never into the protocol
    out.write(MARK + json.dumps({"outcome": "ready"}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        out.write(MARK + json.dumps(handle(json.loads(line))) + "\n")


if __name__ == "__main__":
    main()
