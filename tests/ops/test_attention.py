"""Attention kernels against PyTorch: MultiHeadAttention vs nn.MultiheadAttention (packed in_proj split into q/k/v),
ONNX Attention vs scaled_dot_product_attention (GQA, causal, masks, KV cache), RotaryEmbedding vs complex maths."""

from __future__ import annotations

import numpy as np
import pytest
from _layer_cases import ATTENTION, cases_for, check_case
from _observed import run_op

from k5.errors import OpError
from k5.ops import attention as K  # noqa: N812 - short alias for the kernels module

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _rel(actual: np.ndarray, expected) -> float:
    expected = np.asarray(expected, dtype=np.float64)
    return float(np.abs(np.asarray(actual, dtype=np.float64) - expected).max() / (np.abs(expected).max() + 1e-12))


def _t(a: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(a))


def _mha_params(m) -> dict[str, np.ndarray | None]:
    E = m.embed_dim
    if m.in_proj_weight is not None:
        qw, kw, vw = (w.detach().numpy() for w in m.in_proj_weight.split(E))
    else:
        qw, kw, vw = (getattr(m, n).detach().numpy() for n in ("q_proj_weight", "k_proj_weight", "v_proj_weight"))
    qb = kb = vb = None
    if m.in_proj_bias is not None:
        qb, kb, vb = (b.detach().numpy() for b in m.in_proj_bias.split(E))
    ob = m.out_proj.bias.detach().numpy() if m.out_proj.bias is not None else None
    return {"q_weight": qw, "k_weight": kw, "v_weight": vw, "q_bias": qb, "k_bias": kb, "v_bias": vb,
            "out_weight": m.out_proj.weight.detach().numpy(), "out_bias": ob}  # fmt: skip


def _mha(query, key, value, p, attn_mask=None, key_padding_mask=None, **attrs):
    """One MultiHeadAttention node run by the interpreter (its two outputs)."""
    return run_op(
        "MultiHeadAttention", query, key, value, attn_mask, key_padding_mask, p["q_weight"], p["k_weight"],
        p["v_weight"], p["q_bias"], p["k_bias"], p["v_bias"], p["out_weight"], p["out_bias"], n_outputs=2, **attrs,
    )  # fmt: skip


@pytest.mark.parametrize(("bias", "cross", "mask_kind"), [(True, False, None), (False, True, "bool"),
                                                          (True, True, "float"), (True, False, "padding")])  # fmt: skip
def test_multi_head_attention_matches_torch(bias: bool, cross: bool, mask_kind: str | None) -> None:
    torch.manual_seed(0)
    E, h, N, Lq, Lk = 16, 4, 3, 5, 7 if cross else 5
    kdim, vdim = (12, 10) if cross else (E, E)
    m = torch.nn.MultiheadAttention(E, h, bias=bias, kdim=kdim, vdim=vdim, batch_first=True).eval()
    if bias:  # re-randomise the zero-initialised biases so they carry signal
        with torch.no_grad():
            m.in_proj_bias.normal_()
            m.out_proj.bias.normal_()
    rng = np.random.default_rng(1)
    q = rng.standard_normal((N, Lq, E), dtype=np.float32)
    k = q if not cross else rng.standard_normal((N, Lk, kdim), dtype=np.float32)
    v = q if not cross else rng.standard_normal((N, Lk, vdim), dtype=np.float32)
    mask = kpm = None
    torch_kw = {}
    if mask_kind == "bool":
        mask = rng.random((Lq, Lk)) < 0.3
        mask[:, 0] = False  # every query keeps a key
        torch_kw["attn_mask"] = _t(mask)
    elif mask_kind == "float":
        mask4 = rng.standard_normal((N, h, Lq, Lk), dtype=np.float32)
        mask = mask4
        torch_kw["attn_mask"] = _t(mask4.reshape(N * h, Lq, Lk))  # torch's 3-D mask is [N*h, Lq, Lk]
    elif mask_kind == "padding":
        kpm = np.zeros((N, Lk), dtype=bool)
        kpm[1, 3:] = True
        kpm[2, -1] = True
        torch_kw["key_padding_mask"] = _t(kpm)
    with torch.no_grad():
        ey, ew = m(_t(q), _t(k), _t(v), need_weights=True, average_attn_weights=False, **torch_kw)
    y, w = _mha(q, k, v, _mha_params(m), mask, kpm, num_heads=h)
    assert y.dtype == np.float32 and y.shape == (N, Lq, E) and w.shape == (N, h, Lq, Lk)
    assert _rel(y, ey.numpy()) < 1e-5
    assert _rel(w, ew.numpy()) < 1e-5


