"""Peak memory of converting a ~200 MB model, one scenario per fresh process.

    python bench/bench_convert_memory.py [--mb 200] [--only NAME ...]

Each scenario runs in a child process of its own: it imports what it needs (numpy, h5py, onnx, onnxruntime, k5
and its converters), records its peak RSS (``ru_maxrss``) as the baseline, converts, and reports the peak again.
The table gives the extra peak over the baseline and its ratio to the model's weight bytes (target: under 2x for
the conversion itself; verification runs the model in onnxruntime, which holds its own copy of the weights).

The model: a stack of square float32 ``Linear`` layers with biases (plus ReLUs), written once as a .k5 file and as
an .onnx file of ``MatMul`` + ``Add`` nodes with the weights as initializers, as exporters write them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _common import markdown_table

WIDTH = 2560  # one layer: 2560 x 2560 float32 = 26 MB


def _layers(mb: float) -> int:
    return max(1, round(mb * 2**20 / (WIDTH * WIDTH * 4)))


def _build(folder: Path, mb: float) -> int:
    """Write model.k5 and model.onnx into ``folder``; the weight bytes."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    import k5
    from k5.format.model import Graph, Model, Node, TensorInfo

    rng = np.random.default_rng(0)
    nodes, onnx_nodes, inits = [], [], []
    total = 0
    x = "x"
    for i in range(_layers(mb)):
        w = (rng.standard_normal((WIDTH, WIDTH), dtype=np.float32) / np.float32(np.sqrt(WIDTH))).astype(np.float32)
        b = rng.standard_normal(WIDTH, dtype=np.float32)
        total += w.nbytes + b.nbytes
        nodes += [Node(f"fc{i}", "Linear", [x], [f"h{i}"], weights={"weight": w, "bias": b}),
                  Node(f"act{i}", "Relu", [f"h{i}"], [f"a{i}"])]  # fmt: skip
        inits += [numpy_helper.from_array(np.ascontiguousarray(w.T), f"fc{i}.weight"),
                  numpy_helper.from_array(b, f"fc{i}.bias")]  # fmt: skip
        onnx_nodes += [
            helper.make_node("MatMul", [x, f"fc{i}.weight"], [f"m{i}"], name=f"/fc{i}/MatMul"),
            helper.make_node("Add", [f"m{i}", f"fc{i}.bias"], [f"h{i}"], name=f"/fc{i}/Add"),
            helper.make_node("Relu", [f"h{i}"], [f"a{i}"], name=f"/act{i}/Relu"),
        ]
        x = f"a{i}"
    shape: list[int | str] = ["batch", WIDTH]
    graph = Graph(nodes=nodes, inputs=[TensorInfo("x", "float32", shape)], outputs=[TensorInfo(x, "float32", shape)])
    k5.save(Model(graph=graph), folder / "model.k5")
    del nodes, graph
    onnx_graph = helper.make_graph(
        onnx_nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)], initializer=inits,
    )  # fmt: skip
    onnx.save(helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", 17)]), str(folder / "model.onnx"))
    return total


# --- scenarios: each runs in a fresh child, after the imports --------------------------------------------------
def _k5_to_onnx(folder: Path, verify: bool) -> None:
    import k5
    from k5.convert.formats import get_format
    from k5.convert.onnx.verify import random_inputs, verify_onnx

    target = folder / "out.onnx"
    with k5.load(folder / "model.k5") as model:
        get_format("onnx").write(model, str(target))  # what `k5 convert model.k5 model.onnx` writes
        if verify:
            verify_onnx(model, str(target), inputs=random_inputs(model.graph.inputs))
    target.unlink()


def _k5_to_onnx_in_memory(folder: Path) -> None:
    import k5
    from k5.convert.onnx import save_onnx, to_onnx

    target = folder / "out.onnx"
    with k5.load(folder / "model.k5") as model:
        save_onnx(to_onnx(model), target)  # a complete ModelProto in memory, then written
    target.unlink()


def _onnx_to_k5(folder: Path, verify: bool) -> None:
    import k5
    from k5.convert.formats import get_format
    from k5.convert.onnx.verify import onnxruntime_run, random_inputs

    source, target = folder / "model.onnx", folder / "out.k5"
    model = get_format("onnx").read(str(source))  # what `k5 convert model.onnx model.k5` reads
    if verify:
        feeds = random_inputs(model.graph.inputs)
        expected = onnxruntime_run(str(source), feeds)
        got = k5.run(model, feeds)
        assert all(abs(got[k] - v).max() < 1e-3 for k, v in expected.items())
    k5.save(model, target)
    target.unlink()


#: scenario -> what it runs (in a child process)
SCENARIOS: dict[str, Callable[[Path], None]] = {
    "k5 -> ONNX": lambda folder: _k5_to_onnx(folder, verify=False),
    "k5 -> ONNX, verified with onnxruntime": lambda folder: _k5_to_onnx(folder, verify=True),
    "k5 -> ONNX in memory (to_onnx + save_onnx)": _k5_to_onnx_in_memory,
    "ONNX -> k5": lambda folder: _onnx_to_k5(folder, verify=False),
    "ONNX -> k5, verified with onnxruntime": lambda folder: _onnx_to_k5(folder, verify=True),
}


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _child(name: str, folder: Path) -> None:
    import gc

    import h5py  # noqa: F401
    import numpy  # noqa: F401
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401

    import k5
    import k5.convert.onnx  # noqa: F401
    from k5.ops.registry import all_schemas

    all_schemas()  # the registry loads its op modules on first use
    gc.collect()
    baseline = _peak_bytes()
    SCENARIOS[name](folder)
    print(json.dumps({"baseline": baseline, "peak": _peak_bytes()}))


def _run_child(args: list[str]) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{args}: exit {proc.returncode}\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, default=200.0, help="model size in MB (weights)")
    p.add_argument("--only", nargs="*", help="scenario names to run (default: all)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.build:
        print(_build(Path(args.dir), args.mb))
        return 0
    if args.child:
        _child(args.child, Path(args.dir))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="k5-bench-mem-") as tmp:
        size = int(_run_child(["--build", "--dir", tmp, "--mb", str(args.mb)]))
        for name in SCENARIOS:
            if args.only and name not in args.only:
                continue
            result = json.loads(_run_child(["--child", name, "--dir", tmp]))
            extra = result["peak"] - result["baseline"]
            rows.append([name, f"{size / 2**20:.0f} MiB", f"{extra / 2**20:.0f} MiB", f"{extra / size:.2f}x"])
    print(markdown_table(["scenario", "model size", "peak extra RSS", "ratio"], rows))
    print("peak RSS (ru_maxrss) of a fresh process per scenario, minus its peak after the imports")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
