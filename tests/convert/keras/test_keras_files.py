"""Keras files as sources: ``.keras`` and legacy ``.h5`` written by Keras' own ``model.save`` convert without Keras
and match Keras' outputs; hostile files (Lambda, custom objects, soft/external links, shape bombs) are refused."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="writing the test files needs keras")

from keras_helpers import assert_close, converted, keras_model  # noqa: E402

import k5  # noqa: E402
from k5.convert.formats import format_for  # noqa: E402
from k5.convert.keras import read_h5, read_keras  # noqa: E402
from k5.errors import ConversionError, HostileSizeError, UnsafeFileError  # noqa: E402

NAMES = ["cnn_bn", "rnn", "transformer", "text_classifier", "nested"]


@pytest.mark.parametrize("ext", [".keras", ".h5"])
@pytest.mark.parametrize("name", NAMES)
def test_file_written_by_keras_matches_keras(name: str, ext: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}{ext}"
    keras_model(name).save(path)
    fmt = format_for(str(path))
    assert fmt.name == ("keras" if ext == ".keras" else "keras-h5")
    model = fmt.read(str(path))  # type: ignore[misc]
    ref = converted(name).validation
    out = k5.run(model, ref.inputs)
    assert [n.id for n in model.nodes] == [n.id for n in converted(name).nodes]
    for info in model.graph.outputs:
        assert_close(out[info.name], ref.outputs[info.name])


def test_reading_imports_no_framework(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    keras_model("cnn_bn").save(path)
    code = (
        "import sys; from k5.convert.keras import read_keras; m = read_keras(sys.argv[1]); "
        "bad = [k for k in sys.modules if k.split('.')[0] in ('keras', 'tensorflow', 'torch')]; "
        "assert not bad, bad; print(len(m.nodes))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 5


def test_lambda_layer_is_refused(tmp_path: Path) -> None:
    inp = keras.Input((3,))
    out = keras.layers.Lambda(lambda x: x * 2, name="doubler")(keras.layers.Dense(2)(inp))
    path = tmp_path / "lambda.keras"
    keras.Model(inp, out).save(path)
    with pytest.raises(ConversionError, match=r"lambda\.keras: layer 'doubler' \(Lambda\): a Lambda layer holds"):
        read_keras(path)


def _edit_keras(src: Path, dst: Path, *, config=None, weights=None) -> None:
    """Copy a .keras archive, rewriting config.json and/or model.weights.h5."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out:
        for name in z.namelist():
            data = z.read(name)
            if name == "config.json" and config is not None:
                data = json.dumps(config(json.loads(data))).encode()
            if name == "model.weights.h5" and weights is not None:
                buf = io.BytesIO(data)
                with h5py.File(buf, "r+") as f:
                    weights(f)
                data = buf.getvalue()
            out.writestr(name, data)


def _mlp_file(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.keras"
    keras_model("mlp").save(path)
    return path


def test_custom_object_is_refused(tmp_path: Path) -> None:
    def custom(cfg):
        layer = cfg["config"]["layers"][1]
        layer.update(module="evil_pkg.layers", class_name="Dense", registered_name="evil_pkg>Dense")
        return cfg

    _edit_keras(_mlp_file(tmp_path), tmp_path / "custom.keras", config=custom)
    with pytest.raises(ConversionError, match="custom object"):
        read_keras(tmp_path / "custom.keras")


def test_unknown_layers_are_listed(tmp_path: Path) -> None:
    def unknown(cfg):
        cfg["config"]["layers"][1]["class_name"] = "MyAttention"
        cfg["config"]["layers"][2]["class_name"] = "MyAttention"
        return cfg

    _edit_keras(_mlp_file(tmp_path), tmp_path / "unknown.keras", config=unknown)
    with pytest.raises(ConversionError, match=r"MyAttention \(x2\)"):
        read_keras(tmp_path / "unknown.keras")


@pytest.mark.parametrize("kind", ["soft", "external"])
def test_links_are_refused(kind: str, tmp_path: Path) -> None:
    def relink(f: h5py.File) -> None:
        group = f["layers/dense/vars"]
        del group["0"]
        group["0"] = h5py.SoftLink("/layers/dense/vars/1") if kind == "soft" else h5py.ExternalLink("/etc/passwd",
                                                                                                    "/x")

    _edit_keras(_mlp_file(tmp_path), tmp_path / "linked.keras", weights=relink)
    with pytest.raises(UnsafeFileError, match="only hard links"):
        read_keras(tmp_path / "linked.keras")


def test_shape_bomb_is_refused(tmp_path: Path) -> None:
    def bomb(f: h5py.File) -> None:
        group = f["layers/dense/vars"]
        del group["0"]
        group.create_dataset("0", shape=(1 << 20, 1 << 12), dtype="float32")  # 16 GiB declared, nothing stored

    _edit_keras(_mlp_file(tmp_path), tmp_path / "bomb.keras", weights=bomb)
    with pytest.raises(HostileSizeError, match="more than the"):
        read_keras(tmp_path / "bomb.keras")


def test_h5_without_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.weights.h5"
    keras_model("mlp").save_weights(path)
    with pytest.raises(k5.K5Error, match="model_config"):
        read_h5(path)


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "junk.keras"
    path.write_bytes(b"PK\x03\x04" + np.arange(100, dtype=np.uint8).tobytes())
    with pytest.raises(k5.K5Error, match=r"not a \.keras archive"):
        read_keras(path)


def test_keras_format_writes_and_runs(tmp_path: Path) -> None:
    """The registered 'keras' format writes a .keras (via to_keras) that its own runner (Keras) reproduces."""
    fmt = format_for(str(tmp_path / "m.keras"))
    model = converted("cnn_bn")
    path = str(tmp_path / "m.keras")
    fmt.write(model, path)  # type: ignore[misc]
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]
    import k5.convert.keras.keras_layers  # noqa: F401 - registers k5's layers for Keras' loader

    out = fmt.run(path, model.validation.inputs)  # type: ignore[misc]
    assert_close(next(iter(out.values())), model.validation.outputs[model.output_names()[0]])
