"""Child process for the crash-safety and concurrency tests (run as a script).

``save TARGET FIRST``: saves versions FIRST, FIRST+1, ... of ``_sec_models.big`` to TARGET in a loop, printing
``saved N`` after each ``k5.save`` returns, until killed (or until ``--count`` versions are saved).
``convert TARGET A B``: runs ``k5 convert`` from A and from B alternately to TARGET, printing ``converted 0|1``.
``read TARGET SECONDS``: loads TARGET in a loop for SECONDS; each read must be one complete version (weights equal
to that version's seeded weights, validation pair reproduced); prints ``read N`` per read or ``error ...`` and exits 1.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from _sec_models import big, expected_weight, version_of

import k5


def check_complete(path: str) -> int:
    """Load ``path`` and prove it is one whole version; return that version."""
    with k5.load(path) as model:
        version = version_of(model)
        weight = np.asarray(model.graph.node("fc").weights["weight"])
        if not np.array_equal(weight, expected_weight(version, weight.shape)):
            raise AssertionError(f"{path}: weight of version {version} differs from what was saved")
        assert model.validation is not None
        got = k5.run(model, dict(model.validation.inputs))["y"]
        want = np.asarray(model.validation.outputs["y"])
        if not np.allclose(got, want, rtol=1e-3, atol=1e-3):
            raise AssertionError(f"{path}: validation pair of version {version} does not reproduce")
    return version


def main() -> None:
    mode, target = sys.argv[1], sys.argv[2]
    if mode == "save":
        version = int(sys.argv[3])
        count = int(sys.argv[4]) if len(sys.argv) > 4 else -1
        model = big(version)
        with tempfile.TemporaryDirectory() as scratch:  # first-call costs (op registry, h5py) paid before "ready"
            k5.save(model, os.path.join(scratch, "warm.k5"))
        print("ready", flush=True)  # the first save starts now
        while count != 0:
            k5.save(model, target)
            print(f"saved {version}", flush=True)
            version += 1
            count -= 1
            model = big(version)
    elif mode == "convert":  # convert SOURCE_A and SOURCE_B alternately to TARGET with `k5 convert`
        import importlib

        from k5.cli.main import main as k5_main

        for module in ("onnx", "k5.convert.onnx.exporter", "k5.convert.onnx.importer", "k5.cli.convert"):
            importlib.import_module(module)  # before "ready": the kills should land in conversions, not imports
        with tempfile.TemporaryDirectory() as scratch:  # first-call costs paid before "ready" too
            warm = os.path.join(scratch, "warm" + os.path.splitext(target)[1])
            k5_main(["convert", sys.argv[3], warm, "--no-verify"])

        sources = sys.argv[3:5]
        print("ready", flush=True)
        i = 0
        while True:
            code = k5_main(["convert", sources[i % 2], target, "--no-verify"])
            if code:
                sys.exit(code)
            print(f"converted {i % 2}", flush=True)
            i += 1
    elif mode == "read":
        end = time.monotonic() + float(sys.argv[3])
        print("ready", flush=True)
        while time.monotonic() < end:
            try:
                print(f"read {check_complete(target)}", flush=True)
            except Exception as e:  # noqa: BLE001 - report any failure to the parent test
                print(f"error {type(e).__name__}: {e}", flush=True)
                sys.exit(1)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
