"""Four PyTorch networks written through k5 as .t7, checked on every path against OpenCV's own Torch importer.

PyTorch -> k5 -> .t7 (``to_torch7``); then, each within 1e-4 of the output's scale:

- OpenCV's run of the written file == the PyTorch module (the file means what the network means);
- .t7 -> k5 (``from_torch7``) -> k5 runtime == OpenCV's run of the same file;
- .t7 -> k5 -> ``to_torch`` == OpenCV;
- .t7 -> k5 -> ``to_onnx`` -> onnxruntime == OpenCV;
- torchfile (an independent Torch7 reader) parses the written file to the same tensors and fields as k5's reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the test networks are built in PyTorch")

from t7_nets import NETS, build  # noqa: E402
from t7_oracles import Oracles, assert_close  # noqa: E402

import k5  # noqa: E402
from k5.convert.formats import format_for  # noqa: E402
from k5.convert.torch7 import T7Object, T7Storage, T7Table, from_torch7, read_t7, to_torch7  # noqa: E402

_CACHE: dict[str, dict[str, Any]] = {}


def _converted(name: str, oracles: Oracles, tmp: Path) -> dict[str, Any]:
    if name not in _CACHE:
        module, x = build(name)
        with torch.no_grad():
            reference = module(x).numpy()
        path = tmp / f"{name}.t7"
        to_torch7(k5.from_torch(module, (x,)), path)
        _CACHE[name] = {
            "x": x.numpy(),
            "torch": reference,
            "path": path,
            "opencv": oracles.opencv(path, x.numpy()),
            "k5": from_torch7(path, input_shape=list(x.shape)),
        }
    return _CACHE[name]


@pytest.fixture(scope="module")
def t7_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("t7_nets")


def _report(name: str, path: str, diff: float) -> None:
    print(f"\n[t7 diff] {name:7s} {path:32s} {diff:.3e}")


@pytest.mark.parametrize("name", sorted(NETS))
def test_opencv_runs_written_file_like_pytorch(name: str, oracles: Oracles, t7_dir: Path) -> None:
    c = _converted(name, oracles, t7_dir)
    _report(name, "PyTorch vs OpenCV(.t7)", assert_close(c["opencv"], c["torch"]))


@pytest.mark.parametrize("name", sorted(NETS))
def test_k5_runtime_matches_opencv(name: str, oracles: Oracles, t7_dir: Path) -> None:
    c = _converted(name, oracles, t7_dir)
    (out,) = k5.run(c["k5"], c["x"]).values()
    _report(name, ".t7 -> k5 runtime vs OpenCV", assert_close(out, c["opencv"]))


@pytest.mark.parametrize("name", sorted(NETS))
def test_to_torch_matches_opencv(name: str, oracles: Oracles, t7_dir: Path) -> None:
    c = _converted(name, oracles, t7_dir)
    module = k5.to_torch(c["k5"]).eval()
    with torch.no_grad():
        out = module(torch.from_numpy(c["x"])).numpy()
    _report(name, ".t7 -> k5 -> to_torch vs OpenCV", assert_close(out, c["opencv"]))


@pytest.mark.parametrize("name", sorted(NETS))
def test_onnxruntime_matches_opencv(name: str, oracles: Oracles, t7_dir: Path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="the ONNX path needs onnxruntime")
    c = _converted(name, oracles, t7_dir)
    proto = k5.to_onnx(c["k5"])
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: c["x"]})
    _report(name, ".t7 -> k5 -> ONNX -> ORT vs OpenCV", assert_close(out, c["opencv"]))


@pytest.mark.parametrize("name", sorted(NETS))
def test_rewritten_t7_runs_in_opencv_like_the_first(name: str, oracles: Oracles, t7_dir: Path) -> None:
    """.t7 -> k5 -> .t7 again: the second file runs in OpenCV as the first did."""
    c = _converted(name, oracles, t7_dir)
    again = t7_dir / f"{name}.again.t7"
    to_torch7(c["k5"], again)
    _report(name, ".t7 -> k5 -> .t7 OpenCV vs OpenCV", assert_close(oracles.opencv(again, c["x"]), c["opencv"]))


def test_registered_format_runs_t7_with_opencv(oracles: Oracles, t7_dir: Path) -> None:
    """The .t7 format's own runtime (for ``k5 convert`` verification) is OpenCV, here through the oracle venv."""
    c = _converted("resnet", oracles, t7_dir)
    fmt = format_for(str(c["path"]))
    assert fmt.run is not None
    (out,) = fmt.run(str(c["path"]), {"input": c["x"]}).values()
    assert_close(out, c["opencv"], rtol=1e-6)


def _flatten(obj: Any, path: str, tensors: dict[str, np.ndarray], scalars: dict[str, Any], seen: set[int]) -> None:
    """k5's parse flattened the way _torchfile_oracle.py flattens torchfile's."""
    if isinstance(obj, np.ndarray):
        tensors[path] = obj
    elif isinstance(obj, T7Storage):
        tensors[path] = obj.data
    elif isinstance(obj, bool | int | float | str):
        scalars[path] = obj
    elif obj is None:
        return
    elif id(obj) in seen:
        scalars[path] = "#ref"
    else:
        seen.add(id(obj))
        items = obj.fields.items() if isinstance(obj, T7Object) else obj.items()
        if isinstance(obj, T7Object):
            scalars[path + "#class"] = obj.class_name
        assert isinstance(obj, T7Object | T7Table)
        for k, v in items:
            key = str(int(k)) if isinstance(k, float) and k == int(k) else str(k)
            _flatten(v, f"{path}.{key}" if path else key, tensors, scalars, seen)


@pytest.mark.parametrize("name", sorted(NETS))
def test_torchfile_reads_written_file_like_k5(name: str, oracles: Oracles, t7_dir: Path) -> None:
    c = _converted(name, oracles, t7_dir)
    want_t, want_s = oracles.torchfile(c["path"])
    got_t: dict[str, np.ndarray] = {}
    got_s: dict[str, Any] = {}
    _flatten(read_t7(c["path"]), "", got_t, got_s, set())
    assert got_s == want_s
    assert sorted(got_t) == sorted(want_t)
    for key, want in want_t.items():
        np.testing.assert_array_equal(got_t[key].reshape(want.shape), want, err_msg=key)
    assert any(v.size > 100 for v in want_t.values())  # the weights were compared, not only empty buffers