def test_multi_head_attention_causal_and_scale() -> None:
    torch.manual_seed(1)
    E, h, N, L = 8, 2, 2, 6
    m = torch.nn.MultiheadAttention(E, h, batch_first=True).eval()
    x = np.random.default_rng(2).standard_normal((N, L, E), dtype=np.float32)
    causal_mask = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)
    with torch.no_grad():
        ey, _ = m(_t(x), _t(x), _t(x), attn_mask=causal_mask, need_weights=False)
    p = _mha_params(m)
    assert _rel(_mha(x, x, x, p, causal=1, num_heads=h)[0], ey.numpy()) < 1e-5
    # an explicit scale equal to the default changes nothing; another one does
    np.testing.assert_allclose(_mha(x, x, x, p, num_heads=h, scale=0.5)[0], _mha(x, x, x, p, num_heads=h)[0], rtol=1e-6)
    assert _rel(_mha(x, x, x, p, num_heads=h, scale=2.0)[0], _mha(x, x, x, p, num_heads=h)[0]) > 1e-3


def test_multi_head_attention_fully_masked_row_is_zero_not_nan() -> None:
    torch.manual_seed(2)
    m = torch.nn.MultiheadAttention(4, 1, batch_first=True).eval()
    p = _mha_params(m)
    x = np.random.default_rng(3).standard_normal((1, 3, 4), dtype=np.float32)
    mask = np.zeros((3, 3), dtype=bool)
    mask[1] = True
    y, w = _mha(x, x, x, p, mask, num_heads=1)
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(w[0, 0, 1], 0)
    np.testing.assert_allclose(y[0, 1], p["out_bias"], rtol=1e-6)  # zero attention -> only the output bias


def _attention(q, k, v, mask=None, past_k=None, past_v=None, nonpad=None, **attrs):
    return K.attention(q, k, v, mask, past_k, past_v, nonpad, **attrs)


@pytest.mark.parametrize(("hq", "hkv", "causal", "mask"), [(4, 4, 0, None), (6, 2, 1, None), (4, 1, 0, "bool"),
                                                            (4, 2, 0, "float"), (2, 2, 1, "float")])  # fmt: skip
