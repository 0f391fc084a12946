"""Open and load cost of files with many weights: k5 against safetensors and torch.load(mmap=True), same run.

    python bench/bench_load_many.py                 # 10, 100, 1000 small tensors and a ResNet-50 layout (~100 MB)
    python bench/bench_load_many.py --quick         # fewer repeats, no 1000-tensor case

Each layout is written once per format from the same NumPy arrays. Measured (median of --repeat runs, page cache
warm, every open followed by a close):

- open: ready to hand out tensors (``k5.load`` lazy: network JSON parsed, graph checked, every weight's dataset
  found and checked against its declaration; ``safe_open`` + ``keys()``; ``torch.load(weights_only=True,
  mmap=True)``);
- full: open, then every tensor as an array with one value per 4 KiB page read (mapped pages faulted in);
- per weight: open time / number of tensors, in microseconds.

``k5`` is the default load, whose HDF5 metadata is first walked in a forked guard process (docs/security.md);
``k5 guard=False`` skips that walk, so the two rows show what the guard costs.

Ratios are k5 / other: below 1 means k5 is faster. On a shared machine trust the ratios more than the seconds.
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
    if a.size == 0:
        return 0.0
    step = max(1, PAGE // a.itemsize)
    return float(a[::step].sum(dtype=np.float64))


# --- layouts ---------------------------------------------------------------------------------------------------
def small_layout(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` float32 tensors of 1 KiB to 16 KiB (mixed ranks), like the biases and norms of a large model."""
    out: dict[str, np.ndarray] = {}
    for i in range(n):
        size = int(rng.integers(256, 4096))
        shape = (size,) if i % 3 else (size // 16, 16)
        out[f"block{i // 4}.layer{i % 4}.weight"] = rng.standard_normal(shape, dtype=np.float32)
    return out


def resnet50_layout(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The 320 entries of a torchvision ResNet-50 state_dict (shapes and dtypes; 25.6 M parameters, ~102 MB)."""
    out: dict[str, np.ndarray] = {}

    def conv(name: str, cout: int, cin: int, k: int) -> None:
        out[f"{name}.weight"] = rng.standard_normal((cout, cin, k, k), dtype=np.float32)

    def bn(name: str, c: int) -> None:
        out[f"{name}.weight"] = rng.standard_normal(c, dtype=np.float32)
        out[f"{name}.bias"] = rng.standard_normal(c, dtype=np.float32)
        out[f"{name}.running_mean"] = rng.standard_normal(c, dtype=np.float32)
        out[f"{name}.running_var"] = rng.random(c, dtype=np.float32) + 0.5
        out[f"{name}.num_batches_tracked"] = np.array(0, np.int64)

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    cin = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True), start=1):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            conv(f"{p}.conv1", width, cin, 1)
            bn(f"{p}.bn1", width)
            conv(f"{p}.conv2", width, width, 3)
            bn(f"{p}.bn2", width)
            conv(f"{p}.conv3", width * 4, width, 1)
            bn(f"{p}.bn3", width * 4)
            if b == 0:
                conv(f"{p}.downsample.0", width * 4, cin, 1)
                bn(f"{p}.downsample.1", width * 4)
            cin = width * 4
    out["fc.weight"] = rng.standard_normal((1000, 2048), dtype=np.float32)
    out["fc.bias"] = rng.standard_normal(1000, dtype=np.float32)
    return out


def k5_model(weights: dict[str, np.ndarray]) -> Model:
    """One ``Constant`` node per tensor (node id = the state_dict key), each output a graph output."""
    from k5.format.dtypes import from_numpy

    nodes = [Node(k, "Constant", [], [k], weights={"value": w}) for k, w in weights.items()]
    outputs = [TensorInfo(k, from_numpy(w.dtype), list(w.shape)) for k, w in weights.items()]
    return Model(Graph(nodes, [], outputs, name="many"))


# --- timing ----------------------------------------------------------------------------------------------------


def k5_cases(path: str, *, guard: bool = True) -> dict[str, Callable[[], Any]]:
    def open_() -> Any:
        m = k5.load(path, guard=guard)
        n = len(m.weights())
        m.close()
        return n

    def full() -> Any:
        with k5.load(path, guard=guard) as m:
            return sum(touch(v) for v in m.weights().values())

    return {"open": open_, "full": full}


def safetensors_cases(path: str) -> dict[str, Callable[[], Any]]:
    from safetensors import safe_open

    def open_() -> Any:
        with safe_open(path, framework="np") as f:
            return len(list(f.keys()))

    def full() -> Any:
        with safe_open(path, framework="np") as f:
            return sum(touch(f.get_tensor(k)) for k in f.keys())  # noqa: SIM118 - safe_open has no __iter__

    return {"open": open_, "full": full}


def torch_cases(path: str) -> dict[str, Callable[[], Any]]:
    import torch

    def open_() -> Any:
        return len(torch.load(path, weights_only=True, mmap=True))

    def full() -> Any:
        sd = torch.load(path, weights_only=True, mmap=True)
        return sum(touch(v.numpy()) for v in sd.values())

    return {"open": open_, "full": full}


def measure(name: str, weights: dict[str, np.ndarray], tmp: str, repeat: int) -> list[list[str]]:
    """Rows of the table for one layout."""
    n = len(weights)
    mb = sum(w.nbytes for w in weights.values()) / 1e6
    formats: dict[str, dict[str, Callable[[], Any]]] = {}
    path = os.path.join(tmp, f"{name}.k5")
    k5.save(k5_model(weights), path)
    formats["k5"] = k5_cases(path)
    formats["k5 guard=False"] = k5_cases(path, guard=False)  # what the HDF5 guard process costs
    try:
        from safetensors.numpy import save_file

        st = os.path.join(tmp, f"{name}.safetensors")
        save_file(weights, st)
        formats["safetensors"] = safetensors_cases(st)
    except ImportError:
        print("safetensors not installed: skipped", file=sys.stderr)
    try:
        import torch

        pt = os.path.join(tmp, f"{name}.pt")
        torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}, pt)
        formats["torch mmap"] = torch_cases(pt)
    except ImportError:
        print("torch not installed: skipped", file=sys.stderr)

    results: dict[str, dict[str, float]] = {}
    for fmt, fns in formats.items():
        for fn in fns.values():
            fn()  # warm the page cache and imports
        results[fmt] = {what: timed(fn, repeat) for what, fn in fns.items()}
    ours = results["k5"]
    rows = []
    for fmt, r in results.items():
        ratio = "" if fmt == "k5" else f"{ours['open'] / r['open']:.1f}x / {ours['full'] / r['full']:.1f}x"
        rows.append([
            f"{name} ({n} tensors, {mb:.1f} MB)", fmt, f"{r['open'] * 1e3:.2f}", f"{r['open'] / n * 1e6:.0f}",
            f"{r['full'] * 1e3:.2f}", ratio,
        ])  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=7, help="runs per measurement; the median is shown (default 7)")
    p.add_argument("--quick", action="store_true", help="3 repeats, no 1000-tensor case")
    p.add_argument("--dir", default=None, help="where to write the files (default: a temporary directory)")
    args = p.parse_args(argv)
    repeat = 3 if args.quick else args.repeat
    rng = np.random.default_rng(0)
    layouts: dict[str, dict[str, np.ndarray]] = {f"small{n}": small_layout(n, rng) for n in (10, 100, 1000)}
    if args.quick:
        del layouts["small1000"]
    layouts["resnet50"] = resnet50_layout(rng)

    print(f"median of {repeat} runs, page cache warm; python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"k5 {k5.__version__}, {os.cpu_count()} CPUs")  # fmt: skip
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for name, weights in layouts.items():
            rows.extend(measure(name, weights, tmp, repeat))
    print()
    print(markdown_table(["layout", "format", "open (ms)", "open per tensor (us)", "full load (ms)",
                  "k5 / this: open / full"], rows))  # fmt: skip
    return 0



if __name__ == "__main__":
    sys.exit(main())
