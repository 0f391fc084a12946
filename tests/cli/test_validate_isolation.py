"""`k5 validate` parses the file in a resource-limited child first; what the child refuses stops validation there."""

from __future__ import annotations

import h5py

from k5.cli.main import main


def test_external_link_is_refused_by_the_isolated_check(mlp_saved, tmp_path, capsys):
    path, _ = mlp_saved
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["bias"] = [1.0, 2.0, 3.0]
    with h5py.File(path, "a") as f:
        del f["model/weights/fc2/bias"]
        f["model/weights/fc2/bias"] = h5py.ExternalLink(str(secret), "bias")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    lines = [ln.strip() for ln in out.splitlines()]
    assert lines[1].startswith("FAIL  file, schema and graph:") and "link" in lines[1], out
    assert "INVALID" in out


def test_no_isolate_still_validates(mlp_saved, capsys):
    path, _ = mlp_saved
    assert main(["validate", "--no-isolate", str(path)]) == 0
    assert "valid" in capsys.readouterr().out
