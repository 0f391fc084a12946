"""Recurrent layers: LSTM, GRU, RNN (ONNX semantics, one layer per node).

Shapes (``layout=0``): ``X [seq, batch, input]``, ``W [dirs, gates*hidden, input]``, ``R [dirs, gates*hidden,
hidden]``, ``B [dirs, 2*gates*hidden]`` (input biases then recurrent biases), ``initial_h/initial_c [dirs, batch,
hidden]``; outputs ``Y [seq, dirs, batch, hidden]``, ``Y_h/Y_c [dirs, batch, hidden]``. ``layout=1`` swaps the
first two axes of X, initial_h/c, Y, Y_h/Y_c (batch first). ``dirs`` is 2 for ``direction="bidirectional"``.

``sequence_lens [batch]``: steps past a sequence's length leave its state unchanged and its Y rows zero; the
reverse direction reads each sequence backwards from its own last valid step. The loop runs over time steps,
vectorised over the batch; the input projections of all steps are one matmul.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from k5.errors import OpError
from k5.ops.common import compute_dtype
from k5.ops.registry import op

_Act = Callable[[np.ndarray], np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # numerically stable in both tails
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


#: name -> (uses alpha, uses beta, default alpha, default beta, f(x, alpha, beta))
_ACTIVATIONS: dict[str, tuple[bool, bool, float, float, Callable[[np.ndarray, float, float], np.ndarray]]] = {
    "relu": (False, False, 0.0, 0.0, lambda x, a, b: np.maximum(x, 0)),
    "tanh": (False, False, 0.0, 0.0, lambda x, a, b: np.tanh(x)),
    "sigmoid": (False, False, 0.0, 0.0, lambda x, a, b: _sigmoid(x)),
    "affine": (True, True, 1.0, 0.0, lambda x, a, b: a * x + b),
    "leakyrelu": (True, False, 0.01, 0.0, lambda x, a, b: np.where(x >= 0, x, a * x)),
    "thresholdedrelu": (True, False, 1.0, 0.0, lambda x, a, b: np.where(x > a, x, 0)),
    "scaledtanh": (True, True, 1.0, 1.0, lambda x, a, b: a * np.tanh(b * x)),
    "hardsigmoid": (True, True, 0.2, 0.5, lambda x, a, b: np.clip(a * x + b, 0, 1)),
    "elu": (True, False, 1.0, 0.0, lambda x, a, b: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1))),
    "softsign": (False, False, 0.0, 0.0, lambda x, a, b: x / (1 + np.abs(x))),
    "softplus": (False, False, 0.0, 0.0, lambda x, a, b: np.logaddexp(x, 0)),
}


def _bound(fn: Callable[[np.ndarray, float, float], np.ndarray], a: float, b: float) -> _Act:
    """``fn`` with its alpha and beta fixed."""

    def act(x: np.ndarray) -> np.ndarray:
        return fn(x, a, b)

    return act


def _activations(
    what: str,
    names: Sequence[str] | None,
    alphas: Sequence[float] | None,
    betas: Sequence[float] | None,
    defaults: Sequence[str],
    num_dirs: int,
) -> list[list[_Act]]:
    """Per direction, the activation functions; alpha/beta values are consumed in order by the functions that
    take them (the others use their defaults)."""
    per_dir = len(defaults)
    names = list(names) if names else list(defaults) * num_dirs
    if len(names) == per_dir and num_dirs == 2:
        names = names * 2
    if len(names) != per_dir * num_dirs:
        raise OpError(
            f"{what}: attribute 'activations' expects {per_dir * num_dirs} names ({per_dir} per direction). "
            f"Received: activations={names}"
        )
    alpha_iter, beta_iter = iter(alphas or []), iter(betas or [])
    funcs: list[_Act] = []
    for name in names:
        try:
            uses_a, uses_b, da, db, fn = _ACTIVATIONS[name.lower()]
        except KeyError:
            raise OpError(f"{what}: unknown activation {name!r} (known: {', '.join(_ACTIVATIONS)})") from None
        a = next(alpha_iter, da) if uses_a else da
        b = next(beta_iter, db) if uses_b else db
        funcs.append(_bound(fn, a, b))
    return [funcs[d * per_dir : (d + 1) * per_dir] for d in range(num_dirs)]


class _Setup:
    """Validated shapes and time-major float inputs shared by the three cells."""

    def __init__(
        self,
        what: str,
        gates: int,
        x: np.ndarray,
        w: np.ndarray,
        r: np.ndarray,
        b: np.ndarray | None,
        sequence_lens: np.ndarray | None,
        initial: Sequence[tuple[str, np.ndarray | None]],
        direction: str,
        hidden_size: int | None,
        layout: int,
    ) -> None:
        if direction not in ("forward", "reverse", "bidirectional"):
            raise OpError(
                f"{what}: attribute 'direction' expects forward, reverse or bidirectional. Received: {direction!r}"
            )
        if layout not in (0, 1):
            raise OpError(f"{what}: attribute 'layout' expects 0 or 1. Received: layout={layout}")
        self.dirs = 2 if direction == "bidirectional" else 1
        self.reverse = [direction == "reverse"] if self.dirs == 1 else [False, True]
        if x.ndim != 3:
            raise OpError(
                f"{what}: X expects rank 3 ([seq, batch, input] or [batch, seq, input]). Received: {list(x.shape)}"
            )
        self.layout = layout
        self.ct = compute_dtype(x.dtype, non_float=np.float32)
        xt = x if layout == 0 else x.transpose(1, 0, 2)
        self.T, self.B, inp = xt.shape
        H = hidden_size if hidden_size is not None else r.shape[-1]
        self.H = H
        expect: dict[str, tuple[np.ndarray, tuple[int, ...]]] = {
            "W": (w, (self.dirs, gates * H, inp)),
            "R": (r, (self.dirs, gates * H, H)),
        }
        if b is not None:
            expect["B"] = (b, (self.dirs, 2 * gates * H))
        for name, (arr, shape) in expect.items():
            if arr.shape != shape:
                raise OpError(
                    f"{what}: {name} expects shape {list(shape)} (direction={direction}, hidden_size={H}, input_size="
                    f"{inp}). Received: {list(arr.shape)}"
                )
        self.x = xt.astype(self.ct, copy=False)
        self.w = w.astype(self.ct, copy=False)
        self.r = r.astype(self.ct, copy=False)
        self.b = b.astype(self.ct, copy=False) if b is not None else np.zeros((self.dirs, 2 * gates * H), self.ct)
        if sequence_lens is not None:
            lens = np.asarray(sequence_lens).astype(np.int64).reshape(-1)
            if lens.shape != (self.B,) or (lens < 0).any() or (lens > self.T).any():
                raise OpError(
                    f"{what}: sequence_lens expects {self.B} values in [0, {self.T}]. Received: {lens.tolist()}"
                )
        else:
            lens = np.full(self.B, self.T, dtype=np.int64)
        self.lens = lens
        self.ragged = bool((lens != self.T).any())
        self.initial: list[np.ndarray] = []
        for name, value in initial:
            if value is None:
                self.initial.append(np.zeros((self.dirs, self.B, H), self.ct))
                continue
            v = value if layout == 0 else value.transpose(1, 0, 2)
            if v.shape != (self.dirs, self.B, H):
                raise OpError(
                    f"{what}: {name} expects shape {[self.dirs, self.B, H]} (layout={layout}). Received: "
                    f"{list(value.shape)}"
                )
            self.initial.append(v.astype(self.ct, copy=False))
        self.dtype = x.dtype

    def order(self, d: int) -> np.ndarray:
        """Time index per (step, batch) that direction ``d`` reads at each step (an involution per sequence)."""
        t = np.arange(self.T)[:, None]
        if not self.reverse[d]:
            return np.broadcast_to(t, (self.T, self.B))
        rev = self.lens[None, :] - 1 - t
        return np.where(t < self.lens[None, :], rev, t)

    def steps(self, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(read order [T, B], validity [T, B, 1], input projections ``X W^T + Wb`` in step order [T, B, G*H])."""
        idx = self.order(d)
        valid = (np.arange(self.T)[:, None] < self.lens[None, :])[..., None]
        xs = self.x[idx, np.arange(self.B)[None, :]] if self.reverse[d] else self.x
        gates = self.w.shape[1]
        proj = np.matmul(xs, self.w[d].T) + self.b[d, :gates]
        return idx, valid, proj

    def outputs(self, ys: list[np.ndarray], finals: list[list[np.ndarray]]) -> tuple[np.ndarray, ...]:
        """Y from per-direction step-ordered outputs [T, B, H]; Y_h (and Y_c) from the final states."""
        cols = []
        for d, y in enumerate(ys):
            if self.reverse[d]:
                y = y[self.order(d), np.arange(self.B)[None, :]]
            cols.append(y)
        y = np.stack(cols, axis=1)  # [T, dirs, B, H]
        states = [np.stack(f, axis=0) for f in finals]  # each [dirs, B, H]
        if self.layout == 1:
            y = y.transpose(2, 0, 1, 3)
            states = [s.transpose(1, 0, 2) for s in states]
        return tuple(np.ascontiguousarray(a, dtype=self.dtype) for a in (y, *states))


