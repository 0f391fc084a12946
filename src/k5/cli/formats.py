"""``k5 formats``: the file formats ``k5 convert`` reads and writes, whether each is usable here, and the extra
that installs what it needs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from k5.cli._common import table
from k5.convert.formats import FileFormat, all_formats

__all__ = ["add_parser", "describe", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("formats", help="list the file formats k5 convert reads and writes")
    p.add_argument("--json", action="store_true", help="print one JSON document (for machines)")
    return p


def describe(fmt: FileFormat) -> dict[str, Any]:
    installed = fmt.available()
    return {
        "name": fmt.name,
        "extensions": list(fmt.extensions),
        "description": fmt.description,
        "read": fmt.read is not None,
        "write": fmt.write is not None,
        "runtime": (fmt.runtime or fmt.name) if fmt.run is not None else None,
        "installed": installed,
        "extra": fmt.extra,
        "install": None if installed else fmt.install_hint(),
    }


def run(args: argparse.Namespace) -> int:
    rows = [describe(f) for f in all_formats()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    body = [
        [r["name"], " ".join(r["extensions"]) or "-", "".join(("r" if r["read"] else "-", "w" if r["write"] else "-")),
         r["runtime"] or "-", "yes" if r["installed"] else f"no: {r['install']}", r["description"]]
        for r in rows
    ]  # fmt: skip
    print(table(["format", "extensions", "r/w", "runs in", "installed", "description"], body))
    return 0
