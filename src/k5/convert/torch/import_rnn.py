"""to_torch builders of the recurrent layers (LSTM, GRU, RNN), with the folding of k5's one-layer chains back into
multi-layer PyTorch modules.
"""

from __future__ import annotations

from typing import Any

from k5.convert.torch.import_context import Attrs, Builder, Unavailable, meta_module, unsupported
from k5.convert.torch.import_runtime import k5_layer_state, k5_rnn, k5_rnn_folded
from k5.convert.torch.registry import register_builder
from k5.format.model import Node

__all__: list[str] = []


_GATES_BACK = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}  # ONNX order -> PyTorch chunks


def _torch_rnn_state(kind: str, w: dict[str, Any], layer: int, n_dir: int, hidden: int) -> dict[str, Any]:
    import torch

    order = _GATES_BACK[kind]
    state: dict[str, Any] = {}
    for d in range(n_dir):
        sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")

        def back(t: Any) -> Any:
            chunks = t.split(hidden, dim=0)
            return torch.cat([chunks[i] for i in order], dim=0).contiguous()

        state["weight_ih" + sfx] = back(w["W"][d])
        state["weight_hh" + sfx] = back(w["R"][d])
        if w.get("B") is not None:
            g = len(order) * hidden
            state["bias_ih" + sfx] = back(w["B"][d][:g])
            state["bias_hh" + sfx] = back(w["B"][d][g:])
    return state


def _rnn_config(node: Node, attrs: Attrs) -> tuple[int, str]:
    """(number of directions, activation) of a recurrent node; refuses what PyTorch's layers cannot run."""
    direction = attrs["direction"]
    if direction == "reverse":
        raise unsupported(node, "direction='reverse'")
    if attrs["clip"] is not None or attrs.get("input_forget"):  # input_forget: LSTM only
        raise unsupported(node, "clip / input_forget")
    if node.op == "GRU" and attrs["linear_before_reset"] != 1:
        raise unsupported(node, "GRU with linear_before_reset=0 (PyTorch's GRU applies the reset after)")
    act = "tanh"
    given = attrs["activations"]
    if node.op == "RNN":
        acts = [s.lower() for s in (given or ["Tanh"])]  # absent: ONNX's per-op default
        if len(set(acts)) != 1 or acts[0] not in ("tanh", "relu"):
            raise unsupported(node, f"RNN activations {acts}")
        act = acts[0]
    elif given:
        defaults = {"LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"]}[node.op]
        if [s.lower() for s in given] not in (defaults, defaults * 2):
            raise unsupported(node, f"{node.op} activations {given}")
    return 2 if direction == "bidirectional" else 1, act


_RNN_WEIGHTS = [("W", 1, True), ("R", 2, True), ("B", 3, False)]


@register_builder("LSTM", "GRU", "RNN", how="nn.LSTM / nn.GRU / nn.RNN")
def rnn(b: Builder, node: Node, ins: list[Any], attrs: Attrs) -> Any:
    import torch

    n_dir, act = _rnn_config(node, attrs)
    layout = attrs["layout"]
    if len(ins) > 4 and ins[4] is not None:
        raise unsupported(node, f"{node.op} with sequence_lens")
    w = b.owns(node, ins, _RNN_WEIGHTS + ([("P", 7, False)] if node.op == "LSTM" else []))
    if w is None:
        raise unsupported(node, f"{node.op} with run-time weights")
    if w.get("P") is not None:
        raise unsupported(node, "LSTM with peepholes (P)")
    hidden: int = attrs["hidden_size"] if attrs["hidden_size"] is not None else w["R"].shape[-1]  # R: [D, G*H, H]
    chain = _rnn_chain(b, node, n_dir) if node.id.endswith(".l0") else [node]
    layers = [w]
    for nd in chain[1:]:
        wk = b.owns(nd, [b.env.get(i) if i else None for i in nd.inputs], _RNN_WEIGHTS)
        if wk is None:
            raise unsupported(nd, f"{nd.op} with run-time weights")
        layers.append(wk)
    state: dict[str, Any] = {}
    for i, wk in enumerate(layers):
        state.update(_torch_rnn_state(node.op, wk, i, n_dir, hidden))
    dt = w["W"].dtype
    in_size = w["W"].shape[2]
    cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN": torch.nn.RNN}[node.op]
    kwargs: dict[str, Any] = dict(
        num_layers=len(chain), bias=w.get("B") is not None, batch_first=bool(layout), bidirectional=n_dir == 2, dtype=dt
    )
    if node.op == "RNN":
        kwargs["nonlinearity"] = act
    if not kwargs["bias"]:
        state = {k: v for k, v in state.items() if not k.startswith("bias")}
    m = meta_module(lambda: cls(in_size, hidden, **kwargs), state)
    m.flatten_parameters()
    path = node.id[: -len(".l0")] if len(chain) > 1 else node.id
    where = b.place(path, m, "module")
    mod = b.graph.get_attr(where)
    if len(chain) == 1:
        h0 = ins[5] if len(ins) > 5 else None
        c0 = ins[6] if len(ins) > 6 and node.op == "LSTM" else None
        out = b.call(k5_rnn, mod, ins[0], h0, c0, layout, n_dir, node.op)
        return [b.item(out, 0), b.item(out, 1), b.item(out, 2)]
    return _rnn_chain_outputs(b, chain, mod, ins, layout, n_dir)


