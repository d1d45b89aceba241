"""The call pipeline: one recording in, a :class:`~callqa.data.results.CallResult` out.

read once → voice activity per channel → segments cut at pauses, none longer than the cap → ASR in
batches of similar length under a samples budget → speech emotion per speaker (optional) → turns,
silences and overlaps → PII masked unless raw text is asked for.

Memory is bounded by the recording itself (float32 at 8 kHz, 230 MB for a 60-minute stereo call) plus
one ASR batch, and time grows linearly with the length: no stage sees more than ``max_segment`` seconds
or ``batch_seconds`` of padded audio at once. onnxruntime and NumPy only; torch is never imported here.

Each segment reaches the models with ``margin`` seconds of its channel either side (the turn times stay
the detector's): a detector cuts a little early or late, and the ASR, trained with such edges
(training/transforms.py ``edge_context``), reads a turn best with some line around it. 0.3 s was best
on the small corpus's dev calls (CER 0.436 at 0, 0.422 at 0.3, 0.427 at 0.4).

With keyword spotting, a phrase cut in two, by a pause of up to ``bridge_gap`` seconds inside it or by
the segment cap, is looked for across the cut (models.asr.keywords, ``bridge``) and counted in the
segment where it ends. On the 320-call qa-eval corpus this found the two forbidden phrases the
segments alone missed (我也没办法，你自己 | 看着办).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from callqa.data.audio import AudioError, read_audio, resample
from callqa.data.constants import CHANNEL_OF, SAMPLE_RATE, SPEAKERS
from callqa.data.results import CallResult, ChannelInfo, ModelInfo
from callqa.models.asr.keywords import Edges
from callqa.serving.asr_onnx import SPOT_FLOOR
from callqa.serving.segments import Segment, cut_segments
from callqa.serving.timeline import build_turns, overlaps, silences
from callqa.serving.vad import Vad

log = logging.getLogger(__name__)

#: Below this a recording cannot hold a word; such a file is reported rather than "transcribed".
MIN_SECONDS = 0.1
#: Telephone speech needs 8 kHz; a lower rate cannot be resampled into it.
MIN_RATE = SAMPLE_RATE
#: Seconds of spotting evidence kept at each end of a segment for phrases cut across segments: a
#: rubric phrase of six characters takes about 1.5 s to say.
EDGE_SECONDS = 2.0


class Asr(Protocol):
    sample_rate: int

    def transcribe(
        self, waves: Sequence[np.ndarray], beam: int = 1, hotwords: Any = None, lm: Any = None
    ) -> Sequence[Any]: ...


class Ser(Protocol):
    """The speech-emotion runtime (callqa.serving.ser_onnx.OnnxSer)."""

    labels: tuple[str, ...]
    sample_rate: int
    threshold: float

    def classify(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """(n, len(labels)) calibrated probabilities for all segments of one speaker in one call."""
        ...


class CallPipeline:
    def __init__(
        self,
        asr: Asr,
        vad: Vad,
        ser: Ser | None = None,
        *,
        max_segment: float = 15.0,
        batch_seconds: float = 120.0,
        margin: float = 0.3,
        beam: int = 1,
        hotwords: Any = None,
        lm: Any = None,
        raw: bool = False,
        min_silence: float = 1.0,
        min_overlap: float = 0.1,
        keywords: Any = None,
        bridge_gap: float = 1.0,
    ) -> None:
        if asr.sample_rate != SAMPLE_RATE or (ser is not None and ser.sample_rate != SAMPLE_RATE):
            raise ValueError(f"the pipeline runs at {SAMPLE_RATE} Hz; the models must too")
        if batch_seconds < max_segment:
            raise ValueError(f"batch_seconds ({batch_seconds}) must hold one segment ({max_segment} s)")
        self.asr, self.vad, self.ser = asr, vad, ser
        self.max_segment, self.batch_seconds, self.margin = max_segment, batch_seconds, margin
        self.beam, self.hotwords, self.lm, self.raw = beam, hotwords, lm, raw
        self.min_silence, self.min_overlap = min_silence, min_overlap
        #: A KeywordSpotter (CTC models only): each turn says how close it came to the rubric's phrases.
        self.keywords = keywords
        self.bridge_gap = bridge_gap

    def run_file(
        self,
        path: str | os.PathLike[str],
        call_id: str | None = None,
        speakers: Mapping[str, int] | None = None,
    ) -> CallResult:
        """Read and process one file; a file that cannot be a call recording raises :class:`AudioError`."""
        audio = read_call_audio(path)
        return self.run(audio, call_id or Path(path).stem, os.fspath(path), speakers)

    def run(
        self,
        audio: np.ndarray,
        call_id: str,
        audio_path: str | None = None,
        speakers: Mapping[str, int] | None = None,
    ) -> CallResult:
        """Process ``(channels, samples)`` float32 audio at 8 kHz: mono is one channel with the speaker
        unknown; stereo maps speakers to channels by ``speakers`` (default agent 0, customer 1)."""
        t0 = time.perf_counter()
        audio = np.atleast_2d(audio)
        if not np.isfinite(audio).all():
            raise ValueError(f"{call_id}: audio holds NaN or infinite samples")
        channels = channel_infos(audio.shape[0], speakers)
        activity = self.vad.detect(audio, SAMPLE_RATE)
        segments = cut_segments(activity, self.max_segment - 2 * self.margin)
        waves = [self._wave(audio, seg) for seg in segments]
        t1 = time.perf_counter()
        texts, spotted, flat = self._transcribe(segments, waves)
        t2 = time.perf_counter()
        probs = self._emotions(segments, waves, len(channels)) if self.ser is not None else None
        t3 = time.perf_counter()
        turns = build_turns(
            segments,
            texts,
            channels,
            probs,
            self.ser.labels if self.ser is not None else (),
            self.ser.threshold if self.ser is not None else 0.0,
            self.raw,
            spotted if self.keywords is not None else None,
        )
        return CallResult(
            id=call_id,
            audio=audio_path,
            duration=round(audio.shape[1] / SAMPLE_RATE, 3),
            sample_rate=SAMPLE_RATE,
            channels=channels,
            turns=turns,
            silences=silences(turns, self.min_silence),
            overlaps=overlaps(turns, self.min_overlap) if len(channels) > 1 else [],
            models=self.models(),
            masked=not self.raw,
            settings={
                "vad": self.vad.name,
                "max_segment": self.max_segment,
                "beam": self.beam,
                "segments": len(segments),
                **({"spotted_phrases": len(self.keywords)} if self.keywords is not None else {}),
                "min_silence": self.min_silence,
                "min_overlap": self.min_overlap,
            },
            processing_seconds=round(time.perf_counter() - t0, 3),
            stage_seconds={
                "vad": round(t1 - t0, 3),
                "asr": round(t2 - t1, 3),
                **({"ser": round(t3 - t2, 3)} if self.ser is not None else {}),
            },
            warnings=[
                *(MIXED_VOICES.format(c.index) for c in channels if probs is not None and c.speaker is None),
                *([FLAT_SPOTTING.format(_spans(flat))] if flat else []),
            ],
        )

    def models(self) -> dict[str, ModelInfo]:
        meta = getattr(self.asr, "meta", {})
        out = {
            "asr": ModelInfo(
                kind=meta.get("callqa.kind", type(self.asr).__name__),
                path=getattr(self.asr, "path", None),
                version=meta.get("callqa.version"),
                quantization=meta.get("callqa.quantization"),
            ),
            "vad": ModelInfo(
                kind=self.vad.name,
                path=str(p) if (p := getattr(self.vad, "path", None)) else None,
                version=getattr(self.vad, "version", None),
            ),
        }
        if self.ser is not None:
            out["ser"] = ModelInfo(
                kind="ser",
                path=getattr(self.ser, "path", None),
                version=getattr(self.ser, "version", None),
                quantization=getattr(self.ser, "quantization", None),
            )
        return out

    def _wave(self, audio: np.ndarray, seg: Segment) -> np.ndarray:
        """The segment's samples with ``margin`` seconds either side (a view, not a copy)."""
        s = max(0, round((seg.start - self.margin) * SAMPLE_RATE))
        e = min(audio.shape[1], round((seg.end + self.margin) * SAMPLE_RATE))
        return audio[seg.channel, s:e]

    def _transcribe(
        self, segments: list[Segment], waves: list[np.ndarray]
    ) -> tuple[list[str], list[dict[str, float]], list[Segment]]:
        """Texts and spotted phrases per segment, and the segments too flat to spot in."""
        texts, spotted = [""] * len(waves), [{} for _ in waves]
        edges: list[Edges | None] = [None] * len(waves)
        flat: list[Segment] = []
        extra = {"spotter": self.keywords, "edge_seconds": EDGE_SECONDS} if self.keywords is not None else {}
        for batch in length_batches([len(w) for w in waves], round(self.batch_seconds * SAMPLE_RATE)):
            out = self.asr.transcribe([waves[k] for k in batch], self.beam, self.hotwords, self.lm, **extra)
            for k, t in zip(batch, out, strict=True):
                texts[k], spotted[k], edges[k] = t.text, getattr(t, "spotted", {}), getattr(t, "edges", None)
                if getattr(t, "flat", False):
                    flat.append(segments[k])
        if self.keywords is not None:
            self._bridge(segments, edges, spotted)
        return texts, spotted, flat

    def _bridge(
        self, segments: list[Segment], edges: list[Edges | None], spotted: list[dict[str, float]]
    ) -> None:
        """Add to ``spotted`` the phrases said across the cut between consecutive segments of a channel
        at most ``bridge_gap`` apart. Where the two segments' margins overlap, the shared audio is
        heard twice; trimming it instead lost C000050's phrase, whose characters the model put in the
        very last frames of one segment and the first of the next."""
        order = sorted(range(len(segments)), key=lambda k: (segments[k].channel, segments[k].start))
        for a, b in pairwise(order):
            sa, sb, ea, eb = segments[a], segments[b], edges[a], edges[b]
            if ea is None or eb is None or sa.channel != sb.channel or sb.start - sa.end > self.bridge_gap:
                continue
            for hit in self.keywords.bridge(ea.tail, eb.head, SPOT_FLOOR):
                spotted[b][hit.phrase] = max(hit.score, spotted[b].get(hit.phrase, hit.score))

    def _emotions(self, segments: list[Segment], waves: list[np.ndarray], channels: int) -> np.ndarray:
        assert self.ser is not None
        probs = np.zeros((len(segments), len(self.ser.labels)), dtype=np.float32)
        for ch in range(channels):
            ks = [k for k, seg in enumerate(segments) if seg.channel == ch]
            if ks:
                probs[ks] = self.ser.classify([waves[k] for k in ks])
        return probs


