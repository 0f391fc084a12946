"""``k5`` command-line entry point: ``k5 inspect|validate|run|convert ...``.

Each subcommand is a module of this package exposing ``add_parser(subparsers)`` and ``run(args) -> int``. A
:class:`~k5.errors.K5Error` becomes one line on stderr (``k5: error: <message>``) and exit status 1; any other
exception is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from k5.errors import K5Error

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: subcommand modules, in help order; ``convert`` is registered when its module exists
SUBCOMMANDS = ("inspect", "validate", "run", "convert")


def build_parser() -> argparse.ArgumentParser:
    from k5 import __version__

    parser = argparse.ArgumentParser(prog="k5", description="Inspect, validate, run and convert .k5 model files.")
    parser.add_argument("--version", action="version", version=f"k5 {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module_name = f"k5.cli.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except K5Error as e:
        print(f"k5: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `k5 inspect big.k5 | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
