"""Small things a new user trips on: help for every option, the `??` shapes hint, text files given as inputs."""

from __future__ import annotations

import argparse

import numpy as np

from k5.cli.main import build_parser, main


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_of_every_subcommand_has_help():
    subs = _subparsers(build_parser())
    assert {"inspect", "validate", "run", "convert", "formats"} <= set(subs)
    missing = [f"k5 {name} {'/'.join(a.option_strings) or a.dest}" for name, sub in subs.items()
               for a in sub._actions if not isinstance(a, argparse._HelpAction) and not a.help]  # fmt: skip
    assert not missing, missing
    tolerances = [a for sub in subs.values() for a in sub._actions if a.dest in ("rtol", "atol")]
    assert len(tolerances) >= 4 and all("tolerance" in a.help for a in tolerances)


def test_inspect_says_run_shapes_fills_in_unknown_shapes(mlp_file, capsys):
    assert main(["inspect", str(mlp_file)]) == 0
    out = capsys.readouterr().out
    assert "h: float32?" in out and "--run-shapes fills them in" in out  # dtype from the op rule, shape unknown
    assert main(["inspect", str(mlp_file), "--run-shapes"]) == 0
    out = capsys.readouterr().out
    assert "h: float32[5, 8]" in out and "??" not in out and "--run-shapes" not in out


def test_a_text_file_as_run_input_is_named_as_such(mlp_file, tmp_path, capsys):
    text = tmp_path / "x.txt"
    text.write_text("0.1 0.2 0.3 0.4\n")
    empty = tmp_path / "x.npy"
    empty.write_bytes(b"")
    for spec, what in ((str(text), "it starts with b'0.1 0"), (f"x={text}", "it starts with"), (str(empty), "empty")):
        assert main(["run", str(mlp_file), spec]) == 1
        err = capsys.readouterr().err
        assert f"input file '{text if 'txt' in spec else empty}' is not a .npy or .npz file" in err, err
        assert what in err and "pickle" not in err
    npz = tmp_path / "named.npz"  # the kind comes from the bytes, not the name: an .npz under any name works
    np.savez(npz, x=np.ones((2, 4), "f4"))
    renamed = tmp_path / "inputs.bin"
    renamed.write_bytes(npz.read_bytes())
    assert main(["run", str(mlp_file), str(renamed)]) == 0
    capsys.readouterr()
