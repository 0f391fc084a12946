"""``k5`` command-line entry point: ``k5 [--debug] inspect|validate|run|convert|formats ...``.

Each subcommand is a module of this package exposing ``add_parser(subparsers)`` and ``run(args) -> int``.

Exit status: 0 ok; 1 a check failed or the input is bad; 2 a usage error (argparse). Every failure is one line on
stderr and never a traceback: a :class:`~k5.errors.K5Error` prints ``k5: error: <message>``; any other exception
is a bug in k5 and prints ``k5: internal error: <type>: <message>`` with a hint to rerun with ``--debug``, which
shows the traceback (of either kind).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from k5.errors import K5Error

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: subcommand modules, in help order
SUBCOMMANDS = ("inspect", "validate", "run", "convert", "formats")

DEBUG_HELP = "show the traceback of an error"


def build_parser() -> argparse.ArgumentParser:
    from k5 import __version__

    parser = argparse.ArgumentParser(prog="k5", description="Inspect, validate, run and convert .k5 model files.")
    parser.add_argument("--version", action="version", version=f"k5 {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"k5.cli.{name}")
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
        # also accepted after the subcommand; SUPPRESS keeps the global flag's value when absent here
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:  # e.g. `k5 inspect big.k5 | head`
        return 0
    except K5Error as e:
        if args.debug:
            traceback.print_exc()
        print(f"k5: error: {_one_line(str(e))}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # noqa: BLE001 - a bug: still one line, the traceback on request
        if args.debug:
            traceback.print_exc()
            hint = ""
        else:
            hint = " (a bug in k5: rerun with --debug for the traceback and report it)"
        print(f"k5: internal error: {type(e).__name__}: {_one_line(str(e))}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
