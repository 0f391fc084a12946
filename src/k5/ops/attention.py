"""Attention: MultiHeadAttention (a layer with projections), ONNX Attention, rotary embeddings.

Scores and softmax of half-precision inputs are computed in float32; a query row whose keys are all masked out
yields a zero output row (never NaN).
"""

from __future__ import annotations

import numpy as np

from k5.errors import OpError
from k5.ops.common import compute_dtype
from k5.ops.registry import op


def _masked_softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis; rows that are entirely -inf give zeros instead of NaN."""
    m = np.max(scores, axis=-1, keepdims=True)
    dead = ~np.isfinite(m) & (m < 0) if m.size else m.astype(bool)
    m = np.where(dead, 0, m)
    e = np.exp(scores - m)
    s = np.sum(e, axis=-1, keepdims=True)
    return np.where(dead, 0, e / np.where(s == 0, 1, s))


def _bias_from_mask(what: str, mask: np.ndarray, ct: np.dtype, true_means_keep: bool) -> np.ndarray:
    if mask.dtype == np.bool_:
        keep = mask if true_means_keep else ~mask
        return np.where(keep, ct.type(0), ct.type(-np.inf))
    if mask.dtype.kind != "f" and "float" not in mask.dtype.name:
        raise OpError(f"{what}: attn_mask must be bool or float. Received: dtype {mask.dtype}")
    return mask.astype(ct)


# --- ONNX Attention -----------------------------------------------------------------------------------------------
_SOFTMAX_PRECISION = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}


def _softmax_dtypes(precision: int | None, ct: np.dtype) -> tuple[np.dtype, np.dtype | None]:
    """(dtype the softmax is computed in, dtype its result is rounded through or None)."""
    if precision is None:
        return ct, None
    name = _SOFTMAX_PRECISION.get(precision)
    if name is None:
        raise OpError(f"Attention: attribute 'softmax_precision' expects 1, 10, 11 or 16. Received: {precision}")
    if name == "float64":
        return np.dtype(np.float64), None
    if name == "float32":
        return np.dtype(np.float32), None
    from k5.format.dtypes import dtype_of

    return np.dtype(np.float32), dtype_of(name).numpy


def _to_heads(what: str, name: str, x: np.ndarray, heads: int | None) -> np.ndarray:
    """3-D ``[B, S, heads*D]`` -> ``[B, heads, S, D]``; 4-D passes through."""
    if x.ndim == 4:
        return x
    if x.ndim != 3:
        raise OpError(f"{what}: {name} expects a 3-D or 4-D tensor. Received: shape {list(x.shape)}")
    if not heads or x.shape[2] % heads:
        raise OpError(
            f"{what}: 3-D {name} {list(x.shape)} needs the attribute q_num_heads/kv_num_heads dividing its last axis. "
            f"Received: {heads}"
        )
    b, s, hid = x.shape
    return x.reshape(b, s, heads, hid // heads).transpose(0, 2, 1, 3)


@op(
    "Attention",
    inputs=["Q", "K", "V", "attn_mask?", "past_key?", "past_value?", "nonpad_kv_seqlen?"],
    outputs=["Y", "present_key?", "present_value?", "qk_matmul_output?"],
)
def attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    attn_mask: np.ndarray | None,
    past_key: np.ndarray | None,
    past_value: np.ndarray | None,
    nonpad_kv_seqlen: np.ndarray | None,
    *,
    is_causal: int = 0,
    kv_num_heads: int | None = None,
    left_window_size: int = -1,
    q_num_heads: int | None = None,
    qk_matmul_output_mode: int = 0,
    right_window_size: int = -1,
    scale: float | None = None,
    softcap: float = 0.0,
    softmax_precision: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
    """Scaled dot-product attention, ONNX opset 25 semantics (MHA, GQA, MQA; KV cache; windows).

    Q ``[B, Hq, Sq, D]`` (or 3-D ``[B, Sq, Hq*D]`` with ``q_num_heads``), K ``[B, Hkv, Skv, D]``, V ``[B, Hkv,
    Skv, Dv]``; ``Hq`` a multiple of ``Hkv`` (query head h reads kv head ``h // (Hq/Hkv)``). ``past_key/value``
    are concatenated before K/V along the sequence axis (outputs ``present_key/value``). Scores ``scale * Q K^T``
    (default scale ``1/sqrt(D)``), then ``softcap * tanh(scores/softcap)`` if softcap > 0, then the bias: a bool
    ``attn_mask`` (True = attend) or a float one added, padded with -inf to the total key length; ``is_causal``
    (query i sees key j iff ``j <= i + offset``, offset = past length, or ``nonpad_kv_seqlen - Sq`` per batch);
    ``left/right_window_size`` (``p - left <= j <= p + right`` with ``p = offset + i``, -1 = unbounded); keys
    at or past ``nonpad_kv_seqlen[b]`` are masked. Softmax (a fully masked row gives zeros), times V.
    ``qk_matmul_output``: mode 0 the scaled QK, 1 after softcap, 2 plus the bias, 3 the probabilities.
    """
    what = "Attention"
    three_d = q.ndim == 3
    qh = _to_heads(what, "Q", q, q_num_heads)
    kh = _to_heads(what, "K", k, kv_num_heads)
    vh = _to_heads(what, "V", v, kv_num_heads)
    if (past_key is None) != (past_value is None):
        raise OpError(f"{what}: past_key and past_value must be given together")
    if past_key is not None and nonpad_kv_seqlen is not None:
        raise OpError(f"{what}: nonpad_kv_seqlen cannot be combined with past_key/past_value")
    past_len = 0
    if past_key is not None:
        assert past_value is not None
        past_len = past_key.shape[2]
        kh = np.concatenate([past_key, kh.astype(past_key.dtype, copy=False)], axis=2)
        vh = np.concatenate([past_value, vh.astype(past_value.dtype, copy=False)], axis=2)
    present_k, present_v = kh, vh
    B, Hq, Sq, D = qh.shape
    Hkv, T = kh.shape[1], kh.shape[2]
    if kh.shape[0] != B or vh.shape[:3] != (B, Hkv, T) or kh.shape[3] != D or Hq % Hkv:
        raise OpError(
            f"{what}: incompatible shapes Q {list(qh.shape)}, K {list(kh.shape)}, V {list(vh.shape)} "
            f"(after head split and past concatenation); q heads must be a multiple of kv heads"
        )
    ct = compute_dtype(q.dtype, non_float=np.float32)
    sm_dtype, sm_round = _softmax_dtypes(softmax_precision, ct)
    ct = np.promote_types(ct, sm_dtype)
    s = 1.0 / np.sqrt(D) if scale is None else scale
    group = Hq // Hkv
    kr = np.repeat(kh, group, axis=1) if group > 1 else kh
    vr = np.repeat(vh, group, axis=1) if group > 1 else vh
    # half-precision inputs are evaluated in their own dtype, stage by stage, as ONNX defines the op (each
    # elementwise stage rounds; NumPy's matmul accumulates in float32)
    if q.dtype != ct and softmax_precision is None:
        ct = sm_dtype = np.dtype(q.dtype)
    root = ct.type(np.sqrt(s))
    qk = np.matmul(qh.astype(ct, copy=False) * root, np.swapaxes(kr.astype(ct, copy=False) * root, -1, -2))
    qk = qk.astype(ct, copy=False)
    capped = (np.tanh(qk / ct.type(softcap)) * ct.type(softcap)).astype(ct) if softcap > 0 else qk
    # the additive bias: the attn_mask, then structural -inf (causal, window, padding)
    bias = np.zeros((1, 1, 1, T), dtype=ct)
    if attn_mask is not None:
        m = _bias_from_mask(what, attn_mask, ct, true_means_keep=True)
        if m.shape[-1] < T:
            pad = [(0, 0)] * (m.ndim - 1) + [(0, T - m.shape[-1])]
            m = np.pad(m, pad, constant_values=-np.inf)
        elif m.shape[-1] > T:
            raise OpError(f"{what}: attn_mask's last axis ({m.shape[-1]}) exceeds the total key length {T}")
        bias = bias + m
    j = np.arange(T)[None, None, None, :]
    i = np.arange(Sq)[None, None, :, None]
    if nonpad_kv_seqlen is not None:
        lens = np.asarray(nonpad_kv_seqlen).astype(np.int64).reshape(B, 1, 1, 1)
        offset = lens - Sq
    else:
        lens = None
        offset = np.full((1, 1, 1, 1), past_len, dtype=np.int64)
    allowed = np.ones((1, 1, 1, T), dtype=bool)
    pos = i + offset
    if is_causal:
        allowed = allowed & (j <= pos)
    if left_window_size >= 0:
        allowed = allowed & (j >= pos - left_window_size)
    if right_window_size >= 0:
        allowed = allowed & (j <= pos + right_window_size)
    if lens is not None:
        allowed = allowed & (j < lens)
    if not allowed.all():
        bias = bias + np.where(allowed, ct.type(0), ct.type(-np.inf))
    with np.errstate(invalid="ignore"):
        logits = (capped + bias.astype(ct, copy=False)).astype(ct, copy=False)
        probs = _masked_softmax(logits.astype(sm_dtype, copy=False))
    if sm_round is not None:
        probs = probs.astype(sm_round).astype(sm_dtype)
    y = np.matmul(probs.astype(ct, copy=False), vr.astype(ct, copy=False)).astype(ct, copy=False)  # [B,Hq,Sq,Dv]
    if three_d:
        y = y.transpose(0, 2, 1, 3).reshape(B, Sq, -1)
    extra = {0: qk, 1: capped, 2: logits, 3: probs}.get(qk_matmul_output_mode)
    if extra is None:
        raise OpError(f"{what}: attribute 'qk_matmul_output_mode' expects 0..3. Received: {qk_matmul_output_mode}")
    extra = np.broadcast_to(extra, (B, Hq, Sq, T))
    return (
        np.ascontiguousarray(y, dtype=q.dtype),
        present_k,
        present_v,
        np.ascontiguousarray(extra, dtype=q.dtype),
    )


# --- MultiHeadAttention (k5 layer) --------------------------------------------------------------------------------
@op(
    "MultiHeadAttention",
    inputs=[
        "query", "key", "value", "attn_mask?", "key_padding_mask?", "@q_weight", "@k_weight", "@v_weight",
        "@q_bias?", "@k_bias?", "@v_bias?", "@out_weight", "@out_bias?",
    ],
    outputs=["Y", "attn_weights?"],
    decomposes_to="MatMul/Reshape/Transpose/Softmax",
)  # fmt: skip
def multi_head_attention(
    query: np.ndarray,
    key: np.ndarray,
    value: np.ndarray,
    attn_mask: np.ndarray | None,
    key_padding_mask: np.ndarray | None,
    q_weight: np.ndarray,
    k_weight: np.ndarray,
    v_weight: np.ndarray,
    q_bias: np.ndarray | None,
    k_bias: np.ndarray | None,
    v_bias: np.ndarray | None,
    out_weight: np.ndarray,
    out_bias: np.ndarray | None,
    *,
    causal: int = 0,
    num_heads: int,
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Multi-head attention with input and output projections (PyTorch's ``nn.MultiheadAttention``, batch first,
    inference: no dropout).

    ``query [N, Lq, E]``, ``key [N, Lk, Ek]``, ``value [N, Lk, Ev]``; ``q = query @ q_weight.T + q_bias`` (and
    likewise k, v; ``q_weight [E, E]``, ``k_weight [E, Ek]``, ``v_weight [E, Ev]``), split into ``num_heads``
    heads of size ``E/num_heads``; ``softmax(scale * q k^T + mask) v`` (default scale ``1/sqrt(E/num_heads)``),
    heads concatenated, then ``@ out_weight.T + out_bias``. ``attn_mask``: bool where **True means masked out**,
    or float added to the scores, broadcastable to ``[N, num_heads, Lq, Lk]``; ``key_padding_mask [N, Lk]``:
    bool True = padding (ignored), or float added; ``causal=1``: query i ignores keys j > i. A query whose keys
    are all masked gets zeros (PyTorch gives NaN). ``Y [N, Lq, E_out]``; ``attn_weights [N, num_heads, Lq, Lk]``
    the per-head probabilities (PyTorch's ``average_attn_weights=True`` is their mean over axis 1).
    """
    what = "MultiHeadAttention"
    if query.ndim != 3 or key.ndim != 3 or value.ndim != 3:
        raise OpError(
            f"{what}: query, key, value expect [N, L, E] (batch first). Received: {list(query.shape)}, "
            f"{list(key.shape)}, {list(value.shape)}"
        )
    N, Lq, _ = query.shape
    Lk = key.shape[1]
    E = q_weight.shape[0]
    if num_heads < 1 or E % num_heads:
        raise OpError(f"{what}: embed dim {E} is not divisible by num_heads={num_heads}")
    if key.shape[0] != N or value.shape[:2] != (N, Lk):
        raise OpError(f"{what}: key/value batch or length mismatch: {list(key.shape)}, {list(value.shape)}")
    for name, w, fan_in in (("q_weight", q_weight, query.shape[2]), ("k_weight", k_weight, key.shape[2]),
                            ("v_weight", v_weight, value.shape[2]), ("out_weight", out_weight, E)):  # fmt: skip
        if w.ndim != 2 or w.shape[1] != fan_in or (name != "out_weight" and w.shape[0] != E):
            raise OpError(
                f"{what}: {name} expects shape [{E if name != 'out_weight' else 'E_out'}, {fan_in}]. "
                f"Received: {list(w.shape)}"
            )
    ct = compute_dtype(query.dtype, non_float=np.float32)
    Dh = E // num_heads

    def proj(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        y = np.matmul(x.astype(ct, copy=False), w.astype(ct, copy=False).T)
        if b is not None:
            y = y + b.astype(ct, copy=False)
        return y.reshape(x.shape[0], x.shape[1], num_heads, Dh).transpose(0, 2, 1, 3)

    qh, kh, vh = proj(query, q_weight, q_bias), proj(key, k_weight, k_bias), proj(value, v_weight, v_bias)
    s = 1.0 / np.sqrt(Dh) if scale is None else scale
    scores = np.matmul(qh, np.swapaxes(kh, -1, -2)) * ct.type(s)  # [N, h, Lq, Lk]
    if attn_mask is not None:
        scores = scores + _bias_from_mask(what, attn_mask, ct, true_means_keep=False)
    if key_padding_mask is not None:
        if key_padding_mask.shape != (N, Lk):
            raise OpError(
                f"{what}: key_padding_mask expects shape [{N}, {Lk}]. Received: {list(key_padding_mask.shape)}"
            )
        kpm = _bias_from_mask(what, key_padding_mask, ct, true_means_keep=False)
        scores = scores + kpm[:, None, None, :]
    if causal:
        future = np.arange(Lk)[None, :] > np.arange(Lq)[:, None]
        scores = np.where(future, ct.type(-np.inf), scores)
    with np.errstate(invalid="ignore"):
        probs = _masked_softmax(scores)
    out = np.matmul(probs, vh).transpose(0, 2, 1, 3).reshape(N, Lq, E)
    y = np.matmul(out, out_weight.astype(ct, copy=False).T)
    if out_bias is not None:
        y = y + out_bias.astype(ct, copy=False)
    return np.asarray(y, dtype=query.dtype), np.asarray(probs, dtype=query.dtype)


# --- RotaryEmbedding ----------------------------------------------------------------------------------------------
@op("RotaryEmbedding", inputs=["X", "cos_cache", "sin_cache", "position_ids?"], outputs=["Y"])
def rotary_embedding(
    x: np.ndarray,
    cos_cache: np.ndarray,
    sin_cache: np.ndarray,
    position_ids: np.ndarray | None,
    *,
    interleaved: int = 0,
    num_heads: int = 0,
    rotary_embedding_dim: int = 0,
) -> np.ndarray:
    """Rotary position embedding (RoPE), ONNX semantics.

    X ``[B, H, S, D]`` or ``[B, S, H*D]`` (then ``num_heads`` is required). The first ``rotary_embedding_dim``
    (default D) features of each head are rotated as pairs ``(x1, x2)`` -- halves, or even/odd features if
    ``interleaved`` -- to ``(cos*x1 - sin*x2, sin*x1 + cos*x2)``. ``cos_cache/sin_cache`` are ``[max_pos, R/2]``
    indexed by ``position_ids [B, S]``, or ``[B, S, R/2]`` when position_ids is absent.
    """
    what = "RotaryEmbedding"
    if x.ndim == 4:
        xs = x.transpose(0, 2, 1, 3)  # [B, S, H, D]
    elif x.ndim == 3:
        if num_heads < 1 or x.shape[2] % num_heads:
            raise OpError(
                f"{what}: 3-D X {list(x.shape)} needs num_heads dividing its last axis. Received: {num_heads}"
            )
        xs = x.reshape(x.shape[0], x.shape[1], num_heads, x.shape[2] // num_heads)
    else:
        raise OpError(f"{what}: X expects a 3-D or 4-D tensor. Received: shape {list(x.shape)}")
    D = xs.shape[3]
    R = rotary_embedding_dim or D
    if R % 2 or R > D:
        raise OpError(f"{what}: rotary_embedding_dim must be even and <= head size {D}. Received: {R}")
    if position_ids is not None:
        cos, sin = np.take(cos_cache, position_ids, axis=0), np.take(sin_cache, position_ids, axis=0)
    else:
        cos, sin = cos_cache, sin_cache
    if cos.shape[-1] != R // 2 or sin.shape[-1] != R // 2:
        raise OpError(
            f"{what}: cos/sin caches must end in {R // 2} (rotary_embedding_dim/2). Received: "
            f"{list(cos.shape)}, {list(sin.shape)}"
        )
    ct = compute_dtype(x.dtype, non_float=np.float32)
    cos = cos.astype(ct, copy=False)[:, :, None, :]
    sin = sin.astype(ct, copy=False)[:, :, None, :]
    rot = xs[..., :R].astype(ct, copy=False)
    if interleaved:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
    else:
        x1, x2 = rot[..., : R // 2], rot[..., R // 2 :]
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    rotated = np.stack([real, imag], axis=-1).reshape(rot.shape) if interleaved else np.concatenate([real, imag], -1)
    out = np.concatenate([rotated, xs[..., R:].astype(ct, copy=False)], axis=-1)
    out = out.reshape(x.shape) if x.ndim == 3 else out.transpose(0, 2, 1, 3)
    return np.ascontiguousarray(out, dtype=x.dtype)