#: SER judges a turn against the other turns of its channel, taken to be one speaker's. A mono mix pools
#: agent and customer: on ser-eval's held-out calls mixed down that way, UA falls from 0.90 to 0.44.
MIXED_VOICES = (
    "channel {} is a mix of speakers: its emotions were judged against every voice on it, not one "
    "speaker's own turns, and are unreliable (record agent and customer on separate channels)"
)

#: Where keyword spotting gave up: the rules there rest on the transcript alone.
FLAT_SPOTTING = (
    "phrases were not spotted in {} (channel: seconds): the recogniser's posteriors there were too flat "
    "to tell one phrase from another, as on noise; the rules read only the transcript there"
)


def _spans(segments: Sequence[Segment]) -> str:
    ordered = sorted(segments, key=lambda s: (s.channel, s.start))
    return ", ".join(f"{s.channel}: {s.start:.1f}-{s.end:.1f}" for s in ordered)


def length_batches(lengths: Sequence[int], budget: int, max_batch: int = 64) -> Iterator[list[int]]:
    """Indices grouped longest first so that each batch, padded to its longest member, holds at most
    ``budget`` samples: similar lengths waste little padding, and memory stays bounded."""
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    batch: list[int] = []
    for k in order:
        if batch and ((len(batch) + 1) * lengths[batch[0]] > budget or len(batch) >= max_batch):
            yield batch
            batch = []
        batch.append(k)
    if batch:
        yield batch


