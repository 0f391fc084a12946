"""``k5 convert IN OUT``: convert between .onnx and .k5 (by extension), verifying the result numerically.

The source runs in its own runtime (onnxruntime for .onnx, the k5 reference runtime for .k5) and the result in the
other, on the k5 file's validation pair or on random inputs of the declared shapes; the max abs diff is reported
and a disagreement beyond tolerance is an error (``--no-verify`` skips the check). An .onnx -> .k5 conversion stores
the inputs and onnxruntime's outputs as the file's validation pair. The output is written atomically.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from k5.errors import ConversionError

__all__ = ["add_parser", "run"]

_KINDS = {".onnx": "onnx", ".k5": "k5"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("convert", help="convert .onnx <-> .k5, verifying the result numerically")
    p.add_argument("source", help="the model to convert (.onnx or .k5)")
    p.add_argument("target", help="the file to write (.k5 or .onnx)")
    p.add_argument("--opset", type=int, help="ONNX opset to write (default: the lowest that fits, at least 18)")
    p.add_argument("--no-verify", action="store_true", help="skip the numerical check")
    p.add_argument("--rtol", type=float, default=1e-4)
    p.add_argument("--atol", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0, help="seed of random inputs (no validation pair)")
    return p


def _kind(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in _KINDS:
        raise ConversionError(f"cannot tell the format of {path!r} from its extension. Expected one of {list(_KINDS)}")
    return _KINDS[ext]


def run(args: argparse.Namespace) -> int:
    src, dst = _kind(args.source), _kind(args.target)
    if src == dst:
        raise ConversionError(f"{args.source!r} and {args.target!r} have the same format ({src}); nothing to convert")
    if src == "onnx":
        return _onnx_to_k5(args)
    return _k5_to_onnx(args)


def _onnx_to_k5(args: argparse.Namespace) -> int:
    import onnx

    from k5.convert.onnx import from_onnx
    from k5.convert.onnx.verify import max_abs_diff, onnxruntime_run, random_inputs
    from k5.errors import VerificationError
    from k5.format.hdf5 import save
    from k5.format.model import ValidationPair
    from k5.runtime import run as k5_run

    proto = onnx.load(args.source)
    model = from_onnx(proto)
    if not args.no_verify:
        feeds = random_inputs(model.graph.inputs, seed=args.seed)
        expected = onnxruntime_run(proto, feeds)
        got = k5_run(model, feeds)
        worst, bad = max_abs_diff(expected, got, rtol=args.rtol, atol=args.atol)
        if bad:
            raise VerificationError(f"k5 disagrees with onnxruntime on: {', '.join(bad)}", where=args.source)
        model.validation = ValidationPair(feeds, expected, rtol=args.rtol, atol=args.atol)
        print(f"verified: k5 runtime vs onnxruntime, max abs diff {worst:.3g}")
    save(model, args.target)
    print(f"wrote {args.target} ({len(model.nodes)} nodes, {model.num_parameters()} weight values)")
    return 0


def _k5_to_onnx(args: argparse.Namespace) -> int:
    from k5.convert.onnx import save_onnx, to_onnx
    from k5.convert.onnx.verify import random_inputs, verify_onnx
    from k5.format.hdf5 import load

    with load(args.source, isolate=True) as model:  # an untrusted file is parsed in a child first
        proto = to_onnx(model, opset=args.opset)
        if not args.no_verify:
            inputs = None if model.validation is not None else random_inputs(model.graph.inputs, seed=args.seed)
            worst = verify_onnx(model, proto, inputs=inputs, rtol=args.rtol, atol=args.atol)
            how = "the validation pair" if inputs is None else "random inputs"
            print(f"verified: onnxruntime on {how}, max abs diff {worst:.3g}")
    save_onnx(proto, args.target)
    print(f"wrote {args.target} (ONNX opset {proto.opset_import[0].version}, {len(proto.graph.node)} nodes)")
    return 0
