"""Speech-emotion features in NumPy, shared by training and the onnxruntime runtime (no torch here).

Emotion in these calls is carried by prosody *relative to the speaker*: an angry low voice and a calm high
one overlap in absolute pitch. So each utterance is described twice, as it is and against the same
speaker's other turns in the same call (their median pitch, mean level, mean spectrum and speaking rate),
and the model sees both. Per frame (10 ms): log-mel, log-energy, log-F0 and voicing strength; per
utterance: pitch level, spread and range, loudness, voicing share, syllable rate and envelope modulation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from callqa.data.constants import SAMPLE_RATE

#: Bumped whenever the features a model sees change for the same audio (2: speaker-gated pitch; 3: turns
#: compared frame by frame between like sounds).
FEATURE_VERSION = 3


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 256  # 32 ms at 8 kHz
    win_length: int = 200  # 25 ms
    hop_length: int = 80  # 10 ms
    n_mels: int = 40
    f_min: float = 60.0
    f_max: float = 3800.0
    pitch_window: int = 320  # 40 ms: two periods of an 50 Hz voice
    f0_min: float = 60.0
    f0_max: float = 420.0
    voicing: float = 0.55  # normalised autocorrelation peak above which a frame counts as voiced
    active_db: float = 30.0  # frames within this many dB of the utterance's loud end are speech
    #: voiced frames further than this (semitones) from the speaker's modal pitch are tracking errors
    f0_gate: float = 8.0
    #: frames per turn compared with the speaker's other turns (0: compare turn medians instead)
    match_frames: int = 150
    #: each turn is compared with at most this many of the speaker's other turns, the nearest in order,
    #: so a long call costs time in proportion to its length
    match_peers: int = 40
    version: int = FEATURE_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    def raw_dict(self) -> dict:
        """The settings :meth:`FeatureExtractor.raw` depends on: what a feature cache is keyed by. The
        speaker-level steps that follow it (gating, matching, normalising) are cheap and always rerun."""
        d = self.to_dict()
        for key in ("f0_gate", "match_frames", "match_peers", "version"):
            d.pop(key)
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "model") -> FeatureConfig:
        """The settings a checkpoint or ONNX file was made with; one made by other feature code is refused
        rather than fed features it never saw."""
        version = d.get("version", 1)
        if version != FEATURE_VERSION:
            raise ValueError(
                f"{source}: SER features version {version}, this callqa computes version {FEATURE_VERSION}; "
                "retrain or re-export the model with this version"
            )
        return cls(**d)

    @property
    def frame_dim(self) -> int:
        return self.n_mels + 4  # log-mel, energy, log-F0, voicing, active

    @property
    def stats_dim(self) -> int:
        return 3 * len(UTT_STATS) + 1 + CONTEXT_DIM


#: Utterance-level prosody, in this order (log-F0 in semitones, levels in dB, rates per second).
UTT_STATS = (
    "f0_median",
    "f0_std",
    "f0_range",
    "f0_slope",
    "energy_mean",
    "energy_std",
    "energy_p90",
    "voiced_share",
    "syllable_rate",
    "modulation_hz",
    "log_duration",
)
F0_STATS = UTT_STATS[:4]  # the pitch statistics come first

#: Where the speaker's other turns lie relative to this one: pitch differences (semitones) and level
#: differences (dB) are spread over these bin centres with Gaussian kernels of these widths.
PITCH_BINS = np.arange(-8.0, 8.01, 0.5)
LEVEL_BINS = np.arange(-8.0, 8.01, 1.0)
JOINT_LEVEL_BINS = np.arange(-8.0, 8.01, 2.0)
PITCH_WIDTH, LEVEL_WIDTH, JOINT_LEVEL_WIDTH = 0.4, 0.8, 1.5
#: Percentiles of the other turns' pitch and level offsets.
CONTEXT_QUANTILES = (0, 25, 50, 75, 100)
#: pitch histogram, level histogram, joint pitch x level histogram, pitch and level quantile offsets
CONTEXT_DIM = (
    len(PITCH_BINS) + len(LEVEL_BINS) + len(PITCH_BINS) * len(JOINT_LEVEL_BINS) + 2 * len(CONTEXT_QUANTILES)
)

#: The minimum a wave may be; shorter ones are zero-padded to it.
MIN_SAMPLES = 400


@dataclass
class RawFeatures:
    """One wave's features before speaker normalisation."""

    frames: np.ndarray  # (T, n_mels + 3): log-mel, energy dB, semitone F0 (0 when unvoiced), voicing
    active: np.ndarray  # (T,) bool: speech frames
    stats: np.ndarray  # (len(UTT_STATS),)