def channel_infos(n: int, speakers: Mapping[str, int] | None = None) -> list[ChannelInfo]:
    if n == 1:
        return [ChannelInfo(index=0, speaker=None)]
    if n != 2:
        raise ValueError(f"{n} channels: a call is mono or stereo (one speaker per channel)")
    mapping = dict(speakers or CHANNEL_OF)
    if set(mapping) != set(SPEAKERS) or sorted(mapping.values()) != [0, 1]:
        raise ValueError(f"speakers must map {SPEAKERS} to channels 0 and 1, got {mapping}")
    by_channel = {ch: spk for spk, ch in mapping.items()}
    return [ChannelInfo(index=ch, speaker=by_channel[ch]) for ch in (0, 1)]  # type: ignore[arg-type]


def read_call_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """A recording as float32 ``(channels, samples)`` at 8 kHz, read once; what cannot be a call (too
    short, a rate below 8 kHz, more than two channels) is an :class:`AudioError` naming the file."""
    audio, rate = read_audio(path, None)
    if rate < MIN_RATE:
        raise AudioError(path, f"sample rate {rate} Hz is below the {MIN_RATE} Hz telephone speech needs")
    if audio.shape[0] > 2:
        raise AudioError(path, f"{audio.shape[0]} channels: a call is mono or stereo (one speaker a channel)")
    if audio.shape[1] < MIN_SECONDS * rate:
        raise AudioError(
            path, f"too short to hold speech: {audio.shape[1]} sample(s) at {rate} Hz (need {MIN_SECONDS} s)"
        )
    return audio if rate == SAMPLE_RATE else resample(audio, rate, SAMPLE_RATE)
