"""Peak memory of the conversions, one command, one table: model size, peak extra RSS and their ratio.

    python bench/bench_from_torch_memory.py                 # every scenario, ~200 MB model
    python bench/bench_from_torch_memory.py --mb 50         # a smaller model
    python bench/bench_from_torch_memory.py --only from_torch

Each scenario runs in a fresh Python process, so that one scenario's allocations (and the allocator's cache) do not
count against the next. In that process: imports, then the scenario's ``setup`` (build the model, write any input
file), then the baseline RSS (``/proc/self/statm``, after ``gc.collect()``), then the scenario's ``run``; the peak is
``ru_maxrss`` afterwards. Peak extra = peak - baseline: the memory the conversion itself needed on top of the model
it started from. The target (issue 8) is a peak extra under 2x the model's size.

Adding a scenario (k5 -> ONNX, ONNX -> k5, ...): append a :class:`Scenario` to :data:`SCENARIOS`; ``setup`` returns
the state ``run`` needs and the model's size in bytes.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _common import markdown_table

MB = 1 << 20


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    setup: Callable[[str, int], tuple[Any, int]]  # (work dir, model MB) -> (state, model bytes)
    run: Callable[[Any, str], None]  # (state, work dir) -> None


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


# --- the from_torch scenario ---------------------------------------------------------------------------------------
def _mlp(mb: int) -> Any:
    """A stack of square Linear layers of about ``mb`` MB (float32), built in code."""
    import torch
    from torch import nn

    width = 2048
    per_layer = (width * width + width) * 4
    layers = max(1, round(mb * MB / per_layer))
    torch.manual_seed(0)
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*mods).eval()


def from_torch_setup(workdir: str, mb: int) -> tuple[Any, int]:
    import torch

    import k5.convert.torch  # noqa: F401 - import cost is not the conversion's

    module = _mlp(mb)
    size = sum(p.numel() * p.element_size() for p in module.parameters())
    return (module, torch.randn(2, 2048)), size


def from_torch_functional_setup(workdir: str, mb: int) -> tuple[Any, int]:
    """The same weights used through ``F.linear`` (as transformers' GPT-2 ``Conv1D`` does): they become
    ``Constant`` nodes rather than layers."""
    import torch
    from torch import nn

    import k5.convert.torch  # noqa: F401 - import cost is not the conversion's

    class Functional(nn.Module):
        def __init__(self, layers: nn.Sequential) -> None:
            super().__init__()
            self.weights = nn.ParameterList([m.weight for m in layers if isinstance(m, nn.Linear)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for w in self.weights:
                x = torch.relu(nn.functional.linear(x, w))
            return x

    module = Functional(_mlp(mb)).eval()
    size = sum(p.numel() * p.element_size() for p in module.parameters())
    return (module, torch.randn(2, 2048)), size


def from_torch_run(state: Any, workdir: str) -> None:
    import k5

    module, x = state
    model = k5.from_torch(module, (x,))
    k5.save(model, os.path.join(workdir, "model.k5"))


SCENARIOS = [
    Scenario("from_torch", "k5.from_torch + k5.save, nn.Linear layers", from_torch_setup, from_torch_run),
    Scenario(
        "from_torch_functional",
        "k5.from_torch + k5.save, weights used by F.linear",
        from_torch_functional_setup,
        from_torch_run,
    ),
]


# --- driver --------------------------------------------------------------------------------------------------------
def _child(name: str, mb: int) -> None:
    scenario = next(s for s in SCENARIOS if s.name == name)
    with tempfile.TemporaryDirectory() as workdir:
        state, size = scenario.setup(workdir, mb)
        gc.collect()
        base = _rss()
        scenario.run(state, workdir)
        peak = _peak()
    print(json.dumps({"name": name, "size": size, "base": base, "peak": peak}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="model size in MB (default 200)")
    ap.add_argument("--only", action="append", help="run only these scenarios (repeatable)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.mb)
        return
    rows = []
    for s in SCENARIOS:
        if args.only and s.name not in args.only:
            continue
        cmd = [sys.executable, os.path.abspath(__file__), "--child", s.name, "--mb", str(args.mb)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            rows.append([s.name, s.what, "-", "-", "-", f"failed: {proc.stderr.strip().splitlines()[-1:]}"])
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        extra = r["peak"] - r["base"]
        rows.append(
            [s.name, s.what, f"{r['size'] / MB:.0f}", f"{extra / MB:.0f}", f"{extra / r['size']:.2f}x",
             f"{r['base'] / MB:.0f}"]
        )  # fmt: skip
    print(markdown_table(["scenario", "what", "model MB", "peak extra MB", "extra / model", "baseline MB"], rows))


if __name__ == "__main__":
    main()
