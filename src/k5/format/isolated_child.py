"""The isolated validation child: ``python -m k5.format.isolated_child PATH MAX_MEMORY``.

Started by :func:`k5.format.isolate.check_untrusted`. It caps its own address space at ``MAX_MEMORY`` bytes beyond
its start-up size, validates PATH (:func:`k5.format.reader.validate`) and writes one JSON object on stdout:
``{"ok": true}`` or ``{"error": <K5Error class name>, "message": ..., "where": ...}``.
"""

from __future__ import annotations

import json
import resource
import sys

from k5.errors import K5Error
from k5.format.reader import validate


def _cap_address_space(budget: int) -> None:
    with open("/proc/self/status") as f:
        vm = next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:")), 0)
    if vm:
        resource.setrlimit(resource.RLIMIT_AS, (vm + budget, vm + budget))


def main(argv: list[str]) -> int:
    path, budget = argv[0], int(argv[1])
    _cap_address_space(budget)
    out: dict[str, object]
    try:
        validate(path)
        out = {"ok": True}
    except K5Error as e:
        out = {"error": type(e).__name__, "message": e.message, "where": e.where}
    except MemoryError:
        out = {"error": "HostileSizeError", "message": f"validating it needs more than {budget} bytes of memory"}
    sys.stdout.write(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
