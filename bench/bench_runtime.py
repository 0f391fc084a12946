"""k5's NumPy reference runtime against onnxruntime on two real-size models, in the same run.

    python bench/bench_runtime.py [--repeat 5] [--threads N]

Both models are built with PyTorch (random weights, fixed seed), exported with torch.onnx.export, imported into
k5 and run by both runtimes on the same input; the table gives the median time per run and the ratio.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from _common import timed


def main(argv: list[str] | None = None) -> int:
    import onnxruntime as ort

    from k5.convert.onnx import from_onnx
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test-only model builders
    from _models.torch_real import REAL_MODELS, export_onnx
    from k5.runtime import Session

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    args = p.parse_args(argv)

    rows = []
    for name, (build, shape, dynamic) in REAL_MODELS.items():
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        proto = export_onnx(build(seed=0), x, dynamic)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        k5_session = Session(from_onnx(proto))
        # the accuracy check also warms both runtimes up before timing
        diff = float(np.abs(k5_session.run({"x": x})["y"] - sess.run(None, {"x": x})[0]).max())
        t_ort = timed(lambda s=sess, x=x: s.run(None, {"x": x}), args.repeat)
        t_k5 = timed(lambda s=k5_session, x=x: s.run({"x": x}), args.repeat)
        rows.append((name, "x".join(map(str, shape)), t_k5, t_ort, diff))

    print(f"median of {args.repeat} runs after one warm-up; onnxruntime {ort.__version__}, CPU")
    print("| model | input | k5 runtime (s) | onnxruntime (s) | k5 / onnxruntime | max abs diff |")
    print("|---|---|---:|---:|---:|---:|")
    for name, shape, t_k5, t_ort, diff in rows:
        print(f"| {name} | {shape} | {t_k5:.3f} | {t_ort:.3f} | {t_k5 / t_ort:.1f}x | {diff:.1e} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