def test_onnx_attention_matches_sdpa(hq: int, hkv: int, causal: int, mask: str | None) -> None:
    rng = np.random.default_rng(hq * 10 + hkv)
    B, Sq, Sk, D, Dv = 2, 5, 5 if causal else 7, 8, 6
    q = rng.standard_normal((B, hq, Sq, D), dtype=np.float32)
    k = rng.standard_normal((B, hkv, Sk, D), dtype=np.float32)
    v = rng.standard_normal((B, hkv, Sk, Dv), dtype=np.float32)
    m = None
    if mask == "bool":
        m = rng.random((B, 1, Sq, Sk)) < 0.7
        m[..., 0] = True
    elif mask == "float":
        m = rng.standard_normal((Sq, Sk), dtype=np.float32)
    torch_mask = m
    if causal and m is not None:  # torch takes either; ONNX adds the causal -inf to the float mask
        torch_mask = np.where(np.arange(Sk)[None, :] > np.arange(Sq)[:, None], -np.inf, m).astype(np.float32)
    expected = F.scaled_dot_product_attention(
        _t(q), _t(k), _t(v), attn_mask=None if m is None else _t(torch_mask),
        is_causal=bool(causal) and m is None, enable_gqa=hq != hkv,
    ).numpy()  # fmt: skip
    y, pk, _, qk = _attention(q, k, v, m, is_causal=causal)
    assert y.dtype == np.float32 and y.shape == (B, hq, Sq, Dv)
    assert _rel(y, expected) < 1e-5
    np.testing.assert_array_equal(pk, k)
    rep = np.repeat(k, hq // hkv, axis=1).astype(np.float64)
    np.testing.assert_allclose(qk, q.astype(np.float64) @ rep.swapaxes(-1, -2) / np.sqrt(D), rtol=1e-5, atol=1e-5)


def test_onnx_attention_3d_inputs_and_scale() -> None:
    rng = np.random.default_rng(4)
    B, S, hq, hkv, D = 2, 4, 6, 3, 5
    q = rng.standard_normal((B, S, hq * D), dtype=np.float32)
    k = rng.standard_normal((B, S + 2, hkv * D), dtype=np.float32)
    v = rng.standard_normal((B, S + 2, hkv * D), dtype=np.float32)

    def heads(x, h):
        return _t(x.reshape(B, -1, h, D).transpose(0, 2, 1, 3))

    e = F.scaled_dot_product_attention(heads(q, hq), heads(k, hkv), heads(v, hkv), scale=0.3, enable_gqa=True)
    y = _attention(q, k, v, q_num_heads=hq, kv_num_heads=hkv, scale=0.3)[0]
    assert y.shape == (B, S, hq * D)
    assert _rel(y, e.numpy().transpose(0, 2, 1, 3).reshape(B, S, hq * D)) < 1e-5


def test_onnx_attention_kv_cache_causal_is_bottom_right() -> None:
    """With past_key, query i (absolute position past + i) attends keys j <= past + i."""
    rng = np.random.default_rng(5)
    B, H, P, S, D = 2, 2, 4, 3, 8
    pk, pv = (rng.standard_normal((B, H, P, D), dtype=np.float32) for _ in range(2))
    q, k, v = (rng.standard_normal((B, H, S, D), dtype=np.float32) for _ in range(3))
    y, present_k, present_v, _ = _attention(q, k, v, None, pk, pv, is_causal=1)
    full_k, full_v = np.concatenate([pk, k], 2), np.concatenate([pv, v], 2)
    np.testing.assert_array_equal(present_k, full_k)
    np.testing.assert_array_equal(present_v, full_v)
    allowed = np.arange(P + S)[None, :] <= P + np.arange(S)[:, None]
    e = F.scaled_dot_product_attention(_t(q), _t(full_k), _t(full_v), attn_mask=_t(allowed)).numpy()
    assert _rel(y, e) < 1e-5


def test_onnx_attention_nonpad_and_window_and_softcap_hand_maths() -> None:
    rng = np.random.default_rng(6)
    B, H, Sq, T, D = 2, 1, 3, 6, 4
    q = rng.standard_normal((B, H, Sq, D))
    k = rng.standard_normal((B, H, T, D))
    v = rng.standard_normal((B, H, T, D))
    nonpad = np.array([5, 3], dtype=np.int64)
    y, _, _, probs = _attention(q, k, v, nonpad=nonpad, is_causal=1, left_window_size=1, softcap=2.0,
                                qk_matmul_output_mode=3)  # fmt: skip
    for b in range(B):
        offset = nonpad[b] - Sq
        for i in range(Sq):
            p = offset + i
            keys = [j for j in range(T) if j < nonpad[b] and j <= p and j >= p - 1]
            if not keys:
                np.testing.assert_array_equal(y[b, 0, i], 0)
                continue
            s = np.array([2.0 * np.tanh((q[b, 0, i] @ k[b, 0, j]) / np.sqrt(D) / 2.0) for j in keys])
            w = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
            np.testing.assert_allclose(y[b, 0, i], w @ v[b, 0, keys], rtol=1e-10)
            np.testing.assert_allclose(probs[b, 0, i, keys], w, rtol=1e-10)


def test_onnx_attention_errors() -> None:
    x = np.zeros((1, 2, 3, 4), dtype=np.float32)
    with pytest.raises(OpError, match="past_key and past_value"):
        _attention(x, x, x, None, x, None)
    with pytest.raises(OpError, match="q_num_heads"):
        _attention(np.zeros((1, 3, 8), np.float32), x, x)
    with pytest.raises(OpError, match="multiple of kv heads"):
        _attention(np.zeros((1, 3, 3, 4), np.float32), x, x)


@pytest.mark.parametrize(
    ("interleaved", "rot_dim", "three_d"), [(0, 0, False), (1, 0, True), (0, 4, True), (1, 6, False)]
)
def test_rotary_embedding_is_a_complex_rotation(interleaved: int, rot_dim: int, three_d: bool) -> None:
    rng = np.random.default_rng(7)
    B, H, S, D = 2, 3, 5, 8
    R = rot_dim or D
    x = rng.standard_normal((B, H, S, D))
    theta = rng.random((16, R // 2)) * 6
    pos = rng.integers(0, 16, (B, S))
    xin = x.transpose(0, 2, 1, 3).reshape(B, S, H * D) if three_d else x
    y = K.rotary_embedding(xin, np.cos(theta), np.sin(theta), pos, interleaved=interleaved, num_heads=H,
                           rotary_embedding_dim=rot_dim)  # fmt: skip
    if three_d:
        y = y.reshape(B, S, H, D).transpose(0, 2, 1, 3)
    xr = x[..., :R]
    z = xr[..., 0::2] + 1j * xr[..., 1::2] if interleaved else xr[..., : R // 2] + 1j * xr[..., R // 2 :]
    zr = z * np.exp(1j * theta[pos])[:, None, :, :]
    expect_r = (
        np.stack([zr.real, zr.imag], -1).reshape(xr.shape) if interleaved else np.concatenate([zr.real, zr.imag], -1)
    )
    np.testing.assert_allclose(y[..., :R], expect_r, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(y[..., R:], x[..., R:])


@pytest.mark.parametrize("case", cases_for(ATTENTION))
def test_onnx_case(case) -> None:
    """ONNX's backend node test case (expected outputs computed by ONNX) through import and the k5 runtime."""
    check_case(case)
