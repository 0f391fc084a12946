"""Signal ops: ONNX's backend cases, the DFT written out as a matrix product (hand maths), torch.stft/torch.fft and
torch's window functions, and onnx.reference for MelWeightMatrix."""

from __future__ import annotations

import numpy as np
import pytest
from _onnx_cases import cases_for, check_case, family
from _primitive_cases import reference_vs_k5

from k5.errors import K5Error
from k5.ops import signal as K  # noqa: N812 - short alias for the kernels module

OPS = family("signal")
RNG = np.random.default_rng(5)


@pytest.mark.parametrize("case", cases_for(OPS))
def test_onnx_backend_case(case) -> None:
    check_case(case)


def _dft_matrix(n_out: int, n_in: int, inverse: bool) -> np.ndarray:
    """W[k, n] = exp(∓2πi k n / N) with N = n_out (the transform length)."""
    k, n = np.arange(n_out)[:, None], np.arange(n_in)[None, :]
    w = np.exp((2j if inverse else -2j) * np.pi * k * n / n_out)
    return w / n_out if inverse else w


def _complex(x: np.ndarray) -> np.ndarray:
    return x[..., 0] + 1j * x[..., 1] if x.shape[-1] == 2 else x[..., 0].astype(np.complex128)


@pytest.mark.parametrize("axis", [1, -3, 2])
@pytest.mark.parametrize(
    ("complex_input", "length", "onesided"),  # a one-sided forward transform takes a real signal only
    [(False, None, 0), (False, 9, 0), (False, 5, 0), (False, None, 1), (False, 8, 1), (True, None, 0), (True, 9, 0)],
)
def test_dft_forward_is_the_dft_matrix(complex_input: bool, axis: int, length: int | None, onesided: int) -> None:
    x = RNG.standard_normal((2, 6, 7, 2 if complex_input else 1)).astype(np.float64)
    ax = axis % 4
    n_sig = x.shape[ax]
    n = length or n_sig
    z = np.moveaxis(_complex(x), ax, -1)
    z = z[..., :n] if n <= n_sig else np.concatenate([z, np.zeros((*z.shape[:-1], n - n_sig))], axis=-1)
    want = z @ _dft_matrix(n, n, inverse=False).T
    if onesided:
        want = want[..., : n // 2 + 1]
    want = np.moveaxis(want, -1, ax)
    got = K.dft(x, None if length is None else np.array(length), np.array(axis), onesided=onesided)
    assert got.dtype == np.float64 and got.shape[-1] == 2
    np.testing.assert_allclose(_complex(got), want, rtol=1e-10, atol=1e-10)


def test_dft_inverse_and_irfft_against_torch() -> None:
    torch = pytest.importorskip("torch")
    spec = RNG.standard_normal((3, 8, 2)).astype(np.float32)
    z = torch.from_numpy(spec[..., 0] + 1j * spec[..., 1])
    inv = K.dft(spec, None, np.array(1), inverse=1)
    np.testing.assert_allclose(_complex(inv), torch.fft.ifft(z, dim=1).numpy(), rtol=1e-5, atol=1e-6)
    half = spec[:, :5]  # a one-sided spectrum of a length-8 signal
    real = K.dft(half, None, np.array(1), inverse=1, onesided=1)
    assert real.shape == (3, 8, 1) and real.dtype == np.float32
    expected = torch.fft.irfft(torch.from_numpy(half[..., 0] + 1j * half[..., 1]), n=8, dim=1).numpy()
    np.testing.assert_allclose(real[..., 0], expected, rtol=1e-5, atol=1e-6)


def test_dft_rejects_the_complex_axis() -> None:
    with pytest.raises(K5Error, match="axis=-1 is out of range"):
        K.dft(np.zeros((4, 2), np.float32), None, np.array(-1))


@pytest.mark.parametrize("with_window", [False, True])
@pytest.mark.parametrize("onesided", [0, 1])
def test_stft_matches_torch(with_window: bool, onesided: int) -> None:
    torch = pytest.importorskip("torch")
    sig = RNG.standard_normal((2, 100)).astype(np.float32)
    n_fft, hop = 16, 5
    window = torch.hann_window(n_fft, dtype=torch.float32) if with_window else torch.ones(n_fft)
    want = torch.stft(
        torch.from_numpy(sig), n_fft, hop, window=window, center=False, onesided=bool(onesided), return_complex=True
    ).numpy()  # [batch, bins, frames]
    got = K.stft(  # no window given to k5: a rectangular one
        sig[..., None], np.array(hop), window.numpy() if with_window else None, np.array(n_fft), onesided=onesided
    )
    assert got.shape == (2, (100 - n_fft) // hop + 1, n_fft // 2 + 1 if onesided else n_fft, 2)
    np.testing.assert_allclose(_complex(got), want.transpose(0, 2, 1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("periodic", [0, 1])
@pytest.mark.parametrize("size", [1, 2, 10, 33])
def test_windows_match_torch(periodic: int, size: int) -> None:
    torch = pytest.importorskip("torch")
    p = bool(periodic)
    cases = [
        (K.hann_window, torch.hann_window(size, periodic=p, dtype=torch.float64)),
        (K.hamming_window, torch.hamming_window(size, periodic=p, alpha=25 / 46, beta=21 / 46, dtype=torch.float64)),
        (K.blackman_window, torch.blackman_window(size, periodic=p, dtype=torch.float64)),
    ]
    for fn, want in cases:
        got = fn(np.array(size, np.int64), periodic=periodic, output_datatype="float64")
        assert got.dtype == np.float64 and got.shape == (size,)
        if size > 1:  # torch defines a length-1 window as [1]; ONNX's formula gives its first sample
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)
    assert K.hann_window(np.array(4), output_datatype="float16").dtype == np.float16


@pytest.mark.parametrize(
    ("bins", "dft_length", "rate", "lo", "hi"), [(8, 64, 16000, 0.0, 8000.0), (20, 512, 22050, 30.0, 9000.0)]
)
def test_mel_weight_matrix_matches_reference(bins: int, dft_length: int, rate: int, lo: float, hi: float) -> None:
    inputs = {
        "num_mel_bins": np.array(bins, np.int64),
        "dft_length": np.array(dft_length, np.int64),
        "sample_rate": np.array(rate, np.int64),
        "lower_edge_hertz": np.array(lo, np.float32),
        "upper_edge_hertz": np.array(hi, np.float32),
    }
    (want,), (got,) = reference_vs_k5("MelWeightMatrix", inputs)
    assert got.shape == (dft_length // 2 + 1, bins) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert np.all(got.max(axis=0) == 1.0)  # every triangle peaks at 1
