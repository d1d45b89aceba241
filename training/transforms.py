"""Per-sample audio augmentations for ASR training: pure functions of (waveform, rng).

Speed perturbation (0.9/1.0/1.1, Ko et al., 2015) changes tempo and pitch together, the cheapest way to
make a few voices sound like more; added noise at a random SNR widens the channel conditions. Edge
context widens a call turn's cut into the line around it, as a voice-activity detector's cut would be.
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


def edge_context(
    offset: float,
    duration: float,
    room: tuple[float, float],
    rng: np.random.Generator,
    max_edge: float = 0.5,
    prob: float = 0.5,
) -> tuple[float, float]:
    """(offset, duration) of a cut that reaches up to ``max_edge`` seconds into the line before and after
    the turn, each side on its own with probability ``prob``, never further than ``room`` (the quiet
    stretch of the same channel before and after it, so no other speech comes in unlabelled).

    Call turns are cut at the exact ends of their speech, but the call pipeline cuts where its voice
    activity detector does, a little early or late; a model that never heard a turn with line noise at
    its edges read a tenth of a second of it as speech and garbled the whole turn (CER 0.35 -> 0.55)."""
    before = float(rng.uniform(0.0, min(max_edge, room[0]))) if rng.random() < prob else 0.0
    after = float(rng.uniform(0.0, min(max_edge, room[1]))) if rng.random() < prob else 0.0
    return offset - before, duration + before + after