def _clip(v: np.ndarray, clip: float | None) -> np.ndarray:
    return v if clip is None else np.clip(v, -clip, clip)


@op(
    "LSTM",
    inputs=["X", "@W", "@R", "@B?", "sequence_lens?", "initial_h?", "initial_c?", "@P?"],
    outputs=["Y?", "Y_h?", "Y_c?"],
)
def lstm(
    x: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None,
    sequence_lens: np.ndarray | None,
    initial_h: np.ndarray | None,
    initial_c: np.ndarray | None,
    p: np.ndarray | None,
    *,
    activation_alpha: list[float] | None = None,
    activation_beta: list[float] | None = None,
    activations: list[str] | None = None,
    clip: float | None = None,
    direction: str = "forward",
    hidden_size: int | None = None,
    input_forget: int = 0,
    layout: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Long short-term memory, ONNX gate order ``i, o, f, c`` in W, R and B; peepholes ``P [dirs, 3*hidden]``
    (``i, o, f``). Per step (f, g, h = activations, default Sigmoid, Tanh, Tanh)::

        i = f(Xt Wi' + Ht-1 Ri' + Pi*Ct-1 + Wbi + Rbi)      f = f(... forget ... + Pf*Ct-1)
        c = g(Xt Wc' + Ht-1 Rc' + Wbc + Rbc)                 Ct = f*Ct-1 + i*c
        o = f(Xt Wo' + Ht-1 Ro' + Po*Ct + Wbo + Rbo)          Ht = o*h(Ct)

    ``clip`` bounds the gate pre-activations; ``input_forget=1`` couples the gates (``f = 1 - i``).
    """
    what = "LSTM"
    s = _Setup(what, 4, x, w, r, b, sequence_lens, [("initial_h", initial_h), ("initial_c", initial_c)], direction,
               hidden_size, layout)  # fmt: skip
    H = s.H
    if p is not None and p.shape != (s.dirs, 3 * H):
        raise OpError(f"{what}: P expects shape {[s.dirs, 3 * H]}. Received: {list(p.shape)}")
    peep = p.astype(s.ct, copy=False) if p is not None else None
    acts = _activations(what, activations, activation_alpha, activation_beta, ["Sigmoid", "Tanh", "Tanh"], s.dirs)
    ys, hs, cs = [], [], []
    for d in range(s.dirs):
        f_act, g_act, h_act = acts[d]
        _, valid, proj = s.steps(d)
        rt = s.r[d].T
        rb = s.b[d, 4 * H :]
        h, c = s.initial[0][d], s.initial[1][d]
        y = np.zeros((s.T, s.B, H), s.ct)
        for t in range(s.T):
            g = proj[t] + h @ rt + rb
            gi, go, gf, gc = g[:, :H], g[:, H : 2 * H], g[:, 2 * H : 3 * H], g[:, 3 * H :]
            if peep is not None:
                gi = gi + peep[d, :H] * c
                gf = gf + peep[d, 2 * H :] * c
            i_gate = f_act(_clip(gi, clip))
            f_gate = 1 - i_gate if input_forget else f_act(_clip(gf, clip))
            c_new = f_gate * c + i_gate * g_act(_clip(gc, clip))
            if peep is not None:
                go = go + peep[d, H : 2 * H] * c_new
            h_new = f_act(_clip(go, clip)) * h_act(c_new)
            if s.ragged:
                h_new = np.where(valid[t], h_new, h)
                c_new = np.where(valid[t], c_new, c)
                y[t] = np.where(valid[t], h_new, 0)
            else:
                y[t] = h_new
            h, c = h_new, c_new
        ys.append(y)
        hs.append(h)
        cs.append(c)
    return s.outputs(ys, [hs, cs])  # type: ignore[return-value]


@op("GRU", inputs=["X", "@W", "@R", "@B?", "sequence_lens?", "initial_h?"], outputs=["Y?", "Y_h?"])
def gru(
    x: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None,
    sequence_lens: np.ndarray | None,
    initial_h: np.ndarray | None,
    *,
    activation_alpha: list[float] | None = None,
    activation_beta: list[float] | None = None,
    activations: list[str] | None = None,
    clip: float | None = None,
    direction: str = "forward",
    hidden_size: int | None = None,
    layout: int = 0,
    linear_before_reset: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Gated recurrent unit, ONNX gate order ``z, r, h``. Per step (f, g = activations, default Sigmoid, Tanh)::

    z = f(Xt Wz' + Ht-1 Rz' + Wbz + Rbz)      r = f(Xt Wr' + Ht-1 Rr' + Wbr + Rbr)
    h = g(Xt Wh' + (r*Ht-1) Rh' + Rbh + Wbh)        if linear_before_reset == 0
    h = g(Xt Wh' + r*(Ht-1 Rh' + Rbh) + Wbh)        otherwise (PyTorch's GRU)
    Ht = (1 - z)*h + z*Ht-1
    """
    what = "GRU"
    s = _Setup(what, 3, x, w, r, b, sequence_lens, [("initial_h", initial_h)], direction, hidden_size, layout)
    H = s.H
    acts = _activations(what, activations, activation_alpha, activation_beta, ["Sigmoid", "Tanh"], s.dirs)
    ys, hs = [], []
    for d in range(s.dirs):
        f_act, g_act = acts[d]
        _, valid, proj = s.steps(d)
        r_zr, r_h = s.r[d, : 2 * H].T, s.r[d, 2 * H :].T
        rb_zr, rb_h = s.b[d, 3 * H : 5 * H], s.b[d, 5 * H :]
        h = s.initial[0][d]
        y = np.zeros((s.T, s.B, H), s.ct)
        for t in range(s.T):
            zr = proj[t, :, : 2 * H] + h @ r_zr + rb_zr
            z = f_act(_clip(zr[:, :H], clip))
            rg = f_act(_clip(zr[:, H:], clip))
            if linear_before_reset:
                gh = proj[t, :, 2 * H :] + rg * (h @ r_h + rb_h)
            else:
                gh = proj[t, :, 2 * H :] + (rg * h) @ r_h + rb_h
            h_new = (1 - z) * g_act(_clip(gh, clip)) + z * h
            if s.ragged:
                h_new = np.where(valid[t], h_new, h)
                y[t] = np.where(valid[t], h_new, 0)
            else:
                y[t] = h_new
            h = h_new
        ys.append(y)
        hs.append(h)
    return s.outputs(ys, [hs])  # type: ignore[return-value]


@op("RNN", inputs=["X", "@W", "@R", "@B?", "sequence_lens?", "initial_h?"], outputs=["Y?", "Y_h?"])
def rnn(
    x: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None,
    sequence_lens: np.ndarray | None,
    initial_h: np.ndarray | None,
    *,
    activation_alpha: list[float] | None = None,
    activation_beta: list[float] | None = None,
    activations: list[str] | None = None,
    clip: float | None = None,
    direction: str = "forward",
    hidden_size: int | None = None,
    layout: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Elman RNN: ``Ht = f(Xt Wi' + Ht-1 Ri' + Wbi + Rbi)``, f = activation (default Tanh)."""
    what = "RNN"
    s = _Setup(what, 1, x, w, r, b, sequence_lens, [("initial_h", initial_h)], direction, hidden_size, layout)
    H = s.H
    acts = _activations(what, activations, activation_alpha, activation_beta, ["Tanh"], s.dirs)
    ys, hs = [], []
    for d in range(s.dirs):
        (f_act,) = acts[d]
        _, valid, proj = s.steps(d)
        rt, rb = s.r[d].T, s.b[d, H:]
        h = s.initial[0][d]
        y = np.zeros((s.T, s.B, H), s.ct)
        for t in range(s.T):
            h_new = f_act(_clip(proj[t] + h @ rt + rb, clip))
            if s.ragged:
                h_new = np.where(valid[t], h_new, h)
                y[t] = np.where(valid[t], h_new, 0)
            else:
                y[t] = h_new
            h = h_new
        ys.append(y)
        hs.append(h)
    return s.outputs(ys, [hs])  # type: ignore[return-value]
