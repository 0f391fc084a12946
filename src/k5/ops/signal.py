"""Signal ops: DFT, STFT, window functions, mel filter banks.

Complex values are stored as a trailing axis of size 2 (real, imaginary); a real signal has a trailing axis of
size 1. ``output_datatype`` attributes are k5 dtype names.
"""

from __future__ import annotations

import numpy as np

from k5.errors import OpError
from k5.format.dtypes import dtype_of
from k5.ops.registry import op

__all__: list[str] = []


def _as_complex(x: np.ndarray, what: str) -> np.ndarray:
    """[..., 1] (real) or [..., 2] (real, imag) -> complex [...] (single precision for inputs of <= 32 bits, as
    NumPy's FFT then computes in single precision like other runtimes)."""
    if x.ndim < 1 or x.shape[-1] not in (1, 2):
        raise OpError(f"{what} expects a last axis of size 1 (real) or 2 (complex). Received: shape {list(x.shape)}")
    xf = x.astype(np.float64 if x.dtype == np.float64 else np.float32)
    return xf[..., 0] if x.shape[-1] == 1 else xf[..., 0] + np.multiply(1j, xf[..., 1])


def _pack(z: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """complex [...] -> [..., 2] of ``dtype``."""
    return np.stack([z.real, z.imag], axis=-1).astype(dtype)


def _int_scalar(v: np.ndarray, what: str) -> int:
    arr = np.asarray(v)
    if arr.size != 1:
        raise OpError(f"{what} must be a scalar. Received: shape {list(arr.shape)}")
    return int(arr.reshape(()))


@op("DFT", inputs=["input", "dft_length?", "axis?"], outputs=["output"])
def dft(
    x: np.ndarray, dft_length: np.ndarray | None, axis: np.ndarray | None, *, inverse: int = 0, onesided: int = 0
) -> np.ndarray:
    """Discrete Fourier transform along ``axis`` (default -2; the last axis holds real/imaginary parts).

    ``dft_length`` zero-pads or truncates the signal (default: its length; for the inverse one-sided transform,
    ``2 * (length - 1)``). Forward + ``onesided``: the first ``n // 2 + 1`` frequencies of a real signal.
    Inverse (scaled by 1/n) + ``onesided``: a real signal (last axis 1) from a one-sided spectrum.
    """
    ax = -2 if axis is None else _int_scalar(axis, "axis")
    r = x.ndim
    if not (-r <= ax <= -2 or 0 <= ax <= r - 2):
        raise OpError(f"axis={ax} is out of range [-{r}, -2] U [0, {r - 2}] for an input of rank {r}")
    ax = ax % r
    z = _as_complex(x, "DFT input")
    length = x.shape[ax]
    if dft_length is not None:
        n = _int_scalar(dft_length, "dft_length")
    else:
        n = 2 * (length - 1) if inverse and onesided else length
    if n < 1:
        raise OpError(f"dft_length must be >= 1. Received: {n}")
    if not inverse:
        y = np.fft.fft(z, n=n, axis=ax)
        if onesided:
            y = np.take(y, np.arange(n // 2 + 1), axis=ax)
        return _pack(y, x.dtype)
    if onesided:
        return np.fft.irfft(z, n=n, axis=ax)[..., None].astype(x.dtype)
    return _pack(np.fft.ifft(z, n=n, axis=ax), x.dtype)


@op("STFT", inputs=["signal", "frame_step", "window?", "frame_length?"], outputs=["output"])
def stft(
    signal: np.ndarray,
    frame_step: np.ndarray,
    window: np.ndarray | None,
    frame_length: np.ndarray | None,
    *,
    onesided: int = 1,
) -> np.ndarray:
    """Short-time Fourier transform of ``signal`` [batch, length, 1|2] -> [batch, frames, bins, 2].

    ``frames = (length - frame_length) // frame_step + 1``; each frame is multiplied by ``window`` (default all
    ones) before its DFT. ``onesided`` (real input only) keeps ``frame_length // 2 + 1`` bins.
    """
    if signal.ndim != 3:
        raise OpError(f"signal expects rank 3 [batch, length, 1|2]. Received: shape {list(signal.shape)}")
    z = _as_complex(signal, "STFT signal")
    step = _int_scalar(frame_step, "frame_step")
    if frame_length is not None:
        fl = _int_scalar(frame_length, "frame_length")
        if window is not None and window.shape[0] != fl:
            raise OpError(f"window has length {window.shape[0]} but frame_length is {fl}")
    else:
        fl = window.shape[0] if window is not None else signal.shape[1]
    if step < 1 or not 1 <= fl <= signal.shape[1]:
        raise OpError(f"frame_step={step} and frame_length={fl} do not fit a signal of length {signal.shape[1]}")
    frames = np.lib.stride_tricks.sliding_window_view(z, fl, axis=1)[:, ::step]  # [batch, frames, fl]
    if window is not None:
        frames = frames * window.astype(np.float64)
    y = np.fft.fft(frames, axis=-1)
    if onesided and signal.shape[-1] == 1:
        y = y[..., : fl // 2 + 1]
    return _pack(y, signal.dtype)


def _window(size: np.ndarray, periodic: int, output_datatype: str, terms: tuple[float, ...]) -> np.ndarray:
    """``sum_k (-1)^k a_k cos(2πkn/N)`` with ``N = size`` (periodic) or ``size - 1`` (symmetric)."""
    n = _int_scalar(size, "size")
    if n < 0:
        raise OpError(f"size must be >= 0. Received: {n}")
    denom = n if periodic else n - 1
    k = np.arange(n, dtype=np.float64)
    phase = 2.0 * np.pi * k / denom if denom > 0 else np.zeros(n)
    w = np.zeros(n)
    for i, a in enumerate(terms):
        w += (-1) ** i * a * np.cos(i * phase)
    return w.astype(dtype_of(output_datatype).numpy)


@op("HannWindow", inputs=["size"], outputs=["output"], out_dtype="attr:output_datatype")
def hann_window(size: np.ndarray, *, output_datatype: str = "float32", periodic: int = 1) -> np.ndarray:
    """Hann window ``0.5 - 0.5 cos(2πn/N)``."""
    return _window(size, periodic, output_datatype, (0.5, 0.5))


@op("HammingWindow", inputs=["size"], outputs=["output"], out_dtype="attr:output_datatype")
def hamming_window(size: np.ndarray, *, output_datatype: str = "float32", periodic: int = 1) -> np.ndarray:
    """Hamming window ``25/46 - 21/46 cos(2πn/N)``."""
    return _window(size, periodic, output_datatype, (25.0 / 46.0, 21.0 / 46.0))


@op("BlackmanWindow", inputs=["size"], outputs=["output"], out_dtype="attr:output_datatype")
def blackman_window(size: np.ndarray, *, output_datatype: str = "float32", periodic: int = 1) -> np.ndarray:
    """Blackman window ``0.42 - 0.5 cos(2πn/N) + 0.08 cos(4πn/N)``."""
    return _window(size, periodic, output_datatype, (0.42, 0.5, 0.08))


@op(
    "MelWeightMatrix",
    inputs=["num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz", "upper_edge_hertz"],
    outputs=["output"],
    out_dtype="attr:output_datatype",
)
def mel_weight_matrix(
    num_mel_bins: np.ndarray,
    dft_length: np.ndarray,
    sample_rate: np.ndarray,
    lower_edge_hertz: np.ndarray,
    upper_edge_hertz: np.ndarray,
    *,
    output_datatype: str = "float32",
) -> np.ndarray:
    """Triangular mel filters [dft_length // 2 + 1, num_mel_bins] with peaks of 1.0 (ONNX's construction).

    ``num_mel_bins + 2`` edges are spaced evenly on the mel scale ``mel(f) = 2595 log10(1 + f/700)`` from
    ``lower_edge_hertz`` in steps of ``(mel(upper) - mel(lower)) / (num_mel_bins + 2)``, and mapped to spectrogram
    bins ``floor((dft_length + 1) * f / sample_rate)``. Filter ``i`` rises linearly from edge ``i`` to 1 at edge
    ``i + 1`` and falls to edge ``i + 2`` (exclusive).
    """
    m = _int_scalar(num_mel_bins, "num_mel_bins")
    n_fft = _int_scalar(dft_length, "dft_length")
    rate = float(np.asarray(sample_rate).reshape(()))
    lo, hi = float(np.asarray(lower_edge_hertz).reshape(())), float(np.asarray(upper_edge_hertz).reshape(()))
    bins = n_fft // 2 + 1
    mel_lo, mel_hi = 2595.0 * np.log10(1.0 + lo / 700.0), 2595.0 * np.log10(1.0 + hi / 700.0)
    mels = np.arange(m + 2) * ((mel_hi - mel_lo) / (m + 2)) + mel_lo
    hz = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    edges = np.floor((n_fft + 1) * hz / rate).astype(np.int64)
    left, center, right = edges[:-2], edges[1:-1], edges[2:]
    j = np.arange(bins)[:, None]
    rise_span = np.maximum(center - left, 1)
    rise = np.where((j >= left) & (j <= center), (j - left) / rise_span, 0.0)
    rise = np.where((center == left) & (j == center), 1.0, rise)
    fall_span = np.maximum(right - center, 1)
    in_fall = (j >= center) & (j < right)
    out = np.where(in_fall, (right - j) / fall_span, rise)
    return out.astype(dtype_of(output_datatype).numpy)
