"""The telephone channel: what happens to a voice between a handset and the call-centre recorder.

Models trained on clean synthetic speech fail on real calls, so the synthetic corpus is passed through
the same degradations a real call suffers: 8 kHz sampling, line noise, the 300–3400 Hz band of the
telephone network, G.711 companding and lost packets.

The codecs are ITU-T G.711 proper (the segmented μ-law and A-law used on telephone networks and in WAV
files), not the continuous companding curves: their codes are bit-compatible with libsndfile's ``ULAW`` /
``ALAW`` WAV subtypes, so a channel's output written as a G.711 WAV is stored without a second loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import signal

from callqa.data.audio import resample
from callqa.data.constants import SAMPLE_RATE

#: 16-bit full scale: G.711 is defined on 16-bit (μ-law: 14-bit, A-law: 13-bit) linear samples.
_FULL_SCALE = 32768
_MU_BIAS = 0x84
_MU_CLIP = 32635
#: μ-law segment of a biased magnitude: the number of these thresholds it reaches.
_MU_SEGMENT_STARTS = np.array([0x100 << k for k in range(7)])
#: A-law segment of a 13-bit magnitude: the first of these upper bounds it does not exceed.
_A_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])

#: Frames quieter than the loudest one by more than this are pauses, not speech, when measuring level.
_ACTIVITY_RANGE_DB = 35.0
#: Below this mean-square power (-70 dBFS) a frame is silence whatever the loudest frame is.
_SILENCE_POWER = 1e-7
#: Reference level (-26 dBFS, the usual nominal speech level) for noise when no channel has speech.
_NOMINAL_SPEECH_POWER = 10 ** (-26 / 10)
_ACTIVITY_FRAME_S = 0.02


# ------------------------------------------------------------------------------------------------- G.711


def mulaw_encode(x: np.ndarray, mu: int = 255) -> np.ndarray:
    """Float in [-1, 1] to 8-bit μ-law codes (uint8), G.711 for ``mu=255``.

    G.711 only defines μ = 255; any other ``mu`` uses the continuous law ``ln(1 + μ|x|) / ln(1 + μ)``
    quantised to 256 uniform levels (offset binary, code 0 = -1), for experiments with other curves.
    """
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    if mu != 255:
        return _mu_continuous_encode(x, mu)
    pcm = _to_pcm16(x)
    sign = np.where(pcm < 0, 0x80, 0)
    mag = np.minimum(np.abs(pcm), _MU_CLIP) + _MU_BIAS
    exponent = np.searchsorted(_MU_SEGMENT_STARTS, mag, side="right")
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def mulaw_decode(codes: np.ndarray, mu: int = 255) -> np.ndarray:
    """μ-law codes back to float32 in [-1, 1] (each code's G.711 reconstruction level)."""
    c = np.asarray(codes).astype(np.int32)
    if mu != 255:
        return _mu_continuous_decode(c, mu)
    u = ~c & 0xFF
    exponent, mantissa = (u >> 4) & 0x07, u & 0x0F
    mag = (((mantissa << 3) + _MU_BIAS) << exponent) - _MU_BIAS
    return (np.where(u & 0x80, -mag, mag) / _FULL_SCALE).astype(np.float32)


def alaw_encode(x: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] to 8-bit G.711 A-law codes (uint8); A = 87.6 is built into the segment table."""
    pcm13 = _to_pcm16(np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)) >> 3
    positive = pcm13 >= 0
    mag = np.where(positive, pcm13, -pcm13 - 1)
    seg = np.searchsorted(_A_SEGMENT_ENDS, mag, side="left")
    mantissa = np.where(seg < 2, mag >> 1, mag >> np.maximum(seg, 1)) & 0x0F
    mask = np.where(positive, 0xD5, 0x55)
    return (((seg << 4) | mantissa) ^ mask).astype(np.uint8)


def alaw_decode(codes: np.ndarray) -> np.ndarray:
    """A-law codes back to float32 in [-1, 1]."""
    a = np.asarray(codes).astype(np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    mag = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return (np.where(a & 0x80, mag, -mag) / _FULL_SCALE).astype(np.float32)


def _to_pcm16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * _FULL_SCALE), -_FULL_SCALE, _FULL_SCALE - 1).astype(np.int32)


def _mu_continuous_encode(x: np.ndarray, mu: int) -> np.ndarray:
    if mu <= 0:
        raise ValueError(f"mu must be positive, got {mu}")
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.round((y + 1.0) / 2.0 * 255.0).astype(np.uint8)


def _mu_continuous_decode(codes: np.ndarray, mu: int) -> np.ndarray:
    if mu <= 0:
        raise ValueError(f"mu must be positive, got {mu}")
    y = codes / 255.0 * 2.0 - 1.0
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)


# ------------------------------------------------------------------------------------------------ channel


@dataclass(frozen=True)
class TelephoneChannel:
    """A telephone line, applied per channel: resample, noise, band-pass, codec, packet loss.

    Noise is set against each channel's *active* speech level (pauses ignored), so a caller who speaks
    for a tenth of a stereo call still gets line noise at ``snr_db`` below their voice; a channel with
    no speech at all gets the noise level of the others (or of -26 dBFS speech if none speaks). The SNR
    holds inside the pass band, i.e. it is what a listener to the output measures.

    Lost packets come in bursts (a Gilbert two-state chain, mean burst ``loss_burst`` packets), drawn
    independently per channel, as the two directions of a call travel as separate streams.
    """

    sample_rate: int = SAMPLE_RATE
    low_hz: float = 300.0
    high_hz: float = 3400.0
    codec: Literal["ulaw", "alaw", "none"] = "ulaw"
    snr_db: float | None = 30.0
    packet_loss: float = 0.0
    packet_ms: float = 20.0
    filter_order: int = 4
    loss_burst: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.low_hz < self.high_hz < self.sample_rate / 2:
            raise ValueError(
                f"need 0 < low_hz < high_hz < {self.sample_rate / 2}, got {self.low_hz}, {self.high_hz}"
            )
        if self.codec not in ("ulaw", "alaw", "none"):
            raise ValueError(f"codec must be 'ulaw', 'alaw' or 'none', got {self.codec!r}")
        if not 0.0 <= self.packet_loss < 1.0:
            raise ValueError(f"packet_loss must be in [0, 1), got {self.packet_loss}")
        if self.packet_ms <= 0 or self.loss_burst < 1.0 or self.filter_order < 1:
            raise ValueError("packet_ms must be > 0, loss_burst >= 1 and filter_order >= 1")

    def __call__(self, audio: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """Degrade ``(channels, n)`` or ``(n,)`` audio at ``sample_rate``; float32 at ``self.sample_rate``."""
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim not in (1, 2):
            raise ValueError(f"expected (n,) or (channels, n) audio, got shape {x.shape}")
        y = resample(np.atleast_2d(x), sample_rate, self.sample_rate).astype(np.float64)
        if y.shape[1] == 0:
            return y.astype(np.float32).reshape((*x.shape[:-1], 0))
        # Band-pass is linear, so filtering speech and noise apart and summing equals adding the noise
        # first and filtering the sum; apart, the noise can be scaled to the SNR measured in the band.
        sos = self._band_pass()
        y = _filtfilt(sos, y)
        if self.snr_db is not None:
            y = y + self._noise(sos, y, rng)
        y = self._codec_round_trip(np.clip(y, -1.0, 1.0))
        if self.packet_loss > 0:
            y = y * ~self._loss_mask(y.shape, rng)
        y = np.clip(y, -1.0, 1.0).astype(np.float32)
        return y[0] if x.ndim == 1 else y

    def _band_pass(self) -> np.ndarray:
        return signal.butter(
            self.filter_order,
            [self.low_hz, self.high_hz],
            btype="bandpass",
            fs=self.sample_rate,
            output="sos",
        )

    def _noise(self, sos: np.ndarray, speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Band-limited white noise, per channel at ``snr_db`` below that channel's active speech power."""
        noise = _filtfilt(sos, rng.standard_normal(speech.shape))
        frame = max(1, round(_ACTIVITY_FRAME_S * self.sample_rate))
        levels = [active_power(ch, frame) for ch in speech]
        spoken = [p for p in levels if p is not None]
        fallback = float(np.mean(spoken)) if spoken else _NOMINAL_SPEECH_POWER
        target = np.array([fallback if p is None else p for p in levels]) / 10 ** (self.snr_db / 10)
        have = np.maximum((noise**2).mean(axis=1), 1e-30)
        return noise * np.sqrt(target / have)[:, None]

    def _codec_round_trip(self, y: np.ndarray) -> np.ndarray:
        if self.codec == "ulaw":
            return mulaw_decode(mulaw_encode(y)).astype(np.float64)
        if self.codec == "alaw":
            return alaw_decode(alaw_encode(y)).astype(np.float64)
        return y

    def _loss_mask(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """True where a sample belongs to a lost packet; one burst pattern per channel."""
        packet = max(1, round(self.packet_ms / 1000 * self.sample_rate))
        n_packets = -(-shape[1] // packet)
        lost = np.stack(
            [gilbert_losses(n_packets, self.packet_loss, self.loss_burst, rng) for _ in range(shape[0])]
        )
        return np.repeat(lost, packet, axis=1)[:, : shape[1]]


def active_power(x: np.ndarray, frame: int) -> float | None:
    """Mean-square power over the frames that carry speech, or None if the signal is silent throughout.

    A crude stand-in for ITU-T P.56's active speech level: pauses would otherwise dilute the level and
    make the noise too quiet on a channel that speaks only now and then.
    """
    n = len(x) // frame * frame
    frames = x[:n].reshape(-1, frame) if n else x[None, :]
    power = (np.asarray(frames, dtype=np.float64) ** 2).mean(axis=1)
    threshold = max(power.max() * 10 ** (-_ACTIVITY_RANGE_DB / 10), _SILENCE_POWER)
    active = power >= threshold
    return float(power[active].mean()) if active.any() else None


def gilbert_losses(n: int, loss: float, burst: float, rng: np.random.Generator) -> np.ndarray:
    """A loss pattern of ``n`` packets with long-run loss rate ``loss`` in bursts of mean length ``burst``.

    Two states (received, lost) with geometric stays: leaving "lost" has probability ``r = 1/burst``,
    leaving "received" ``q = loss·r/(1-loss)``, so the stationary loss rate is q/(q+r) = loss. When that
    would need q > 1 (very high loss), bursts are lengthened instead.
    """
    lost = np.zeros(n, dtype=bool)
    if loss <= 0 or n == 0:
        return lost
    r = 1.0 / burst
    q = loss * r / (1.0 - loss)
    if q > 1.0:
        q, r = 1.0, (1.0 - loss) / loss
    state, pos = bool(rng.random() < loss), 0
    while pos < n:
        stay = int(rng.geometric(r if state else q))
        if state:
            lost[pos : pos + stay] = True
        pos, state = pos + stay, not state
    return lost


def _filtfilt(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Zero-phase filtering along the last axis that also accepts signals shorter than scipy's padding."""
    padlen = min(3 * (2 * len(sos) + 1), x.shape[-1] - 1)
    return signal.sosfiltfilt(sos, x, axis=-1, padlen=padlen)
