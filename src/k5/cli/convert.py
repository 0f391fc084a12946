"""``k5 convert SRC DST [--from F] [--to F]``: any registered format to any other, through a k5 model, verified.

The formats come from the registry (:mod:`k5.convert.formats`), by extension or ``--from/--to``. The source is read
into a k5 :class:`~k5.format.model.Model` and written in the target format (atomically). Then, unless
``--no-verify``, the same inputs (``--inputs x.npz``, else the model's validation pair, else random inputs of the
declared shapes) run through the source format's own runtime and the target's. Each output's max abs difference,
and that difference relative to the output's scale (its largest magnitude), are printed; a disagreement beyond
``--atol/--rtol`` exits 1 (the target is kept for inspection). A k5 target without a validation pair gets the inputs
and the source runtime's outputs as its pair. ``.k5 -> .k5`` re-saves (checksums added, ``--compression gzip``,
``--strip-data``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from k5.convert.formats import FileFormat, format_for
from k5.errors import ConversionError, K5Error, MissingDependencyError, SaveError, VerificationError
from k5.format.model import Model, ValidationPair

__all__ = ["add_parser", "run"]

T = TypeVar("T")

RTOL_HELP = "relative tolerance of the numerical check: |a - b| <= atol + rtol * |b| (default %(default)g)"
ATOL_HELP = "absolute tolerance of the numerical check (default %(default)g)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "convert", help="convert a model between formats (see `k5 formats`), verifying the result numerically"
    )
    p.add_argument("source", help="the model to convert (format from its extension, or --from)")
    p.add_argument("target", help="the file to write (format from its extension, or --to)")
    p.add_argument("--from", dest="from_format", metavar="FORMAT", help="the source's format (see `k5 formats`)")
    p.add_argument("--to", dest="to_format", metavar="FORMAT", help="the target's format (see `k5 formats`)")
    p.add_argument("--opset", type=int, help="ONNX opset to write (default: the lowest that fits, at least 18)")
    p.add_argument("--compression", choices=["gzip"], help="k5 target: compress the weights")
    p.add_argument("--strip-data", action="store_true", help="k5 target: drop the training and evaluation data")
    p.add_argument("--inputs", metavar="NPZ", help="verify on these inputs (.npz, keys = input names)")
    p.add_argument("--no-verify", action="store_true", help="skip the numerical check")
    p.add_argument("--rtol", type=float, default=1e-4, help=RTOL_HELP)
    p.add_argument("--atol", type=float, default=1e-5, help=ATOL_HELP)
    p.add_argument("--seed", type=int, default=0, help="seed of random inputs (no validation pair, no --inputs)")
    return p


def _stage(what: str, where: str, fn: Callable[[], T], error: type[K5Error] = ConversionError) -> T:
    """Run one step; a K5Error passes through, anything else becomes ``error`` naming the step and the file."""
    try:
        return fn()
    except K5Error:
        raise
    except ImportError as e:
        raise MissingDependencyError(f"{what} needs {e.name or e}, which cannot be imported", where=where) from e
    except Exception as e:
        raise error(f"{what} failed: {type(e).__name__}: {' '.join(str(e).split())}", where=where) from e


def _check_format(fmt: FileFormat, path: str, direction: str) -> None:
    if (fmt.read if direction == "read" else fmt.write) is None:
        raise ConversionError(f"k5 cannot {direction} the {fmt.name} format", where=path)
    if not fmt.available():
        raise MissingDependencyError(
            f"the {fmt.name} format needs {', '.join(fmt.requires)}. Install it with: {fmt.install_hint()}", where=path
        )


def _write_options(fmt: FileFormat, args: argparse.Namespace) -> dict[str, Any]:
    given = {"opset": args.opset, "compression": args.compression}
    opts = {k: v for k, v in given.items() if v is not None}
    foreign = [k for k in opts if k not in fmt.write_options]
    if foreign:
        raise ConversionError(f"--{foreign[0]} does not apply to the {fmt.name} format", where=args.target)
    return opts


def run(args: argparse.Namespace) -> int:
    src, dst = os.fspath(args.source), os.fspath(args.target)
    src_fmt, dst_fmt = format_for(src, args.from_format), format_for(dst, args.to_format)
    _check_format(src_fmt, src, "read")
    _check_format(dst_fmt, dst, "write")
    opts = _write_options(dst_fmt, args)
    if not os.path.exists(src):
        raise ConversionError("no such file or directory", where=src)
    folder = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(folder):
        raise SaveError(f"the directory {folder!r} does not exist", where=dst)
    if os.path.exists(dst) and os.path.samefile(src, dst):
        raise ConversionError("the source and the target are the same file; write to another path", where=dst)
    assert src_fmt.read is not None and dst_fmt.write is not None
    read, write = src_fmt.read, dst_fmt.write
    model = _stage(f"reading it as {src_fmt.name}", src, lambda: read(src))
    with model:
        if args.strip_data:
            model.training = model.evaluate = None
        check = None
        if not args.no_verify:
            feeds, how = _inputs(model, args)
            reference = dict(_match_outputs({t.name: None for t in model.graph.outputs},
                                            _run_source(src_fmt, src, model, feeds)))  # fmt: skip
            if model.validation is None:  # the target (if it stores one) gets the source runtime's pair
                model.validation = ValidationPair(feeds, reference, rtol=args.rtol, atol=args.atol)
            check = (feeds, how, reference)
        _stage(f"writing it as {dst_fmt.name}", dst, lambda: write(model, dst, **opts), SaveError)
        print(f"wrote {dst} ({dst_fmt.name}, {len(model.nodes)} nodes, {model.num_parameters()} weight values)")
    if check is not None:
        feeds, how, reference = check
        got = _run_target(dst_fmt, dst, feeds)
        _report(src_fmt, dst_fmt, how, reference, got, args)
    return 0


def _inputs(model: Model, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    if args.inputs:
        from k5.cli.run import read_npz

        return read_npz(args.inputs), f"the inputs in {args.inputs}"
    pair = model.validation
    if pair is not None and pair.inputs:
        return {k: np.asarray(v) for k, v in pair.inputs.items()}, "the validation pair"
    from k5.convert.onnx.verify import random_inputs  # no framework import: NumPy only

    try:
        feeds = random_inputs(model.graph.inputs, seed=args.seed)
    except VerificationError as e:
        raise VerificationError(f"{e.message}: pass --inputs x.npz, or --no-verify", where=args.source) from None
    return feeds, f"random inputs (seed {args.seed})"


def _run_source(fmt: FileFormat, path: str, model: Model, feeds: Mapping[str, Any]) -> dict[str, Any]:
    if fmt.run is not None:
        runner = fmt.run
        return _stage(f"running it in {fmt.runtime or fmt.name}", path, lambda: runner(path, feeds),
                      VerificationError)  # fmt: skip
    from k5.runtime import run as k5_run

    return dict(k5_run(model, dict(feeds)))


def _run_target(fmt: FileFormat, path: str, feeds: Mapping[str, Any]) -> dict[str, Any]:
    if fmt.run is not None:
        runner = fmt.run
        return _stage(f"running the result in {fmt.runtime or fmt.name}", path, lambda: runner(path, feeds),
                      VerificationError)  # fmt: skip
    if fmt.read is None:
        raise VerificationError(f"the {fmt.name} format can be neither run nor read back: use --no-verify", where=path)
    from k5.runtime import run as k5_run

    reader = fmt.read
    with _stage("reading the result back", path, lambda: reader(path), VerificationError) as model:
        return {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in k5_run(model, dict(feeds)).items()}


def _runtime(fmt: FileFormat) -> str:
    if fmt.run is None:
        return "k5 reference runtime"
    return fmt.runtime or f"the {fmt.name} format's own runtime"


def _relative(diff: float, reference: Any) -> float:
    """``diff`` relative to the output's scale (its largest finite magnitude)."""
    ref = np.abs(np.asarray(reference)).astype(np.float64, copy=False)
    finite = ref[np.isfinite(ref)]
    scale = float(finite.max()) if finite.size else 0.0
    return diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))


