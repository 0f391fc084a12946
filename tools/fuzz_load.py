"""Fuzz the k5 loader: mutated files and mutated network JSON must only ever raise K5Error.

Targets (``--target``):

- ``file``: the input is a whole ``.k5`` file (seeds: small valid files of several kinds). It is loaded, every
  weight is read, the file is validated (``k5.format.hdf5.validate``: checksums) and the validation pair is run.
- ``json``: the input is network JSON text: parsed, schema- and graph-checked, given zero weights (when small) and
  run on zero inputs.
- ``embed``: the input is network JSON text placed as ``/model/network`` inside a valid file, then treated as
  ``file`` (mutated graphs against real HDF5 weights: declarations vs datasets).
- ``meta``: the input is a list of byte patches applied to the HDF5 *metadata* of a valid seed file (every byte
  that is not a weight's, validation tensor's or data split's contiguous storage: superblock, object headers,
  B-trees, local and global heaps, attributes), then treated as ``file``. Each 4-byte group of the input is
  (position: 2 bytes, scaled over the seed's metadata bytes; operation: xor or set; value).

Any exception that is not a :class:`k5.K5Error` is a finding: the run stops and the input is saved. So is a hang
(``--timeout`` seconds per input) or an allocation beyond ``--mem-mb`` MiB (the process's address space is capped,
so it shows up as a MemoryError). Engines: ``atheris`` (coverage-guided, libFuzzer; default when installed) and
``random`` (a plain mutator, no dependencies).

    python tools/fuzz_load.py --target file --seconds 120            # the CI run
    python tools/fuzz_load.py --target embed --seconds 3600 --jobs 2  # a long run (docs/security.md)
    python tools/fuzz_load.py --target meta --seconds 1800 --engine random  # HDF5 metadata only
    python tools/fuzz_load.py --target file --reproduce crash-1234    # replay a saved input

Exit status 0: no finding. 1: a finding (its input is in ``--artifacts``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

Target = Callable[[bytes], None]


# --- seeds -------------------------------------------------------------------------------------------------------
def _seed_models() -> dict[str, Any]:
    import numpy as np

    from k5.format.model import DataSplit, Graph, Metadata, Model, Node, TensorInfo, ValidationPair

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8)).astype(np.float32)
    w = rng.standard_normal((8, 8)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    y = np.maximum(x @ w.T + b, 0).astype(np.float32)
    mlp = Model(
        Graph(
            [Node("fc", "Linear", ["x"], ["h"], weights={"weight": w, "bias": b}), Node("act", "Relu", ["h"], ["y"])],
            [TensorInfo("x", "float32", ["batch", 8])],
            [TensorInfo("y", "float32", ["batch", 8])],
        ),
        metadata=Metadata(author="fuzz", description="seed", extra={"a/b": "c"}),
        validation=ValidationPair({"x": x}, {"y": y}),
    )
    import ml_dtypes

    mixed = Model(
        Graph(
            [
                Node("c16", "Constant", [], ["k"], weights={"value": np.arange(6, dtype=ml_dtypes.bfloat16)}),
                Node("cb", "Constant", [], ["m"], weights={"value": np.array([True, False])}),
                Node("ci", "Constant", [], ["i"], weights={"value": np.arange(3, dtype=np.int64)}),
                Node("n", "Neg", ["x"], ["y"]),
            ],
            [TensorInfo("x", "float16", [3])],
            [TensorInfo("y", "float16", [3]), TensorInfo("k", "bfloat16", [6])],
        ),
        validation=ValidationPair({"x": np.ones(3, np.float16)}, {"y": -np.ones(3, np.float16)}),
        training=DataSplit(np.zeros((5, 3), np.float16), np.arange(5, dtype=np.int64)),
    )
    return {"mlp": mlp, "mixed": mixed}


def make_seeds(out: Path) -> list[Path]:
    from k5.format.hdf5 import save

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in _seed_models().items():
        for compression in (None, "gzip"):
            path = out / f"{name}{'_gz' if compression else ''}.k5"
            save(model, path, compression=compression)
            paths.append(path)
    return paths


def network_text(path: Path) -> bytes:
    import h5py

    with h5py.File(path, "r") as f:
        raw = f["model/network"][()]
    return raw if isinstance(raw, bytes) else raw.encode()


# --- what one input goes through ---------------------------------------------------------------------------------
def exercise_file(path: str) -> None:
    import numpy as np

    from k5.format.hdf5 import load, validate
    from k5.runtime.interpreter import run

    with load(path) as model:
        for value in model.weights().values():
            np.asarray(value)
        if model.validation is not None:
            run(model, dict(model.validation.inputs))
        for split in (model.training, model.evaluate):
            if split is not None:
                for part in (split.data, split.labels):
                    if part is not None:
                        part[0:2]
    validate(path)


def exercise_json(text: bytes) -> None:
    import numpy as np

    from k5.format.checks import check_model
    from k5.format.dtypes import dtype_of
    from k5.format.model import WeightSpec
    from k5.format.network import loads_network
    from k5.runtime.interpreter import run

    model = loads_network(text)
    check_model(model)
    specs = [(n, k, w) for _, n in model.graph.walk() for k, w in n.weights.items() if isinstance(w, WeightSpec)]
    if sum(float(np.prod(w.shape, dtype=np.float64)) for _, _, w in specs) > 1 << 20:
        return
    for node, name, spec in specs:
        node.weights[name] = np.zeros(spec.shape, dtype_of(spec.dtype).numpy)
    feeds = {}
    for t in model.graph.inputs:
        if t.kind != "tensor" or t.dtype is None or t.shape is None:
            return
        shape = [d if isinstance(d, int) else 1 for d in t.shape]
        if np.prod(shape, dtype=np.float64) > 1 << 16:
            return
        feeds[t.name] = np.zeros(shape, dtype_of(t.dtype).numpy)
    run(model, feeds)


def _replace_network(seed: Path, text: bytes, dest: str) -> None:
    import h5py
    import numpy as np

    shutil.copyfile(seed, dest)
    with h5py.File(dest, "r+") as f:
        del f["model/network"]
        f["model"].create_dataset("network", data=np.frombuffer(text or b" ", dtype=f"S{max(1, len(text))}")[0])


#: what the targets saw: executions that raised a K5Error, and the slowest execution (seconds, input size)
STATS: dict[str, float] = {"k5errors": 0, "slowest": 0.0}
#: where the plain engine keeps the slowest input (set by main)
SLOWEST_INPUT: list[Path] = []


def metadata_positions(path: Path) -> list[int]:
    """Offsets of the bytes of ``path`` that are HDF5 metadata: all but the contiguous storage of its datasets."""
    import h5py

    data_spans = []
    with h5py.File(path, "r") as f:

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset) and obj.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS:
                offset = obj.id.get_offset()
                if offset is not None and name != "model/network":
                    data_spans.append((offset, offset + obj.id.get_storage_size()))

        f.visititems(visit)
    size = path.stat().st_size
    inside = bytearray(size)
    for start, end in data_spans:
        inside[start:end] = b"\x01" * (end - start)
    return [i for i in range(size) if not inside[i]]


def patch_metadata(seed: bytes, positions: list[int], patches: bytes) -> bytes:
    """Apply ``patches`` (4-byte groups: position u16 scaled over ``positions``, op, value) to ``seed``."""
    buf = bytearray(seed)
    for k in range(0, len(patches) - 3, 4):
        pos = positions[int.from_bytes(patches[k : k + 2], "little") * len(positions) >> 16]
        op, value = patches[k + 2], patches[k + 3]
        buf[pos] = buf[pos] ^ (1 << (value % 8)) if op % 2 else value
    return bytes(buf)


def make_target(name: str, seeds: list[Path], scratch: str) -> Target:
    from k5.errors import K5Error

    def guarded(fn: Callable[[bytes], None]) -> Target:
        def one(data: bytes) -> None:
            start = time.monotonic()
            try:
                fn(data)
            except K5Error:
                STATS["k5errors"] += 1
            took = time.monotonic() - start
            if took > STATS["slowest"]:
                STATS["slowest"] = took
                if SLOWEST_INPUT:
                    SLOWEST_INPUT[0].write_bytes(data)  # to time it again alone: --reproduce

        return one

    def file_input(data: bytes) -> None:
        with open(scratch, "wb") as fh:
            fh.write(data)
        exercise_file(scratch)

    def embed_input(data: bytes) -> None:
        seed = seeds[hashlib.sha1(data[:16]).digest()[0] % len(seeds)]
        _replace_network(seed, data, scratch)
        exercise_file(scratch)

    seeds_meta = [(p.read_bytes(), metadata_positions(p)) for p in seeds] if name == "meta" else []

    def meta_input(data: bytes) -> None:
        seed, positions = seeds_meta[data[0] % len(seeds_meta)] if data else seeds_meta[0]
        file_input(patch_metadata(seed, positions, data[1:]))

    targets = {"file": file_input, "json": exercise_json, "embed": embed_input, "meta": meta_input}
    return guarded(targets[name])


def seed_inputs(name: str, seeds: list[Path]) -> list[bytes]:
    if name == "file":
        return [p.read_bytes() for p in seeds]
    if name == "meta":
        return [bytes([i]) + bytes(4 * i) for i in range(len(seeds))]  # each seed, patched at its first byte only
    return [network_text(p) for p in seeds]


# --- the plain engine ------------------------------------------------------------------------------------------
_INTERESTING = [
    b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80", b"\xff" * 8,
    b'"', b"[", b"{", b"}", b"]", b"-1", b"1e999", b"null", b"\\ud800", b"99999999999999999999",
]  # fmt: skip


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        op = rng.randrange(7)
        pos = rng.randrange(len(buf)) if buf else 0
        if op == 0 and buf:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[pos] = rng.randrange(256)
        elif op == 2:
            token = rng.choice(_INTERESTING)
            buf[pos : pos + len(token)] = token
        elif op == 3:
            del buf[pos : pos + rng.randrange(1, 64)]
        elif op == 4 and buf:
            end = min(len(buf), pos + rng.randrange(1, 256))
            buf[pos:pos] = buf[pos:end] * rng.randrange(1, 4)
        elif op == 5:
            del buf[rng.randrange(len(buf) + 1) :]
        else:
            other = rng.choice(pool)
            cut = rng.randrange(len(other) + 1)
            buf[pos:] = other[cut:]
    return bytes(buf)


def run_random(
    target: Target, inputs: list[bytes], seconds: float, seed: int, artifacts: Path, timeout: int
) -> tuple[int, int]:
    """(executions, findings); stops at the first finding, saving its input.

    A hang (an input running past ``timeout`` seconds, possibly inside HDF5's C code where no Python signal handler
    runs) makes faulthandler print every thread's stack and exit with status 1; the input is in ``last-input``.
    """
    import faulthandler

    rng = random.Random(seed)
    pool = list(inputs)
    end = time.monotonic() + seconds
    execs = 0
    last = artifacts / "last-input"
    while time.monotonic() < end:
        data = mutate(rng.choice(pool), rng, pool)
        last.write_bytes(data)
        faulthandler.dump_traceback_later(timeout, exit=True)
        try:
            target(data)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            path = artifacts / f"crash-{hashlib.sha1(data).hexdigest()}"
            path.write_bytes(data)
            print(f"k5-fuzz: FINDING {type(e).__name__}: {e} (input saved to {path})", flush=True)
            raise
        finally:
            faulthandler.cancel_dump_traceback_later()
        execs += 1
        if execs % 64 == 0 and len(pool) < 256:
            pool.append(data)
    return execs, 0


# --- main ------------------------------------------------------------------------------------------------------------
def _cap_memory(mem_mb: int) -> None:
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    limit = vm + mem_mb * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=("file", "json", "embed", "meta"), default="file")
    p.add_argument("--engine", choices=("atheris", "random"), default=None)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--timeout", type=int, default=10, help="seconds per input before it counts as a hang")
    p.add_argument("--mem-mb", type=int, default=1024, help="address space allowed beyond the baseline")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="atheris: parallel fuzzing processes")
    p.add_argument("--artifacts", type=Path, default=Path("fuzz-artifacts"))
    p.add_argument("--reproduce", type=Path, help="run one saved input and exit")
    args = p.parse_args(argv)

    engine = args.engine
    if engine is None:
        try:
            import atheris

            del atheris
            engine = "atheris"
        except ImportError:
            engine = "random"
    args.artifacts.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="k5fuzz-"))
    scratch = str(Path("/dev/shm" if os.path.isdir("/dev/shm") else work) / f"k5fuzz-{os.getpid()}.k5")
    try:
        if engine == "atheris" and not args.reproduce:
            import atheris

            with atheris.instrument_imports(include=["k5"]):
                import k5.format.checks
                import k5.format.hdf5
                import k5.format.network
                import k5.ops
                import k5.runtime.interpreter  # noqa: F401
        seeds = make_seeds(work / "seeds")
        target = make_target(args.target, seeds, scratch)
        inputs = seed_inputs(args.target, seeds)
        _cap_memory(args.mem_mb)
        if args.reproduce:
            target(args.reproduce.read_bytes())
            print("k5-fuzz: the input raised no finding")
            return 0
        if engine == "random":
            SLOWEST_INPUT.append(args.artifacts / "slowest-input")
            start = time.monotonic()
            execs, _ = run_random(target, inputs, args.seconds, args.seed, args.artifacts, args.timeout)
            took = time.monotonic() - start
            print(
                f"k5-fuzz: engine=random target={args.target} executions={execs} seconds={took:.0f} "
                f"k5errors={int(STATS['k5errors'])} foreign=0 crashes=0 hangs=0 slowest={STATS['slowest']:.2f}s"
            )
            return 0
        corpus_dir = work / "corpus"
        corpus_dir.mkdir()
        for i, data in enumerate(inputs):
            (corpus_dir / f"seed{i}").write_bytes(data)
        import atheris

        max_len = max(len(d) for d in inputs) * 2
        flags = [
            sys.argv[0], str(corpus_dir), f"-max_total_time={int(args.seconds)}", f"-timeout={args.timeout}",
            f"-max_len={max_len}", f"-seed={args.seed or 1}", f"-artifact_prefix={args.artifacts}/",
            "-rss_limit_mb=0", "-print_final_stats=1",
        ]  # fmt: skip
        if args.jobs > 1:
            flags += [f"-jobs={args.jobs}", f"-workers={args.jobs}"]
        atheris.Setup(flags, target)
        atheris.Fuzz()  # exits the process: 0 when the time is up, non-zero on a finding
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if os.path.exists(scratch):
            os.unlink(scratch)


if __name__ == "__main__":
    sys.exit(main())
