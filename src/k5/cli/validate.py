"""``k5 validate FILE``: schema, graph integrity, checksums, and the validation pair re-run with the reference
runtime. Prints one line per check; exit status 0 when every check passes, 1 otherwise."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from k5.errors import HostileSizeError, K5Error, UnknownOpError, UnsafeFileError
from k5.format.model import Model

__all__ = ["add_parser", "compare", "run", "validate_file"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("validate", help="check a k5 file: schema, graph, checksums, validation pair")
    p.add_argument("file", help="a .k5 file")
    p.add_argument("--no-run", action="store_true", help="skip re-running the validation pair")
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (default: the file's)")
    p.add_argument("--atol", type=float, default=None, help="absolute tolerance (default: the file's)")
    p.add_argument(
        "--strict", action="store_true", help="also fail when a weight has no checksum or the pair cannot be run"
    )
    p.add_argument(
        "--no-isolate",
        action="store_true",
        help="parse the file in this process only (default: first in a resource-limited child process, so a file "
        "crafted against the HDF5 library cannot hang or crash k5; see docs/security.md)",
    )
    return p


def compare(expected: Any, actual: Any, rtol: float, atol: float) -> tuple[bool, float, str]:
    """(close enough, max abs diff, note) for one output; NaNs must match NaNs."""
    want = np.asarray(expected)
    got = np.asarray(actual)
    if want.shape != got.shape:
        return False, float("inf"), f"shape {list(got.shape)}, expected {list(want.shape)}"
    if want.size == 0:
        return True, 0.0, ""
    w = want.astype(np.complex128 if want.dtype.kind == "c" else np.float64)
    g = got.astype(w.dtype)
    nan_w, nan_g = np.isnan(w), np.isnan(g)
    if not np.array_equal(nan_w, nan_g):
        return False, float("nan"), "NaN positions differ"
    finite = ~nan_w
    diff = np.abs(w[finite] - g[finite])
    diff = np.where(np.isnan(diff), 0.0, diff)  # inf - inf of equal signs
    max_diff = float(diff.max()) if diff.size else 0.0
    ok = bool(np.allclose(g[finite], w[finite], rtol=rtol, atol=atol, equal_nan=True))
    note = "" if got.dtype == want.dtype else f"dtype {got.dtype}, expected {want.dtype}"
    return ok and not note, max_diff, note


def validate_file(path: str, *, run_pair: bool = True, rtol: float | None = None, atol: float | None = None,
                  strict: bool = False, isolate: bool = True) -> tuple[bool, list[str]]:  # fmt: skip
    """Run every check; return (passed, report lines).

    ``isolate``: parse and checksum the file in a resource-limited child process first
    (:func:`k5.format.hdf5.check_untrusted`), then again here.
    """
    from k5.format.hdf5 import check_untrusted, load, verify_checksums

    lines: list[str] = []
    try:
        if isolate:
            try:
                check_untrusted(path)
            except (UnsafeFileError, HostileSizeError):
                raise  # the file is not safe to parse here: stop at this line
            except K5Error:
                pass  # parsing it is safe; the in-process checks below report the problem one check at a time
        model = load(path, check=True)
    except K5Error as e:
        return False, [f"FAIL  file, schema and graph: {e}"]
    with model:
        n_nodes = sum(1 for _ in model.graph.walk())
        lines.append(f"ok    schema and graph: {n_nodes} nodes, {len(model.weights())} weights, declarations match")
        ok = True
        try:
            verified, unchecked = verify_checksums(model)
        except K5Error as e:
            lines.append(f"FAIL  checksums: {e}")
            ok = False
        else:
            missing = f", {len(unchecked)} without a checksum" if unchecked else ""
            bad = strict and bool(unchecked)
            lines.append(f"{'FAIL' if bad else 'ok  '}  checksums: {verified} weights verified{missing}")
            ok = ok and not bad
        if model.validation is None:
            lines.append(f"{'FAIL' if strict else '-   '}  validation pair: none stored")
            return ok and not strict, lines
        if not run_pair:
            lines.append("-     validation pair: not run (--no-run)")
            return ok, lines
        pair_ok, pair_lines = _run_pair(model, rtol, atol, strict)
        return ok and pair_ok, lines + pair_lines


def _run_pair(model: Model, rtol: float | None, atol: float | None, strict: bool) -> tuple[bool, list[str]]:
    from k5.runtime import run as run_model

    pair = model.validation
    assert pair is not None
    rtol = pair.rtol if rtol is None else rtol
    atol = pair.atol if atol is None else atol
    try:
        outputs = run_model(model, {k: np.asarray(v) for k, v in pair.inputs.items()}, outputs=list(pair.outputs))
    except UnknownOpError as e:
        return not strict, [f"{'FAIL' if strict else '-   '}  validation pair: not run here ({e})"]
    except K5Error as e:
        return False, [f"FAIL  validation pair: the reference runtime failed: {e}"]
    lines, ok = [], True
    for name, expected in pair.outputs.items():
        good, diff, note = compare(expected, outputs[name], rtol, atol)
        ok = ok and good
        extra = f" ({note})" if note else ""
        lines.append(
            f"{'ok  ' if good else 'FAIL'}  validation output {name!r}: max abs diff {diff:.3g} "
            f"(rtol={rtol:g}, atol={atol:g}){extra}"
        )
    if not pair.outputs:
        lines.append("-     validation pair: no outputs stored")
    return ok, lines


def run(args: argparse.Namespace) -> int:
    passed, lines = validate_file(args.file, run_pair=not args.no_run, rtol=args.rtol, atol=args.atol,
                                  strict=args.strict, isolate=not args.no_isolate)  # fmt: skip
    print(f"{args.file}:")
    for line in lines:
        print("  " + line)
    print("  valid" if passed else "  INVALID")
    return 0 if passed else 1
