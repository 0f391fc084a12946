"""Parent side of the sandboxed loader: feeds files to ``_sec_worker.py`` and notices hangs and crashes.

A :class:`Sandbox` keeps one worker process alive across many files (starting Python + k5 costs ~1 s), restarts it
after a hang (killed at ``timeout`` seconds) or a death (signal, abort, out-of-memory kill), and reports each file's
fate as a dict with ``outcome`` in ``ok | k5error | exception | hang | died``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("_sec_worker.py")
MARK = b"@@K5SEC "
BAD = ("exception", "hang", "died")


class Sandbox:
    def __init__(self, *, mem_mb: int = 1024, timeout: float = 10.0) -> None:
        self.mem_mb = mem_mb
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self._eof = False

    # -- process management ------------------------------------------------------------------------------------
    def _start(self) -> None:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(self.mem_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self._buf = b""
        ready = self._read_reply(60.0)
        if ready is None or ready.get("outcome") != "ready":
            raise RuntimeError(f"security worker did not start: {ready}")

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                if f is not None:
                    f.close()
            self.proc = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_reply(self, timeout: float) -> dict[str, Any] | None:
        """The next protocol line, or None on timeout / EOF (``self._eof`` tells which)."""
        self._eof = False
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                if line.startswith(MARK):
                    return json.loads(line[len(MARK) :])
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                self._eof = True
                return None
            self._buf += chunk

    # -- the one call ------------------------------------------------------------------------------------------
    def check(self, path: str | os.PathLike[str], mode: str = "load") -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps({"path": str(path), "mode": mode}) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        reply = self._read_reply(self.timeout)
        if reply is not None:
            return reply
        if self._eof:  # the worker closed its output: it is dying; reap it to learn how
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.close()
            return {"outcome": "hang", "type": f"no answer within {self.timeout} s"}
        code = self.proc.returncode
        self.close()
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return {"outcome": "died", "type": f"worker died: {how}"}


def summarize(results: dict[str, dict[str, Any]]) -> str:
    """One line per bad file, for assertion messages."""
    lines = []
    for name, r in sorted(results.items()):
        if r["outcome"] in BAD:
            lines.append(f"{name}: {r['outcome']}: {r.get('type')}: {r.get('message', '')}\n{r.get('tb', '')}")
    return "\n".join(lines)
