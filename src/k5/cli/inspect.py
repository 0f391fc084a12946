"""``k5 inspect FILE``: metadata, inputs and outputs, a per-node table (op, output shapes, parameters), totals."""

from __future__ import annotations

import argparse
import json
import math
import os
from typing import Any

from k5.cli._common import fmt_bytes, fmt_shape, table
from k5.format.model import Graph, Model, TensorInfo, weight_dtype, weight_shape
from k5.ops import infer_dtypes, qualname

__all__ = ["add_parser", "run", "summarize"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("inspect", help="show a k5 file's metadata, inputs/outputs and per-node table")
    p.add_argument("file", help="a .k5 file")
    p.add_argument("--json", action="store_true", help="print one JSON document (for machines)")
    p.add_argument(
        "--run-shapes",
        action="store_true",
        help="learn every output shape by running the model on its validation input (reference runtime)",
    )
    return p


def _info(t: TensorInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name, "dtype": t.dtype, "shape": t.shape}
    if t.kind != "tensor":
        out["kind"] = t.kind
    return out


def _node_rows(
    graph: Graph, shapes: dict[str, Any], prefix: str = "", dtypes: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    known = graph.infos()
    if dtypes is None:  # declared, else by each op's output dtype rule in the registry
        dtypes = infer_dtypes(graph)
    rows = []
    for node in graph.nodes:
        params = 0
        nbytes = 0
        weights = {}
        for name, value in node.weights.items():
            shape = weight_shape(value)
            n = math.prod(shape)
            dtype = weight_dtype(value)
            from k5.format.dtypes import dtype_of

            params += n
            nbytes += n * dtype_of(dtype).itemsize
            weights[name] = {"dtype": dtype, "shape": list(shape)}
        outputs = []
        for name in node.outputs:
            if not name:
                continue
            if name in shapes:
                outputs.append({"name": name, "dtype": shapes[name][0], "shape": shapes[name][1]})
            elif name in known:
                outputs.append({"name": name, "dtype": dtypes.get(name), "shape": known[name].shape})
            else:
                outputs.append({"name": name, "dtype": dtypes.get(name), "shape": None})
        op = qualname(node.op, node.domain)
        rows.append(
            {"id": prefix + node.id, "op": op, "inputs": list(node.inputs), "outputs": outputs, "weights": weights,
             "parameters": params, "bytes": nbytes}
        )  # fmt: skip
        for attr, sub in node.subgraphs():
            rows.extend(_node_rows(sub, shapes, f"{prefix}{node.id}/{attr}/", dtypes))
    return rows


def _run_shapes(model: Model) -> tuple[dict[str, Any], str | None]:
    """name -> (dtype, shape) of every value computed on the validation input; or a reason it could not run."""
    if model.validation is None or not model.validation.inputs:
        return {}, "the file has no validation input to run"
    import numpy as np

    from k5.errors import K5Error
    from k5.format.dtypes import from_numpy
    from k5.runtime import run as run_model

    try:
        env = run_model(model, {k: np.asarray(v) for k, v in model.validation.inputs.items()}, intermediate=True)
    except K5Error as e:
        return {}, str(e)
    out = {}
    for name, value in env.items():
        if isinstance(value, np.ndarray):
            out[name] = (from_numpy(value.dtype), list(value.shape))
    return out, None


def summarize(model: Model, path: str, *, run_shapes: bool = False) -> dict[str, Any]:
    """Everything ``k5 inspect`` shows, as a JSON-ready dict."""
    shapes, shape_note = _run_shapes(model) if run_shapes else ({}, None)
    rows = _node_rows(model.graph, shapes)
    meta = model.metadata
    summary: dict[str, Any] = {
        "file": path,
        "run_shapes": run_shapes,
        "file_bytes": os.path.getsize(path) if os.path.exists(path) else None,
        "opset": dict(model.opset),
        "metadata": {k: getattr(meta, k) for k in ("author", "description", "license", "producer", "created")}
        | {"extra": dict(meta.extra)},
        "inputs": [_info(t) for t in model.graph.inputs],
        "outputs": [_info(t) for t in model.graph.outputs],
        "nodes": rows,
        "totals": {
            "nodes": len(rows),
            "weights": sum(len(r["weights"]) for r in rows),
            "parameters": sum(r["parameters"] for r in rows),
            "bytes": sum(r["bytes"] for r in rows),
        },
    }
    if shape_note:
        summary["run_shapes_error"] = shape_note
    if model.validation is not None:
        pair = model.validation
        summary["validation"] = {
            "inputs": {k: {"dtype": weight_dtype(v), "shape": list(weight_shape(v))} for k, v in pair.inputs.items()},
            "outputs": {k: {"dtype": weight_dtype(v), "shape": list(weight_shape(v))} for k, v in pair.outputs.items()},
            "rtol": pair.rtol,
            "atol": pair.atol,
        }
    for split_name in ("training", "evaluate"):
        split = getattr(model, split_name)
        if split is not None:
            summary[split_name] = {
                part: {"dtype": weight_dtype(v), "shape": list(weight_shape(v))}
                for part in ("data", "labels")
                if (v := getattr(split, part)) is not None
            }
    return summary


def _text(s: dict[str, Any]) -> str:
    lines = [f"file: {s['file']} ({fmt_bytes(s['file_bytes'] or 0)})"]
    lines.append("opset: " + ", ".join(f"{d} v{v}" for d, v in s["opset"].items()))
    m = s["metadata"]
    for key in ("producer", "created", "author", "description", "license"):
        if m[key]:
            lines.append(f"{key}: {m[key]}")
    for key, value in m["extra"].items():
        lines.append(f"metadata {key}: {value}")
    for part in ("inputs", "outputs"):
        lines.append(f"{part}:")
        for t in s[part]:
            kind = f" ({t['kind']})" if "kind" in t else ""
            lines.append(f"  {t['name']}  {t['dtype'] or '?'}{fmt_shape(t['shape'])}{kind}")
    rows = []
    for r in s["nodes"]:
        outs = ", ".join(f"{o['name']}: {o['dtype'] or '?'}{fmt_shape(o['shape'])}" for o in r["outputs"]) or "-"
        rows.append([r["id"], r["op"], outs, f"{r['parameters']:,}" if r["weights"] else "-",
                     fmt_bytes(r["bytes"]) if r["weights"] else "-"])  # fmt: skip
    lines.append("")
    lines.append(table(["node", "op", "outputs", "params", "bytes"], rows, right=(3, 4)))
    t = s["totals"]
    lines.append("")
    lines.append(
        f"total: {t['nodes']} nodes, {t['weights']} weights, {t['parameters']:,} parameters, {fmt_bytes(t['bytes'])}"
    )
    if "run_shapes_error" in s:
        lines.append(f"(output shapes not run: {s['run_shapes_error']})")
    elif not s["run_shapes"] and any(o["shape"] is None for r in s["nodes"] for o in r["outputs"]):
        lines.append("(?: not declared in the file; --run-shapes fills them in by running the validation input)")
    if "validation" in s:
        v = s["validation"]
        ins = ", ".join(f"{k} {d['dtype']}{fmt_shape(d['shape'])}" for k, d in v["inputs"].items())
        outs = ", ".join(f"{k} {d['dtype']}{fmt_shape(d['shape'])}" for k, d in v["outputs"].items())
        tol = f"rtol={v['rtol']:g} atol={v['atol']:g}"
        lines.append(f"validation pair: inputs {ins or '-'}; outputs {outs or '-'}; {tol}")
    for split_name in ("training", "evaluate"):
        if split_name in s:
            parts = ", ".join(f"{k} {d['dtype']}{fmt_shape(d['shape'])}" for k, d in s[split_name].items())
            lines.append(f"{split_name}: {parts or 'empty'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from k5.format.hdf5 import load

    with load(args.file, check=False) as model:
        summary = summarize(model, args.file, run_shapes=args.run_shapes)
    print(json.dumps(summary, indent=2, ensure_ascii=False) if args.json else _text(summary))
    return 0
