"""Every `k5` failure is one line on stderr and exit status 1, never a traceback (`--debug` shows one).

The cases run as real command lines in subprocesses; most share one interpreter (a driver calling
``k5.cli.main.main`` per case with stderr captured, so an escaping exception is seen as such) to keep the tier lean.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cli_models import mlp_arrays, write_mlp_k5, write_mlp_onnx

from k5.cli.main import main
from k5.convert.formats import all_formats
from k5.errors import K5Error

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from k5.cli.main import main
    from k5.convert.formats import FileFormat, all_formats, register_format
    all_formats()
    # a bug in k5, simulated: a format whose recogniser divides by zero (for *.boom paths only)
    boom = FileFormat("boom", (".boom",), "broken test format", matches=lambda p: p.endswith(".boom") and 1 / 0)
    register_format(boom)
    results = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main(argv)
                escaped = None
            except SystemExit as e:
                rc, escaped = e.code, None
            except BaseException as e:  # what the `k5` script would show as a traceback
                rc, escaped = None, repr(e)
        results.append({"argv": argv, "rc": rc, "err": err.getvalue(), "escaped": escaped})
    print(json.dumps(results))
    """
)

BAD_SOURCES = ["random.onnx", "empty.onnx", "text.onnx", "truncated.onnx", "missing.onnx", "empty_graph.onnx"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def assert_one_error_line(result: dict, *needles: str, prefix: str = "k5: error: ") -> None:
    assert result["escaped"] is None, result
    assert result["rc"] == 1, result
    lines = result["err"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), result
    assert "Traceback" not in result["err"]
    for needle in needles:
        assert needle in lines[0], result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """good.onnx, good.k5 and the bad ONNX sources."""
    pytest.importorskip("onnx")
    d = tmp_path_factory.mktemp("cli_errors")
    p = mlp_arrays()
    write_mlp_onnx(d / "good.onnx", p)
    write_mlp_k5(d / "good.k5", p)
    data = (d / "good.onnx").read_bytes()
    (d / "random.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    (d / "empty.onnx").write_bytes(b"")
    (d / "text.onnx").write_text("name,value\nweight,0.5\nthis is a CSV file, not a model\n")
    (d / "truncated.onnx").write_bytes(data[: len(data) // 2])
    import onnx
    from onnx import helper

    empty_graph = helper.make_model(helper.make_graph([], "empty", [], []), opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(empty_graph, str(d / "empty_graph.onnx"))
    return d


def _writable():
    return [f for f in all_formats() if f.write is not None and f.available()]


@pytest.fixture(scope="module")
def batch(workdir):
    """Every case in one interpreter: argv -> result."""
    cases = [["convert", name, "out.k5"] for name in BAD_SOURCES]
    cases += [["convert", name, "out.k5", "--no-verify"] for name in BAD_SOURCES]
    for fmt in _writable():  # every target format, from a .k5 and from an .onnx source
        for source in ("good.k5", "good.onnx"):
            cases.append(["convert", source, f"no/such/dir/model{fmt.extensions[0]}", "--to", fmt.name])
    cases += [["--debug", "convert", "random.onnx", "out.k5"], ["convert", "random.onnx", "out.k5", "--debug"],
              ["convert", "good.k5", "b.boom"],
              ["--debug", "convert", "good.k5", "b.boom"]]  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(cases)], capture_output=True, text=True,
                          timeout=300, cwd=workdir, env=_env())  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {tuple(r["argv"]): r for r in json.loads(proc.stdout.strip().splitlines()[-1])}


def test_bad_onnx_sources_are_one_line_naming_the_file(batch, workdir):
    for name in BAD_SOURCES:
        assert_one_error_line(batch[("convert", name, "out.k5")], name)
        assert_one_error_line(batch[("convert", name, "out.k5", "--no-verify")], name)
    empty_graph = batch[("convert", "empty_graph.onnx", "out.k5", "--no-verify")]["err"]
    assert re.search(r"graph is empty|no outputs", empty_graph)
    assert not (workdir / "out.k5").exists()


def test_a_target_in_a_missing_directory_for_every_format(batch, workdir):
    writable = _writable()
    assert {"k5", "onnx"} <= {f.name for f in writable}
    for fmt in writable:
        for source in ("good.k5", "good.onnx"):
            target = f"no/such/dir/model{fmt.extensions[0]}"
            assert_one_error_line(batch[("convert", source, target, "--to", fmt.name)], target, "does not exist")
    assert not (workdir / "no").exists()


def test_debug_shows_the_traceback(batch):
    plain = batch[("convert", "random.onnx", "out.k5")]
    for debug in (batch[("--debug", "convert", "random.onnx", "out.k5")],
                  batch[("convert", "random.onnx", "out.k5", "--debug")]):  # fmt: skip
        assert debug["rc"] == 1 and "Traceback (most recent call last)" in debug["err"]
        assert debug["err"].strip().splitlines()[-1] == plain["err"].strip()


def test_an_internal_error_is_one_line_with_a_hint(batch):
    """A bug is named as internal (not as the user's fault), with the --debug hint; --debug shows where."""
    plain = batch[("convert", "good.k5", "b.boom")]
    assert_one_error_line(plain, "ZeroDivisionError: division by zero", "--debug", prefix="k5: internal error: ")
    debug = batch[("--debug", "convert", "good.k5", "b.boom")]
    assert debug["rc"] == 1 and "Traceback (most recent call last)" in debug["err"]


def test_the_k5_command_line_end_to_end(workdir):
    """The real command line, not the driver: one line on stderr, exit 1."""
    proc = subprocess.run([sys.executable, "-m", "k5.cli.main", "convert", "truncated.onnx", "out.k5"],
                          capture_output=True, text=True, timeout=120, cwd=workdir, env=_env())  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("k5: error: truncated.onnx: ")


def test_every_writer_refuses_a_missing_directory_itself(mlp_file, tmp_path):
    """Not only the CLI's pre-check: each registered writer raises a K5Error naming the target."""
    import k5

    with k5.load(mlp_file) as model:
        for fmt in _writable():
            target = str(tmp_path / "missing" / f"m{fmt.extensions[0]}")
            with pytest.raises(K5Error, match="missing"):
                fmt.write(model, target)
    assert not (tmp_path / "missing").exists()


def test_validate_calls_a_model_without_outputs_invalid(tmp_path, capsys):
    """A file whose graph declares no outputs (written past k5.save: its network JSON edited with h5py)."""
    import h5py

    path = tmp_path / "no_outputs.k5"
    write_mlp_k5(path, mlp_arrays())
    with h5py.File(path, "r+") as f:
        network = json.loads(f["model/network"][()])
        network["graph"]["outputs"] = []
        del f["validate"]  # its outputs name a graph output that no longer exists
        del f["model/network"]
        f.create_dataset("model/network", data=json.dumps(network).encode(), dtype=h5py.string_dtype())
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "output" in out
