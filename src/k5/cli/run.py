"""``k5 run FILE [INPUTS...]``: run a model with the reference runtime on inputs from .npy/.npz files, or on
its stored validation input. ``--intermediate`` shows every value computed, ``--trace`` times each node,
``-o out.npz`` saves the outputs (and, with ``--intermediate``, every intermediate value)."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from k5.cli._common import describe_array, table
from k5.errors import InputMismatchError, K5Error
from k5.format.model import Model, Node

__all__ = ["add_parser", "read_inputs", "read_npz", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("run", help="run a k5 model with the NumPy reference runtime")
    p.add_argument("file", help="a .k5 file")
    p.add_argument(
        "inputs",
        nargs="*",
        help="NAME=FILE.npy, FILE.npy (graph inputs in order) or FILE.npz (keys = input names); "
        "none: the file's validation input",
    )
    p.add_argument("-o", "--output", help="save the outputs (and intermediates with --intermediate) to this .npz")
    p.add_argument("--intermediate", action="store_true", help="show every intermediate value")
    p.add_argument("--trace", action="store_true", help="time each node and print a table")
    p.add_argument("--values", type=int, default=6, help="how many leading values to print per tensor (default 6)")
    return p


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def _kind(path: str) -> str:
    """``"npy"`` or ``"npz"`` from the file's first bytes (not its name); a clear error for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise InputMismatchError(f"cannot read input file {path!r}: {e.strerror or e}") from None
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head.startswith(_ZIP_MAGIC):
        return "npz"
    what = "it is empty" if not head else f"it starts with {head!r}"
    raise InputMismatchError(
        f"input file {path!r} is not a .npy or .npz file ({what}); write inputs with numpy.save or numpy.savez"
    )


def _load_array(path: str) -> np.ndarray:
    if _kind(path) != "npy":
        raise InputMismatchError(f"input file {path!r} is a .npz archive: pass it alone (its keys name the inputs)")
    try:
        return np.asarray(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as e:
        raise InputMismatchError(f"cannot read input file {path!r}: {e}") from None


def read_npz(path: str) -> dict[str, np.ndarray]:
    if _kind(path) != "npz":
        raise InputMismatchError(f"input file {path!r} is a .npy array, not a .npz archive: give it as NAME={path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as e:
        raise InputMismatchError(f"cannot read input file {path!r}: {e}") from None


def read_inputs(model: Model, specs: list[str]) -> tuple[dict[str, Any], str]:
    """Graph inputs from command-line specs; (inputs, where they came from)."""
    names = model.input_names()
    if not specs:
        if model.validation is None or not model.validation.inputs:
            raise InputMismatchError(f"give the inputs {names} as .npy/.npz files; the file stores no validation input")
        return {k: np.asarray(v) for k, v in model.validation.inputs.items()}, "the stored validation input"
    feeds: dict[str, Any] = {}
    positional: list[np.ndarray] = []
    for spec in specs:
        if "=" in spec and not os.path.exists(spec):
            name, path = spec.split("=", 1)
            feeds[name] = _load_array(path)
        elif _kind(spec) == "npz":
            feeds.update(read_npz(spec))
        else:
            positional.append(_load_array(spec))
    free = [n for n in names if n not in feeds]
    if len(positional) > len(free):
        raise InputMismatchError(f"{len(positional)} positional input files for the inputs {free}")
    feeds.update(zip(free, positional, strict=False))
    return feeds, ", ".join(specs)


def _save_npz(path: str, arrays: dict[str, Any]) -> None:
    """np.savez, atomically: a temporary file beside the target, then a rename."""
    target = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, target)
    except OSError as e:
        raise K5Error(f"cannot write the outputs: {e.strerror or e}", where=path) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def run(args: argparse.Namespace) -> int:
    from k5.format.hdf5 import load
    from k5.runtime import run as run_model

    times: list[tuple[Node, float]] = []

    def trace(node: Node, ins: list[Any], outs: list[Any], seconds: float) -> None:
        times.append((node, seconds))

    with load(args.file) as model:
        feeds, source = read_inputs(model, args.inputs)
        print(f"running {args.file} on {source}")
        start = time.perf_counter()
        env = run_model(model, feeds, intermediate=True, trace=trace if args.trace else None)
        total = time.perf_counter() - start
        output_names = model.output_names()
    missing = [n for n in output_names if n not in env]
    if missing:
        raise K5Error(f"the graph did not compute its outputs {missing}")
    if args.intermediate:
        print("values:")
        for name, value in env.items():
            print(f"  {name}: {describe_array(value, values=args.values)}")
    print("outputs:")
    for name in output_names:
        print(f"  {name}: {describe_array(env[name], values=args.values)}")
    if args.trace:
        rows = [[n.id, n.op, f"{s * 1e3:.3f}", f"{100 * s / max(total, 1e-12):.1f}"] for n, s in times]
        print(table(["node", "op", "ms", "%"], rows, right=(2, 3)))
        print(f"total {total * 1e3:.3f} ms")
    if args.output:
        keep = env if args.intermediate else {n: env[n] for n in output_names}
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in keep.items() if isinstance(v, np.ndarray | np.generic)}
        _save_npz(args.output, arrays)
        print(f"saved {len(arrays)} arrays to {args.output}")
    return 0
