"""Per-sample audio augmentations for ASR training: pure functions of (waveform, rng).

Speed perturbation (0.9/1.0/1.1, Ko et al., 2015) changes tempo and pitch together, the cheapest way to
make a few voices sound like more; added noise at a random SNR widens the channel conditions.
"""

from __future__ import annotations

import numpy as np

from callqa.data.audio import resample


def speed_perturb(wave: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play ``wave`` ``factor`` times faster (shorter and higher) by resampling and keeping the rate."""
    if factor == 1.0:
        return wave
    return resample(wave, round(sample_rate * factor), sample_rate)


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at ``snr_db`` below the utterance's mean power."""
    power = float(np.mean(wave.astype(np.float64) ** 2))
    if power <= 0:
        return wave
    noise = rng.standard_normal(len(wave)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (wave + noise).astype(np.float32)


def augment(
    wave: np.ndarray,
    rng: np.random.Generator,
    sample_rate: int,
    speeds: tuple[float, ...] = (0.9, 1.0, 1.1),
    noise_prob: float = 0.3,
    snr_db: tuple[float, float] = (10.0, 30.0),
) -> np.ndarray:
    wave = speed_perturb(wave, float(rng.choice(speeds)), sample_rate)
    if rng.random() < noise_prob:
        wave = add_noise(wave, float(rng.uniform(*snr_db)), rng)
    return wave