def _report(src: FileFormat, dst: FileFormat, how: str, reference: Mapping[str, Any], got: Mapping[str, Any],
            args: argparse.Namespace) -> None:  # fmt: skip
    from k5.cli.validate import compare

    print(f"verifying on {how}: {_runtime(src)} ({src.name}) vs {_runtime(dst)} ({dst.name})")
    got = _match_outputs(reference, got)
    bad = []
    for name, want in reference.items():
        if name not in got:
            bad.append(f"{name} (missing from the result)")
            print(f"  FAIL  {name}: missing from the result")
            continue
        ok, diff, note = compare(want, got[name], args.rtol, args.atol)
        rel = _relative(diff, want)
        extra = f" ({note})" if note else ""
        print(f"  {'ok  ' if ok else 'FAIL'}  {name}: max abs diff {diff:.3g}, max rel diff {rel:.3g}{extra}")
        if not ok:
            bad.append(f"{name} (max abs diff {diff:.3g}{extra})")
    if bad:
        raise VerificationError(
            f"the result disagrees with the source beyond rtol={args.rtol:g}, atol={args.atol:g} on {', '.join(bad)}; "
            "the file is kept for inspection", where=args.target,
        )  # fmt: skip


def _match_outputs(reference: Mapping[str, Any], got: Mapping[str, Any]) -> Mapping[str, Any]:
    """``got`` keyed like ``reference``: by name where the names agree, else by position when the counts do.

    Some runtimes do not keep output names (OpenCV's Torch7 importer names its one output ``output``).
    """
    if set(got) >= set(reference) or len(got) != len(reference):
        return got
    return dict(zip(reference, got.values(), strict=True))
