"""Voice activity per channel: silero-vad's ONNX model or an energy detector, both NumPy + onnxruntime.

Both detectors give a score per frame (speech probability, or dB above the noise floor) and turn it into
speech regions the same way (:func:`speech_regions`): hysteresis between an ``on`` and an ``off``
threshold, pauses shorter than ``min_silence`` bridged, regions shorter than ``min_speech`` dropped, and
a little padding. The scores are kept, because the segmenter cuts over-long regions at their deepest
internal pause.

silero-vad ships its model inside its Python package, but that package imports torch at import time;
the ONNX file is located through the package's import spec without importing it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort
from scipy.ndimage import minimum_filter1d

from callqa.data.constants import SAMPLE_RATE

#: Frames below this level are digital zeros, not a quiet line.
DIGITAL_SILENCE_DB = -90.0


@dataclass(frozen=True)
class RegionRules:
    """How frame scores become speech regions (all durations in seconds)."""

    on: float
    off: float
    min_speech: float = 0.2
    min_silence: float = 0.3
    pad_start: float = 0.0
    pad_end: float = 0.0


@dataclass
class Activity:
    """Frame scores of each channel, ``(channels, frames)`` at ``hop`` seconds, and the speech regions
    found in them as (start, end) seconds per channel."""

    hop: float
    scores: np.ndarray
    regions: list[list[tuple[float, float]]]
    rules: RegionRules


class Vad(Protocol):
    name: str

    def detect(self, audio: np.ndarray, sample_rate: int) -> Activity: ...


def speech_regions(score: np.ndarray, hop: float, rules: RegionRules) -> list[tuple[float, float]]:
    """Speech regions of one channel's frame scores, in seconds."""
    above = score > rules.off
    if not above.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], above.astype(np.int8), [0]])))
    starts, ends = edges[0::2], edges[1::2]
    # hysteresis: a run above ``off`` is speech only if some frame in it is above ``on``
    loud = np.maximum.reduceat(score > rules.on, starts) if len(starts) else np.array([], bool)
    runs = [(int(s), int(e)) for s, e, keep in zip(starts, ends, loud, strict=True) if keep]
    merged: list[list[int]] = []
    gap = rules.min_silence / hop
    for s, e in runs:
        if merged and s - merged[-1][1] < gap:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    total = len(score) * hop
    out: list[tuple[float, float]] = []
    for s, e in merged:
        if (e - s) * hop < rules.min_speech:
            continue
        start, end = max(0.0, s * hop - rules.pad_start), min(total, e * hop + rules.pad_end)
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def silero_model_path() -> Path:
    """The ONNX model inside the installed silero-vad package (found, not imported: it imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("silero-vad is not installed (pip install silero-vad)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: silero-vad's ONNX model is missing from its package")
    return path


class SileroVad:
    """silero-vad v5/v6 on onnxruntime at 8 kHz.

    The model is recurrent over 256-sample chunks (32 ms at 8 kHz), each fed with the 32 samples before
    it as context and a ``(2, batch, 128)`` state. Feeding one chunk at a time costs about half a
    millisecond of Python and onnxruntime overhead, a minute of a 60-minute call, so each channel is cut
    into blocks of ``block`` seconds that run side by side as one batch, each block starting
    ``warmup`` seconds early from a zero state whose first outputs are thrown away.
    """

    name = "silero"
    CHUNK = 256
    CONTEXT = 32

    def __init__(
        self,
        rules: RegionRules | None = None,
        block: float = 10.0,
        warmup: float = 0.5,
        threads: int | None = 1,
        path: str | Path | None = None,
    ) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 0
        opts.inter_op_num_threads = 1
        self.path = Path(path) if path else silero_model_path()
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        names = {i.name: i.shape for i in self.session.get_inputs()}
        if set(names) != {"input", "state", "sr"}:
            raise ValueError(f"{self.path}: not a silero-vad v5+ model (inputs {sorted(names)})")
        # silero's probability rises a frame or two late and falls about 0.15 s after the speech ends
        self.rules = rules or RegionRules(on=0.4, off=0.25, pad_start=0.05, pad_end=-0.1)
        self.hop = self.CHUNK / SAMPLE_RATE
        self.block = max(1, round(block / self.hop))
        self.warmup = round(warmup / self.hop)
        self.version = _package_version("silero-vad")

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Speech probability per 32 ms chunk, ``(channels, frames)``; a trailing partial chunk is
        zero-padded."""
        channels, n = audio.shape
        frames = -(-n // self.CHUNK)
        starts = np.arange(0, frames, self.block)
        first = np.maximum(starts - self.warmup, 0)  # frame each block's run begins at
        steps = int((np.minimum(starts + self.block, frames) - first).max())
        rows_ch = np.repeat(np.arange(channels), len(starts))
        rows_first = np.tile(first, channels)
        window = np.arange(self.CONTEXT + self.CHUNK) - self.CONTEXT
        state = np.zeros((2, len(rows_ch), 128), dtype=np.float32)
        sr = np.array(SAMPLE_RATE, dtype=np.int64)
        out = np.empty((len(rows_ch), steps), dtype=np.float32)
        for k in range(steps):
            idx = (rows_first + k)[:, None] * self.CHUNK + window
            inside = (idx >= 0) & (idx < n)
            x = np.where(inside, audio[rows_ch[:, None], np.clip(idx, 0, n - 1)], 0.0).astype(np.float32)
            prob, state = self.session.run(None, {"input": x, "state": state, "sr": sr})
            out[:, k] = prob[:, 0]
        result = np.zeros((channels, frames), dtype=np.float32)
        for r, (ch, f0) in enumerate(zip(rows_ch, rows_first, strict=True)):
            s = starts[r % len(starts)]
            e = min(s + self.block, frames)
            result[ch, s:e] = out[r, s - f0 : e - f0]
        return result

    def detect(self, audio: np.ndarray, sample_rate: int) -> Activity:
        _check_rate(sample_rate)
        scores = self.probabilities(audio)
        return Activity(
            self.hop, scores, [speech_regions(s, self.hop, self.rules) for s in scores], self.rules
        )


class EnergyVad:
    """Frame energy against an adaptive noise floor, in NumPy.

    The floor is the quietest second (the 10th percentile of its frames) within ``floor_window`` seconds
    around each frame, so it follows line noise that changes during the call; it is never taken below
    ``min_floor_db``, so that digital silence between turns does not make faint noise count as speech.
    Scores are dB above that floor.
    """

    name = "energy"

    def __init__(
        self,
        rules: RegionRules | None = None,
        hop: float = 0.01,
        frame: float = 0.025,
        floor_window: float = 30.0,
        min_floor_db: float = -70.0,
    ) -> None:
        # Pauses under 0.6 s stay inside a segment: slow espeak voices pause that long at commas, and the
        # ASR, trained on whole sentences, does worse on the fragments (CER +0.02 on the small test calls).
        self.rules = rules or RegionRules(on=12.0, off=6.0, min_silence=0.6, pad_start=0.05, pad_end=0.05)
        self.hop, self.frame = hop, frame
        self.floor_window = floor_window
        self.min_floor_db = min_floor_db
        self.version = "1"

    def levels(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """Frame level in dBFS (mean square over ``frame`` seconds every ``hop``)."""
        hop = round(self.hop * sample_rate)
        span = max(1, round(self.frame / self.hop))
        n = len(wave) // hop
        if n == 0:
            return np.full(1, -100.0, dtype=np.float32)
        sub = wave[: n * hop].reshape(n, hop)
        power = np.einsum("ij,ij->i", sub, sub, dtype=np.float64) / hop  # no squared copy of the call
        power = np.convolve(power, np.ones(span) / span, mode="same")
        return (10 * np.log10(power + 1e-10)).astype(np.float32)

    def floor(self, db: np.ndarray) -> np.ndarray:
        """Digital zeros (lost packets, muted lines) are left out: a second with a dropped packet would
        otherwise pull the floor down to nothing and make the line noise around it count as speech."""
        per_second = round(1.0 / self.hop)
        blocks = -(-len(db) // per_second)
        padded = np.full(blocks * per_second, np.nan, dtype=np.float32)
        padded[: len(db)] = np.where(db > DIGITAL_SILENCE_DB, db, np.nan)
        seconds = padded.reshape(blocks, per_second)
        heard = ~np.isnan(seconds).all(axis=1)
        quiet = np.full(blocks, np.inf, dtype=np.float32)
        if heard.any():
            quiet[heard] = np.nanpercentile(seconds[heard], 10, axis=1)
        low = minimum_filter1d(quiet, size=max(1, round(self.floor_window)), mode="nearest")
        low = np.where(np.isfinite(low), low, self.min_floor_db)
        return np.maximum(np.repeat(low, per_second)[: len(db)], self.min_floor_db)

    def detect(self, audio: np.ndarray, sample_rate: int) -> Activity:
        _check_rate(sample_rate)
        scores = np.stack([(lv := self.levels(w, sample_rate)) - self.floor(lv) for w in audio])
        return Activity(
            self.hop, scores, [speech_regions(s, self.hop, self.rules) for s in scores], self.rules
        )


def load_vad(name: str, threads: int | None = 1) -> Vad:
    if name == "silero":
        return SileroVad(threads=threads)
    if name == "energy":
        return EnergyVad()
    raise ValueError(f"unknown voice activity detector {name!r}: use silero or energy")


def _check_rate(sample_rate: int) -> None:
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"voice activity runs at {SAMPLE_RATE} Hz, got {sample_rate} Hz audio")


def _package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