def _rnn_chain(b: Builder, first: Node, n_dir: int) -> list[Node]:
    """The layers ``<m>.l0, <m>.l1, ...`` of a multi-layer module exported by k5 (see :mod:`.export_modules`)
    when they form exactly the pattern the exporter writes; else just ``[first]``."""
    graph = b.model.graph
    base = first.id[: -len(".l0")]
    nodes = {n.id: n for n in graph.nodes}
    producers = {o: n for n in graph.nodes for o in n.outputs if o}
    consumers: dict[str, list[Node]] = {}
    for n in graph.nodes:
        for inp in n.inputs:
            if inp:
                consumers.setdefault(inp, []).append(n)
    graph_outputs = {o.name for o in graph.outputs}
    chain = [first]
    while f"{base}.l{len(chain)}" in nodes:
        nxt = nodes[f"{base}.l{len(chain)}"]
        prev = chain[-1]
        if nxt.op != first.op or nxt.attrs != first.attrs or any(x for x in nxt.inputs[1:5]):
            return [first]
        path: list[Node] = []  # the glue from prev's Y to nxt's input
        src = producers.get(nxt.inputs[0])
        while src is not None and src is not prev and src.op in ("Transpose", "Reshape", "Squeeze") and len(path) < 3:
            path.append(src)
            src = producers.get(src.inputs[0])
        if src is not prev or not path or path[-1].inputs[0] != prev.outputs[0]:
            return [first]
        allowed = {id(n) for n in path} | {id(nxt)}
        for name in [prev.outputs[0], *(p.outputs[0] for p in path)]:
            if name in graph_outputs or any(id(c) not in allowed for c in consumers.get(name, [])):
                return [first]
        chain.append(nxt)
    if len(chain) == 1:
        return chain
    for j in (5, 6):  # initial states: absent everywhere, or layer i's slice [i*D, (i+1)*D) of one tensor
        given = [n.inputs[j] if j < len(n.inputs) else "" for n in chain]
        if not any(given):
            continue
        if not all(given):
            return [first]
        sources = set()
        for i, name in enumerate(given):
            src = producers.get(name)
            if src is not None and src.op == "Transpose":
                src = producers.get(src.inputs[0])
            if src is None or src.op != "Slice" or len(src.inputs) < 4:
                return [first]
            starts, ends, axes = (_constant_list(producers.get(x)) for x in src.inputs[1:4])
            if starts != [i * n_dir] or ends != [(i + 1) * n_dir] or axes not in ([0], [-3]):
                return [first]
            sources.add(src.inputs[0])
        if len(sources) != 1:
            return [first]
    return chain


def _constant_list(node: Node | None) -> list[int] | None:
    """The value of a ``Constant`` node as a list of ints (None if the producer is something else)."""
    if node is None or node.op != "Constant" or "value" not in node.weights:
        return None
    from k5.format.model import as_array

    return [int(v) for v in as_array(node.weights["value"]).reshape(-1).tolist()]


def _state_source(b: Builder, node: Node, j: int) -> Any:
    """The full [L*D, B, H] state tensor that the exporter sliced for ``node``'s input ``j`` (or None)."""
    name = node.inputs[j] if j < len(node.inputs) else ""
    if not name:
        return None
    producers = {o: n for n in b.model.graph.nodes for o in n.outputs if o}
    src = producers[name]
    if src.op == "Transpose":
        src = producers[src.inputs[0]]
    return b.env[src.inputs[0]]


def _rnn_chain_outputs(b: Builder, chain: list[Node], mod: Any, ins: list[Any], layout: int, n_dir: int) -> Any:
    """Run the folded module and bind every per-layer output (Y_h, Y_c; Y of the last layer) of the chain."""
    kind = chain[0].op
    h0 = _state_source(b, chain[0], 5)
    c0 = _state_source(b, chain[0], 6) if kind == "LSTM" else None
    out = b.call(k5_rnn_folded, mod, ins[0], h0, c0, layout, n_dir, kind)
    y, h, c = b.item(out, 0), b.item(out, 1), b.item(out, 2)
    last = len(chain) - 1
    for i, nd in enumerate(chain):
        b.skip.add(nd.id)
        values = [
            y if i == last else Unavailable(),
            b.call(k5_layer_state, h, i, n_dir, layout),
            b.call(k5_layer_state, c, i, n_dir, layout) if kind == "LSTM" else None,
        ]
        for name, v in zip(nd.outputs, values, strict=False):
            if name:
                b.env[name] = v
    return [b.env.get(o) if o else None for o in chain[0].outputs]
