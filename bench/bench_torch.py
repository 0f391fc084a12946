"""PyTorch converter benchmark, one command, side-by-side tables.

    python bench/bench_torch.py            # ResNet-50-sized model: export and load timings
    python bench/bench_torch.py --zoo      # also: max abs diff of every zoo model on every path

Export: ``k5.from_torch`` + ``k5.save`` against ``torch.onnx.export`` (TorchScript exporter: the dynamo exporter
needs onnxscript) of the same model, in the same run. Load: ``k5.load`` + ``k5.to_torch`` against ``torch.load`` of
a state dict (alone, and followed by building the model and ``load_state_dict``). Medians over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import warnings
from typing import Any

from _common import timed


def resnet50() -> Any:
    """A ResNet-50 (bottleneck blocks 3-4-6-3, 25.6 M parameters) built in code: no torchvision needed."""
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, width: int, stride: int) -> None:
            super().__init__()
            cout = width * 4
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x: Any) -> Any:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            return self.relu(self.bn3(self.conv3(out)) + identity)

    class ResNet50(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = 64
            for i, (width, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], 1):
                layers = []
                for b in range(blocks):
                    layers.append(Bottleneck(cin, width, stride if b == 0 else 1))
                    cin = width * 4
                setattr(self, f"layer{i}", nn.Sequential(*layers))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(2048, 1000)

        def forward(self, x: Any) -> Any:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet50


def _table(title: str, rows: list[tuple[str, float]], base: float) -> None:
    print(f"\n{title}")
    print(f"| {'what':<58} | {'median s':>9} | {'vs first':>8} |")
    print(f"|{'-' * 60}|{'-' * 11}|{'-' * 10}|")
    for what, t in rows:
        print(f"| {what:<58} | {t:>9.3f} | {t / base:>7.2f}x |")


def bench_resnet(repeat: int, workdir: str) -> None:
    import torch

    import k5

    torch.manual_seed(0)
    cls = resnet50()
    model = cls().eval()
    x = torch.randn(1, 3, 224, 224)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"ResNet-50 built in code: {n_params / 1e6:.1f} M parameters, input {list(x.shape)}")
    k5_path = os.path.join(workdir, "resnet50.k5")
    onnx_buf = io.BytesIO()
    sd_path = os.path.join(workdir, "resnet50.pt")

    def k5_export() -> None:
        k5.save(k5.from_torch(model, (x,)), k5_path)

    def onnx_export() -> None:
        onnx_buf.seek(0)
        onnx_buf.truncate()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), onnx_buf, dynamo=False)

    def k5_export_only() -> None:
        k5.from_torch(model, (x,), validation=False)

    rows = [
        ("k5.from_torch + k5.save", timed(k5_export, repeat)),
        ("  of which k5.from_torch (no validation pair)", timed(k5_export_only, repeat)),
        ("torch.onnx.export (TorchScript exporter, in memory)", timed(onnx_export, repeat)),
    ]
    _table("Export (same model, same run)", rows, rows[0][1])
    print(f"file sizes: k5 {os.path.getsize(k5_path) / 1e6:.1f} MB, onnx {len(onnx_buf.getvalue()) / 1e6:.1f} MB")

    torch.save(model.state_dict(), sd_path)
    ref = model(x)

    def k5_load() -> Any:
        with k5.load(k5_path) as m:
            return k5.to_torch(m)

    def torch_load_sd() -> Any:
        return torch.load(sd_path, weights_only=True)

    def torch_load_into_model() -> Any:
        m = cls()
        m.load_state_dict(torch.load(sd_path, weights_only=True))
        return m.eval()

    def torch_load_into_meta_model() -> Any:
        with torch.device("meta"):
            m = cls()
        m.load_state_dict(torch.load(sd_path, weights_only=True), assign=True)
        return m.eval()

    rows = [
        ("k5.load + k5.to_torch (module ready to run)", timed(k5_load, repeat)),
        ("torch.load(state_dict, weights_only=True) only", timed(torch_load_sd, repeat)),
        ("build ResNet50() + torch.load + load_state_dict", timed(torch_load_into_model, repeat)),
        ("build on meta + torch.load + load_state_dict(assign=True)", timed(torch_load_into_meta_model, repeat)),
    ]
    _table("Load into a runnable torch module", rows, rows[0][1])
    with torch.no_grad():
        diff = float((k5_load()(x) - ref).abs().max())
    print(f"check: k5 -> torch output vs original, max abs diff {diff:.2e}")


def bench_zoo() -> None:
    """Max abs diff of every zoo model on every path (the numbers for the issue's closing note)."""
    import numpy as np
    import torch

    import k5

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "convert", "torch"))
    from torch_zoo import ZOO, build

    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - optional
        ort = None
    print("\nZoo: max abs diff against the original module (float32)")
    print(f"| {'model':<20} | {'torch->k5->file->torch':>22} | {'k5 runtime':>10} | {'onnxruntime':>11} |")
    print(f"|{'-' * 22}|{'-' * 24}|{'-' * 12}|{'-' * 13}|")
    with tempfile.TemporaryDirectory() as d:
        for name in sorted(ZOO):
            module, inputs = build(name)
            model = k5.from_torch(module, inputs)
            with torch.no_grad():
                ref = [t.numpy() for t in torch.utils._pytree.tree_leaves(module(*inputs))]
            path = os.path.join(d, f"{name}.k5")
            k5.save(model, path)
            with k5.load(path) as loaded, torch.no_grad():
                out = k5.to_torch(loaded)(*inputs)
            outs = [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]
            d_torch = max(float(np.abs(a - b).max()) for a, b in zip(outs, ref, strict=True))
            run = k5.run(model, [x.numpy() for x in inputs])
            d_run = max(float(np.abs(run[o.name] - r).max()) for o, r in zip(model.graph.outputs, ref, strict=True))
            d_onnx = float("nan")
            if ort is not None:
                sess = ort.InferenceSession(k5.to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
                feeds = {t.name: x.numpy() for t, x in zip(model.graph.inputs, inputs, strict=True)}
                d_onnx = max(float(np.abs(a - b).max()) for a, b in zip(sess.run(None, feeds), ref, strict=True))
            print(f"| {name:<20} | {d_torch:>22.2e} | {d_run:>10.2e} | {d_onnx:>11.2e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--zoo", action="store_true", help="also print the zoo's per-path max abs diffs")
    parser.add_argument("--no-resnet", action="store_true", help="skip the ResNet-50 timings")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if not args.no_resnet:
        with tempfile.TemporaryDirectory() as d:
            bench_resnet(args.repeat, d)
    if args.zoo:
        bench_zoo()


if __name__ == "__main__":
    main()
