"""Time k5 file I/O against safetensors and torch.save/torch.load on the same weights, in the same run.

    python bench/bench_io.py              # ~1 GB of float32 weights in 16 tensors
    python bench/bench_io.py --size 64    # a quick run

For each format: save, open (ready to hand out tensors), full load (every tensor as an array, every page touched)
and one-tensor load (open + one tensor, every page of it touched). Medians over --repeat runs, page cache warm.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

import k5
from _common import markdown_table, timed
from k5.format.model import Graph, Model, Node, TensorInfo

PAGE = 4096


def touch(arr: Any) -> float:
    """Read one value per 4 KiB page (forces memory-mapped pages in) and return something that depends on them."""
    a = np.asarray(arr).reshape(-1)
    step = max(1, PAGE // a.itemsize)
    return float(a[::step].sum(dtype=np.float64))


def make_weights(total_mb: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    per = max(1, total_mb * (1 << 20) // 4 // n)
    return {f"layer{i}.weight": rng.standard_normal(per, dtype=np.float32) for i in range(n)}


def k5_model(weights: dict[str, np.ndarray]) -> Model:
    nodes = [Node(n.replace(".weight", ""), "Constant", [], [n], weights={"value": w}) for n, w in weights.items()]
    return Model(Graph(nodes, [], [TensorInfo(name, "float32", list(w.shape)) for name, w in weights.items()]))




# --- the formats -----------------------------------------------------------------------------------------------
def k5_cases(path: str, first: str) -> dict[str, dict[str, Callable[[], Any]]]:
    node = first.replace(".weight", "")

    def open_lazy(**kw: Any) -> Callable[[], Any]:
        def f() -> Any:
            m = k5.load(path, **kw)
            m.close()
        return f

    def full(**kw: Any) -> Callable[[], Any]:
        def f() -> Any:
            with k5.load(path, **kw) as m:
                return sum(touch(v) for v in m.weights().values())
        return f

    def one(**kw: Any) -> Callable[[], Any]:
        def f() -> Any:
            with k5.load(path, **kw) as m:
                return touch(m.graph.node(node).weights["value"])
        return f

    return {
        "k5 (lazy, mmap)": {"open": open_lazy(), "full": full(), "one": one()},
        "k5 (lazy, h5py reads)": {"open": open_lazy(mmap=False), "full": full(mmap=False), "one": one(mmap=False)},
        "k5 (lazy=False)": {"full": full(lazy=False)},
        "k5 (verify=True)": {"full": full(verify=True)},
    }


def safetensors_cases(path: str, first: str) -> dict[str, dict[str, Callable[[], Any]]]:
    from safetensors import safe_open
    from safetensors.numpy import load_file

    def open_() -> Any:
        with safe_open(path, framework="np") as f:
            return list(f.keys())

    def full() -> Any:
        return sum(touch(v) for v in load_file(path).values())

    def one() -> Any:
        with safe_open(path, framework="np") as f:
            return touch(f.get_tensor(first))

    return {"safetensors (numpy)": {"open": open_, "full": full, "one": one}}


def torch_cases(path: str, first: str) -> dict[str, dict[str, Callable[[], Any]]]:
    import torch

    def full(mmap: bool) -> Callable[[], Any]:
        def f() -> Any:
            sd = torch.load(path, weights_only=True, mmap=mmap)
            return sum(touch(v.numpy()) for v in sd.values())
        return f

    def open_() -> Any:
        return list(torch.load(path, weights_only=True, mmap=True).keys())

    def one() -> Any:
        return touch(torch.load(path, weights_only=True, mmap=True)[first].numpy())

    return {
        "torch.load(weights_only)": {"full": full(False)},
        "torch.load(weights_only, mmap)": {"open": open_, "full": full(True), "one": one},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=1024, help="total MB of float32 weights (default 1024)")
    p.add_argument("--tensors", type=int, default=16, help="number of tensors (default 16)")
    p.add_argument("--repeat", type=int, default=5, help="runs per measurement; the median is shown (default 5)")
    p.add_argument("--dir", default=None, help="where to write the files (default: a temporary directory)")
    args = p.parse_args(argv)

    weights = make_weights(args.size, args.tensors)
    first = next(iter(weights))
    total = sum(w.nbytes for w in weights.values())
    print(f"{len(weights)} float32 tensors, {total / 1e6:.0f} MB; median of {args.repeat} runs, page cache warm")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, k5 {k5.__version__}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rows: list[list[str]] = []
        cases: dict[str, dict[str, Callable[[], Any]]] = {}
        saves: dict[str, tuple[float, int]] = {}

        path = os.path.join(tmp, "model.k5")
        model = k5_model(weights)
        saves["k5"] = (timed(lambda: k5.save(model, path), 1), os.path.getsize(path))
        cases.update(k5_cases(path, first))
        try:
            from safetensors.numpy import save_file

            st = os.path.join(tmp, "model.safetensors")
            saves["safetensors"] = (timed(lambda: save_file(weights, st), 1), os.path.getsize(st))
            cases.update(safetensors_cases(st, first))
        except ImportError:
            print("safetensors not installed: skipped")
        try:
            import torch

            pt = os.path.join(tmp, "model.pt")
            tensors = {k: torch.from_numpy(v) for k, v in weights.items()}
            saves["torch"] = (timed(lambda: torch.save(tensors, pt), 1), os.path.getsize(pt))
            cases.update(torch_cases(pt, first))
        except ImportError:
            print("torch not installed: skipped")

        for name, fns in cases.items():
            for fn in fns.values():
                fn()  # warm the page cache and imports
            row = [name]
            for what in ("open", "full", "one"):
                row.append(f"{timed(fns[what], args.repeat):.4f}" if what in fns else "-")
            rows.append(row)

        print()
        print(markdown_table(["format", "open (s)", "full load (s)", "one tensor (s)"], rows))
        print()
        print(markdown_table(["format", "save (s)", "file (MB)"],
                     [[k, f"{t:.3f}", f"{size / 1e6:.1f}"] for k, (t, size) in saves.items()]))  # fmt: skip
    return 0



if __name__ == "__main__":
    sys.exit(main())
