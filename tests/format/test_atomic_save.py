"""A failed or killed save leaves the old file byte-identical (temp file beside the target, renamed at the end)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import k5
from k5.errors import SaveError
from k5.format.model import Node


class Exploding:
    """A weight whose data cannot be produced: the save fails half-way through writing."""

    shape = (4, 4)
    dtype = np.dtype("float32")

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("disk on fire")


def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path, mlp):
    target = tmp_path / "m.k5"
    k5.save(mlp(seed=1), target)
    before = target.read_bytes()
    model = mlp(seed=2, hidden=4)
    model.graph.nodes.append(Node("late", "Constant", [], ["z"], weights={"value": Exploding()}))
    with pytest.raises(SaveError, match="disk on fire") as info:
        k5.save(model, target, check=False)
    assert str(info.value).startswith(str(target)) and "unchanged" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.k5"]


def test_invalid_model_is_a_save_error_and_writes_nothing(tmp_path, mlp):
    model = mlp()
    model.graph.nodes[2].inputs = ["missing"]
    with pytest.raises(SaveError, match="'missing'"):
        k5.save(model, tmp_path / "m.k5")
    assert os.listdir(tmp_path) == []
    with pytest.raises(SaveError, match="compression"):
        k5.save(mlp(), tmp_path / "m.k5", compression="lzf")


def test_save_replaces_and_keeps_permissions(tmp_path, mlp):
    target = tmp_path / "m.k5"
    k5.save(mlp(seed=1), target)
    os.chmod(target, 0o640)
    k5.save(mlp(seed=2), target)
    assert os.stat(target).st_mode & 0o777 == 0o640
    with k5.load(target) as got:
        assert np.array_equal(np.asarray(got.nodes[0].weights["weight"]), mlp(seed=2).nodes[0].weights["weight"])


def test_open_model_keeps_reading_the_old_file_after_a_save_replaces_it(tmp_path, mlp):
    target = tmp_path / "m.k5"
    old, new = mlp(seed=1), mlp(seed=2)
    k5.save(old, target)
    with k5.load(target) as opened:
        k5.save(new, target)
        assert np.array_equal(np.asarray(opened.nodes[0].weights["weight"]), old.nodes[0].weights["weight"])
    with k5.load(target) as reopened:
        assert np.array_equal(np.asarray(reopened.nodes[0].weights["weight"]), new.nodes[0].weights["weight"])


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_save_keeps_old_file(tmp_path, mlp):
    target = tmp_path / "m.k5"
    k5.save(mlp(seed=1), target)
    before = target.read_bytes()
    marker = tmp_path / "writing"
    script = textwrap.dedent(
        f"""
        import sys, time
        import numpy as np
        import k5
        from k5.format.model import Graph, Model, Node, TensorInfo

        class Stalls:
            shape = (256, 256)
            dtype = np.dtype("float32")
            def __array__(self, dtype=None, copy=None):
                open({str(marker)!r}, "w").close()  # half the file is written: now kill me
                time.sleep(60)
                return np.zeros(self.shape, "float32")

        nodes = [Node(f"c{{i}}", "Constant", [], [f"y{{i}}"], weights={{"value": np.ones((256, 256), "f4")}})
                 for i in range(8)]
        nodes.append(Node("stall", "Constant", [], ["z"], weights={{"value": Stalls()}}))
        k5.save(Model(Graph(nodes, [], [TensorInfo("z", "float32", [256, 256])])), {str(target)!r})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "the saving process ended early"
            assert time.monotonic() < deadline, "the saving process never reached the stalled weight"
            time.sleep(0.05)
        temps = [p for p in os.listdir(tmp_path) if p.endswith(".k5tmp")]
        assert len(temps) == 1 and os.path.getsize(tmp_path / temps[0]) > 8 * 256 * 256 * 4 * 0.5
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert target.read_bytes() == before
    k5.load(target, verify=True).close()