def _mel_matrix(cfg: FeatureConfig) -> np.ndarray:
    """HTK-scale triangular filters, (n_fft // 2 + 1, n_mels)."""

    def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    freqs = np.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    mels = np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2)
    pts = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    lower, centre, upper = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    up = (freqs[None, :] - lower) / (centre - lower)
    down = (upper - freqs[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(up, down)).T


class FeatureExtractor:
    def __init__(self, cfg: FeatureConfig | None = None):
        self.cfg = cfg or FeatureConfig()
        c = self.cfg
        self.mel = _mel_matrix(c)
        win = np.zeros(c.n_fft)
        start = (c.n_fft - c.win_length) // 2
        win[start : start + c.win_length] = np.hanning(c.win_length + 1)[:-1]
        self.window = win
        self.lag_lo = int(c.sample_rate / c.f0_max)
        self.lag_hi = int(c.sample_rate / c.f0_min)

    def _frames(self, x: np.ndarray, width: int) -> np.ndarray:
        """Frames of ``width`` centred every hop, so all feature streams share one time axis."""
        hop = self.cfg.hop_length
        n = 1 + len(x) // hop
        padded = np.pad(x, (width // 2, width // 2 + hop))
        return np.lib.stride_tricks.sliding_window_view(padded, width)[::hop][:n]

    def raw(self, wave: np.ndarray) -> RawFeatures:
        c = self.cfg
        x = np.asarray(wave, dtype=np.float64).reshape(-1)
        x = np.nan_to_num(x)
        if len(x) < MIN_SAMPLES:
            x = np.pad(x, (0, MIN_SAMPLES - len(x)))
        spec = np.abs(np.fft.rfft(self._frames(x, c.n_fft) * self.window, axis=1)) ** 2
        logmel = np.log(spec @ self.mel + 1e-6)
        pf = self._frames(x, c.pitch_window)
        pf = pf - pf.mean(axis=1, keepdims=True)
        power = np.sum(pf**2, axis=1)
        energy = 10 * np.log10(power / c.pitch_window + 1e-10)
        n = pf.shape[1]
        ac = np.fft.irfft(np.abs(np.fft.rfft(pf, 2 * n, axis=1)) ** 2, axis=1)[:, :n]
        lo, hi = self.lag_lo, min(self.lag_hi, n - 1)
        # normalise by the energy of the overlapping parts, so long lags are not penalised
        ac = ac[:, lo:hi] / np.maximum(power[:, None], 1e-12) * (n / (n - np.arange(lo, hi)))[None, :]
        lag = np.argmax(ac, axis=1)
        strength = np.clip(ac[np.arange(len(ac)), lag], 0.0, 1.5)
        active = energy > np.percentile(energy, 95) - c.active_db
        voiced = active & (strength > c.voicing)
        semitone = np.where(voiced, 12 * np.log2(c.sample_rate / (lo + lag) / 100.0), 0.0)
        frames = np.column_stack([logmel, energy, semitone, strength]).astype(np.float32)
        return RawFeatures(frames, active, self._stats(energy, semitone, voiced, active, len(x)))

    def _stats(
        self, energy: np.ndarray, semitone: np.ndarray, voiced: np.ndarray, active: np.ndarray, n: int
    ) -> np.ndarray:
        c = self.cfg
        fps = c.sample_rate / c.hop_length
        f0_stats = f0_statistics(semitone, voiced, fps)
        e = energy[active]
        active_s = max(active.sum() / fps, 1e-2)
        onsets = np.sum(np.diff(voiced.astype(np.int8)) == 1) + int(voiced[0])
        env = np.where(active, energy - e.max(), -c.active_db)
        env = env - env.mean()
        spec = np.abs(np.fft.rfft(env, 1024)) ** 2
        freqs = np.fft.rfftfreq(1024, 1 / fps)
        band = (freqs >= 1.5) & (freqs <= 10.0)
        modulation = float(np.sum(freqs[band] * spec[band]) / max(np.sum(spec[band]), 1e-12))
        return np.array(
            [
                *f0_stats,
                e.mean(),
                e.std(),
                np.percentile(e, 90),
                voiced.sum() / max(active.sum(), 1),
                onsets / active_s,
                modulation,
                np.log(n / c.sample_rate),
            ],
            dtype=np.float64,
        )


def f0_statistics(semitone: np.ndarray, voiced: np.ndarray, fps: float) -> list[float]:
    """Median, spread, 10-90 range and slope (semitones per second) of the voiced frames' pitch."""
    f0 = semitone[voiced]
    if len(f0) < 3:
        return [np.nan, 0.0, 0.0, 0.0]
    t = np.flatnonzero(voiced) / fps
    slope = float(np.polyfit(t, f0, 1)[0]) if np.ptp(t) > 0 else 0.0
    spread = float(np.percentile(f0, 90) - np.percentile(f0, 10))
    return [float(np.median(f0)), float(f0.std()), spread, slope]


def modal_pitch(raws: Sequence[RawFeatures], n_mels: int) -> float | None:
    """The speaker's most common pitch (semitones re 100 Hz) over all voiced frames of their turns."""
    col = [r.frames[:, n_mels + 1] for r in raws]
    pooled = np.concatenate([f[f != 0] for f in col]) if col else np.zeros(0)
    if len(pooled) < 10:
        return None
    edges = np.arange(-30.0, 40.01, 0.5)
    hist = np.convolve(np.histogram(pooled, edges)[0], np.ones(5) / 5, mode="same")
    return float(edges[np.argmax(hist)] + 0.25)


def gate_pitch(raws: Sequence[RawFeatures], cfg: FeatureConfig) -> list[RawFeatures]:
    """Drop voiced frames far from the speaker's modal pitch and recompute the pitch statistics.

    Telephone band-pass removes a low voice's fundamental, so a frame-wise tracker often locks onto a
    harmonic (two to five times F0) for a stretch; when that stretch is most of a turn, the turn's median
    pitch is off by one or two octaves (seen on 8 % of turns, turning a 0.2-semitone spread between a
    speaker's calm turns into 4). Errors are not consistent across turns but the true pitch is, so the
    speaker's mode over all turns is a reliable anchor; emotions move pitch by a few semitones, well
    inside the gate."""
    if not raws or cfg.f0_gate <= 0:
        return list(raws)
    n_mels = raws[0].frames.shape[1] - 3
    centre = modal_pitch(raws, n_mels)
    if centre is None:
        return list(raws)
    fps = cfg.sample_rate / cfg.hop_length
    out = []
    for r in raws:
        frames = r.frames.copy()
        st = frames[:, n_mels + 1]
        st[np.abs(st - centre) >= cfg.f0_gate] = 0.0
        stats = r.stats.copy()
        stats[: len(F0_STATS)] = f0_statistics(st, st != 0, fps)
        out.append(RawFeatures(frames, r.active, stats))
    return out


def _peers(k: int, n: int, peers: int | None) -> np.ndarray:
    """Indices of the turns turn k is compared with: all others, or the ``peers`` nearest in order."""
    if peers is None or n - 1 <= peers:
        return np.delete(np.arange(n), k)
    lo = int(np.clip(k - peers // 2, 0, n - 1 - peers))
    window = np.arange(lo, lo + peers + 1)
    return window[window != k]


def peer_mask(n: int, peers: int | None) -> np.ndarray:
    """(n, n) bool: row k marks the turns turn k is compared with."""
    mask = np.zeros((n, n), bool)
    for k in range(n):
        mask[k, _peers(k, n, peers)] = True
    return mask


def _match_frames(r: RawFeatures, n_mels: int, limit: int) -> np.ndarray:
    """Up to ``limit`` of a turn's speech frames, evenly spaced: (m, n_mels + 2) shape, energy, pitch."""
    f = r.frames[r.active] if r.active.any() else r.frames
    if len(f) > limit:
        f = f[np.linspace(0, len(f) - 1, limit).round().astype(int)]
    shape = f[:, :n_mels] - f[:, :n_mels].mean(axis=1, keepdims=True)
    return np.column_stack([shape, f[:, n_mels], f[:, n_mels + 1]]).astype(np.float64)


def turn_offsets(
    raws: Sequence[RawFeatures], stats: np.ndarray, cfg: FeatureConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(n, n) pitch and level of each turn over each other turn of the same speaker, in semitones and dB.

    A turn's mean level moves by about ±1 dB with its words alone (vowels are louder than fricatives),
    as much as anger moves it over happiness. Comparing each frame with the frame of most similar
    spectral shape in the other turn (the same sound, most often) and taking the median difference
    cancels most of that: measured on held-out voices, the spread of one emotion's level fell from 1.5
    to 0.5 dB and of its pitch from 0.64 to 0.48 semitones. Pitch uses voiced frames on both sides;
    where a turn has too few, or ``match_frames`` is 0, the turns' median pitch and mean level are
    compared instead. Antisymmetric: ``pitch[j, k] == -pitch[k, j]``."""
    f0 = stats[:, UTT_STATS.index("f0_median")]
    energy = stats[:, UTT_STATS.index("energy_mean")]
    pitch, level = f0[:, None] - f0[None, :], energy[:, None] - energy[None, :]
    n = len(raws)
    if cfg.match_frames <= 0 or n < 2:
        return pitch, level
    n_mels = raws[0].frames.shape[1] - 3
    frames = [_match_frames(r, n_mels, cfg.match_frames) for r in raws]
    compared = peer_mask(n, cfg.match_peers)
    for k, j in zip(*np.nonzero(compared), strict=True):
        if j < k and compared[j, k]:
            continue  # measured from the other side
        a, b = frames[k], frames[j]
        d = (a[:, :n_mels] ** 2).sum(1)[:, None] - 2 * a[:, :n_mels] @ b[:, :n_mels].T
        d += (b[:, :n_mels] ** 2).sum(1)[None, :]
        nearest = d.argmin(axis=1)
        level[k, j] = float(np.median(a[:, n_mels] - b[nearest, n_mels]))
        va, vb = a[:, n_mels + 1] != 0, b[:, n_mels + 1] != 0
        if va.sum() >= 3 and vb.sum() >= 3:
            nv = d[np.ix_(va, vb)].argmin(axis=1)
            pitch[k, j] = float(np.median(a[va, n_mels + 1] - b[vb, n_mels + 1][nv]))
        level[j, k], pitch[j, k] = -level[k, j], -pitch[k, j]
    return pitch, level


#: The graph inputs of a model that judges turns in their call context, besides its own (in this order).
CONTEXT_INPUTS = ("peer_stats", "peer_pairs", "peer_mask", "index")

#: Per pair of one speaker's turns: matched pitch and level offsets, then each utterance statistic's
#: difference (:data:`UTT_STATS` order).
PAIR_DIM = 2 + len(UTT_STATS)


@dataclass
class SerInput:
    """What the network sees for one utterance: its own frames and stats, and for a model that weighs the
    speaker's turns together, its row of the speaker's pair offsets and which turns it is compared with."""

    frames: np.ndarray  # (T, frame_dim) float32
    stats: np.ndarray  # (stats_dim,) float32
    pairs: np.ndarray  # (n, PAIR_DIM) float32: this turn over each of the speaker's n turns in the call
    peers: np.ndarray  # (n,) bool: the turns this one is compared with (never itself)


def _kernel(d: np.ndarray, centres: np.ndarray, width: float) -> np.ndarray:
    """(n, len(centres)) Gaussian weights of each difference at each bin centre."""
    return np.exp(-0.5 * ((d[:, None] - centres[None, :]) / width) ** 2)


def call_context(pitch: np.ndarray, level: np.ndarray, peers: int | None = None) -> np.ndarray:
    """(n, CONTEXT_DIM): for each turn, where the same speaker's OTHER turns in the call lie around it.

    ``pitch[k, j]`` and ``level[k, j]`` are turn k's pitch (semitones) and level (dB) over turn j's
    (:func:`turn_offsets`); only the ``peers`` turns nearest in order count, so a long call costs time
    in proportion to its length.

    A speaker's turns said with one emotion share a pitch level to a few tenths of a semitone, and each
    emotion moves pitch and level by its own amount (sad down, surprise far up, angry louder than happy),
    so the pattern of the other turns' offsets says which cluster this turn is in: the lowest of three
    pitch levels, the loud one beside a calmer level, and so on. A median reference alone cannot, when
    most of a speaker's turns are not neutral. Histograms are averaged over the other turns, so a long
    call and a short one look alike; with no other turn everything is zero."""
    n = len(pitch)
    out = np.zeros((n, CONTEXT_DIM))
    if n < 2:
        return out
    for k in range(n):
        others = _peers(k, n, peers)
        df, dl = -pitch[k, others], -level[k, others]
        near = _kernel(df, PITCH_BINS, PITCH_WIDTH)
        joint = near[:, :, None] * _kernel(dl, JOINT_LEVEL_BINS, JOINT_LEVEL_WIDTH)[:, None, :]
        out[k] = np.concatenate(
            [
                near.mean(0),
                _kernel(dl, LEVEL_BINS, LEVEL_WIDTH).mean(0),
                joint.mean(0).ravel(),
                -np.percentile(df, CONTEXT_QUANTILES),
                -np.percentile(dl, CONTEXT_QUANTILES),
            ]
        )
    return out


def speaker_normalise(raws: Sequence[RawFeatures], cfg: FeatureConfig | None = None) -> list[SerInput]:
    """Each wave against all of ``raws`` (ONE speaker's turns in ONE call): frames get the speaker's mean
    spectrum, level and median pitch subtracted; the stats vector holds the utterance's own prosody, its
    difference from the speaker's typical turn, that reference itself, the log number of turns (how
    much the reference can be trusted: with one turn every difference is zero) and the
    :func:`call_context` of the speaker's other turns. Pitch is first gated around the speaker's modal
    pitch (:func:`gate_pitch`)."""
    cfg = cfg or FeatureConfig()
    raws = gate_pitch(raws, cfg)
    stats = np.stack([r.stats for r in raws])
    ref = np.array([np.median(c[np.isfinite(c)]) if np.isfinite(c).any() else 0.0 for c in stats.T])
    stats = np.where(np.isfinite(stats), stats, ref)
    active = np.concatenate([r.frames[r.active] for r in raws]) if raws else np.zeros((0, 1))
    if len(active) == 0:
        active = np.concatenate([r.frames for r in raws])
    n_mels = raws[0].frames.shape[1] - 3
    mel_ref = active[:, :n_mels].mean(axis=0)
    energy_ref = float(active[:, n_mels].mean())
    f0_ref = ref[UTT_STATS.index("f0_median")]
    pitch, level = turn_offsets(raws, stats, cfg)
    context = call_context(pitch, level, cfg.match_peers)
    pairs = np.concatenate([pitch[..., None], level[..., None], stats[:, None, :] - stats[None, :, :]], -1)
    peers = peer_mask(len(raws), cfg.match_peers)
    out = []
    for k, (r, s, ctx) in enumerate(zip(raws, stats, context, strict=True)):
        f = r.frames.astype(np.float64)
        voiced = f[:, n_mels + 1] != 0
        frames = np.column_stack(
            [
                f[:, :n_mels] - mel_ref,
                (f[:, n_mels] - energy_ref) / 10.0,
                np.where(voiced, (f[:, n_mels + 1] - f0_ref) / 6.0, 0.0),
                f[:, n_mels + 2],
                r.active.astype(np.float64),
            ]
        )
        vec = np.concatenate([s, s - ref, ref, [np.log(len(raws))], ctx])
        out.append(
            SerInput(frames.astype(np.float32), vec.astype(np.float32), pairs[k].astype(np.float32), peers[k])
        )
    return out


def speaker_inputs(waves: Sequence[np.ndarray], extractor: FeatureExtractor) -> list[SerInput]:
    """Features of all of one speaker's waves in one call, normalised across them."""
    if not len(waves):
        return []
    return speaker_normalise([extractor.raw(w) for w in waves], extractor.cfg)


def context_window(
    groups: Sequence[tuple[Sequence[SerInput], int, int]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The call context a batch's turns are judged in: turns ``lo:hi`` of each group (one speaker's
    turns in one call) side by side, as (stats (W, S), pairs (W, W, PAIR_DIM), peers (W, W) bool). Pairs
    across groups are zero and never peers, so several speakers share a batch without seeing each other."""
    sizes = [hi - lo for _, lo, hi in groups]
    w = sum(sizes)
    stats = np.zeros((w, len(groups[0][0][0].stats)), np.float32)
    pairs = np.zeros((w, w, PAIR_DIM), np.float32)
    peers = np.zeros((w, w), bool)
    at = 0
    for (xs, lo, hi), n in zip(groups, sizes, strict=True):
        block = slice(at, at + n)
        stats[block] = np.stack([x.stats for x in xs[lo:hi]])
        pairs[block, block] = np.stack([x.pairs[lo:hi] for x in xs[lo:hi]])
        peers[block, block] = np.stack([x.peers[lo:hi] for x in xs[lo:hi]])
        at += n
    return stats, pairs, peers


def pad_batch(inputs: Sequence[SerInput]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames (B, T, D) zero-padded, lengths (B,) int64, stats (B, S))."""
    lengths = np.array([len(x.frames) for x in inputs], dtype=np.int64)
    frames = np.zeros((len(inputs), int(lengths.max()), inputs[0].frames.shape[1]), dtype=np.float32)
    for k, x in enumerate(inputs):
        frames[k, : len(x.frames)] = x.frames
    return frames, lengths, np.stack([x.stats for x in inputs]).astype(np.float32)
