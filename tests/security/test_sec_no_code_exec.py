"""Loading a k5 file never executes code from it and never touches other files.

Two independent checks: a static scan of the package for code-executing deserialisers, and a run under a Python
audit hook that records every code-compiling, pickle, process and file-open event while a file full of code-like
strings is loaded, validated and run.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py

import k5

SRC = Path(k5.__file__).parent
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib", "yaml"}


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            out.append((name, node))
    return out


def test_package_has_no_code_executing_deserialisers() -> None:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(SRC)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                problems += [f"{rel}: imports {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
        for name, call in _calls(tree):
            kw = {k.arg: k.value for k in call.keywords}
            if name in ("eval", "exec", "compile") and isinstance(call.func, ast.Name):
                problems.append(f"{rel}:{call.lineno}: calls {name}()")
            if (
                name == "load"
                and "allow_pickle" in kw
                and not (isinstance(kw["allow_pickle"], ast.Constant) and kw["allow_pickle"].value is False)
            ):
                problems.append(f"{rel}:{call.lineno}: np.load without allow_pickle=False")
            torch_load = name == "load" and getattr(getattr(call.func, "value", None), "id", "") == "torch"
            safe = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
            if torch_load and not safe:
                problems.append(f"{rel}:{call.lineno}: torch.load without weights_only=True")
    assert not problems, "\n".join(problems)


CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import k5, k5.ops, k5.format.hdf5, k5.format.network, k5.format.checks, k5.runtime.interpreter
    path = sys.argv[1]
    PACKAGE = k5.__file__.rsplit("/", 1)[0] + "/"
    GUARD_STAT = "/proc/"
    events = []
    WATCH = ("exec", "compile", "pickle.find_class", "marshal.loads", "os.system", "subprocess.Popen",
             "os.exec", "os.posix_spawn", "os.fork", "ctypes.dlopen", "import", "open", "socket.connect")
    def hook(event, args):
        if event.startswith(WATCH):
            if event == "open" and args and (str(args[0]) == path or str(args[0]).startswith(PACKAGE)):
                return  # the model file itself, and k5's own resources (the JSON Schema)
            if event == "os.fork" or (event == "open" and str(args[0]).startswith(GUARD_STAT)
                                      and str(args[0]).endswith("/stat")):
                return  # the load's guard: a forked child (no exec) whose CPU time is read from /proc
            events.append([event, repr(args)[:200]])
    k5.format.network.schema()  # k5's own JSON Schema: read (and its stdlib readers imported) before watching
    sys.addaudithook(hook)
    with k5.load(path) as model:
        for w in model.weights().values():
            np.asarray(w)
        out = k5.run(model, dict(model.validation.inputs))
    k5.format.hdf5.validate(path)
    print(json.dumps({"events": events, "meta": model.metadata.extra, "y": float(np.asarray(out["y"]).sum())}))
    """
)


def test_loading_runs_no_code_and_opens_no_other_file(tmp_path: Path) -> None:
    from _sec_models import mlp

    model = mlp(0)
    payload = "__import__('os').system('touch " + str(tmp_path / "pwned") + "')"
    model.metadata.extra = {"code": payload, "pickle": "cos\nsystem\n(S'touch pwned'\ntR.", "yaml": "!!python/object"}
    model.metadata.description = payload
    model.graph.nodes[0].doc = payload
    path = tmp_path / "model.k5"
    k5.save(model, path)
    with h5py.File(path, "r+") as f:  # strings in places a careless reader might evaluate
        f.attrs["producer"] = payload
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["meta"]["code"] == payload  # the text came through as text
    assert result["events"] == [], f"loading triggered: {result['events']}"
    assert not (tmp_path / "pwned").exists()


def test_the_audit_hook_sees_what_it_should(tmp_path: Path) -> None:
    """The check above can fail: the same hook records an eval and a pickle load."""
    code = CHILD.replace("with k5.load(path) as model:", "eval('1'); __import__('pickle').loads(b'N.')\nif 0:")
    code = code.replace("k5.format.hdf5.validate(path)", "model = type('M', (), {'metadata': type('X', (), "
                                                          "{'extra': {}})})()\nout = {'y': 0}")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.k5")], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = {e[0] for e in json.loads(proc.stdout.strip().splitlines()[-1])["events"]}
    assert "exec" in events or "compile" in events
