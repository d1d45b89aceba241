"""Prosody measured from audio: frame energy, voicing and pitch.

Used to check that the synthetic corpus really carries its labels in the sound (louder when angry,
dead air where a silence defect is), and as hand-made features for speech-emotion models. NumPy only,
so the scoring server can use it without torch.
"""

from __future__ import annotations

import numpy as np

from callqa.data.constants import SAMPLE_RATE


def frames(
    x: np.ndarray, sample_rate: int = SAMPLE_RATE, frame_ms: float = 40.0, hop_ms: float = 10.0
) -> np.ndarray:
    """(n_frames, frame_len) view of a 1-D signal; empty when the signal is shorter than one frame."""
    n, hop = int(sample_rate * frame_ms / 1000), int(sample_rate * hop_ms / 1000)
    if len(x) < n:
        return np.zeros((0, n), dtype=x.dtype)
    return np.lib.stride_tricks.sliding_window_view(x, n)[::hop]


def frame_rms(
    x: np.ndarray, sample_rate: int = SAMPLE_RATE, frame_ms: float = 40.0, hop_ms: float = 10.0
) -> np.ndarray:
    f = frames(x, sample_rate, frame_ms, hop_ms)
    return np.sqrt(np.mean(f.astype(np.float64) ** 2, axis=1)) if len(f) else np.zeros(0)


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-10))


def pitch_track(
    x: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    fmin: float = 50.0,
    fmax: float = 400.0,
    voicing: float = 0.5,
) -> np.ndarray:
    """F0 in Hz per voiced frame; unvoiced and quiet frames are dropped.

    Normalised autocorrelation, keeping frames within 10 dB of the loud end of the signal (so that noise
    between words, which a telephone band-pass makes periodic-looking, is not taken for voice) and whose
    autocorrelation peak exceeds ``voicing``. Crude next to a real pitch tracker, but robust enough on
    telephone-band speech to compare speakers and emotions on average.
    """
    f = frames(x, sample_rate, frame_ms=40.0, hop_ms=10.0).astype(np.float64)
    if not len(f):
        return np.zeros(0)
    f = f - f.mean(axis=1, keepdims=True)
    energy = np.sum(f**2, axis=1)
    keep = energy > 0.1 * np.percentile(energy, 95)
    f, energy = f[keep], energy[keep]
    if not len(f):
        return np.zeros(0)
    n = f.shape[1]
    ac = np.fft.irfft(np.abs(np.fft.rfft(f, 2 * n, axis=1)) ** 2, axis=1)[:, :n] / energy[:, None]
    lo, hi = int(sample_rate / fmax), min(int(sample_rate / fmin), n - 1)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    peak = ac[np.arange(len(ac)), lag]
    return (sample_rate / lag[peak > voicing]).astype(np.float64)
