"""ASR on onnxruntime alone: no torch on this path, so the scoring server and `callqa transcribe` stay
small. Everything needed to use the model (vocabulary, sample rate) is read from the ONNX file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from callqa.models.asr.decoding import (
    LENGTH_BONUS,
    LM_WEIGHT,
    Hotwords,
    LmFusion,
    greedy_ids,
    hotwords_from_text,
    prefix_beam_search,
)
from callqa.models.asr.keywords import Edges, KeywordSpotter
from callqa.models.asr.lm import CharNgram
from callqa.models.tokenizer import CharTokenizer
from callqa.qa.match import sound_classes
from callqa.serving.sessions import model_kind, open_session

if TYPE_CHECKING:
    from callqa.serving.whisper_onnx import OnnxWhisper


#: Spotted phrases scoring below this (mean log-posterior gap per character) are not kept: far enough
#: from the best path that no rule setting would count them, and the result stays small.
SPOT_FLOOR = -4.0


@dataclass
class Transcript:
    text: str
    ids: list[int]
    #: Phrase -> keyword-spotting score (models.asr.keywords), for the phrases asked for.
    spotted: dict[str, float] = field(default_factory=dict)
    #: The spotting evidence at the segment's two ends, for phrases cut across segments.
    edges: Edges | None = None
    #: Whether spotting found the posteriors too flat to tell phrases apart (nothing was spotted).
    flat: bool = False


class OnnxAsr:
    def __init__(self, path: str | os.PathLike[str], threads: int | None = None):
        self.path = str(path)
        self.session, meta = open_session(path, "asr-ctc", threads, gpu=True)
        self.meta = meta
        self.tokenizer = CharTokenizer.from_json(meta["callqa.tokenizer"])
        self.sample_rate = int(meta["callqa.sample_rate"])
        self.min_samples = int(meta["callqa.min_samples"])

    def run(self, wave: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out, out_len = self.session.run(
            None, {"wave": wave.astype(np.float32), "lengths": lengths.astype(np.int64)}
        )
        return out, out_len

    def hotwords(self, words: Sequence[str], bonus: float = 1.5) -> Hotwords:
        return hotwords_from_text(words, self.tokenizer.encode, bonus)

    def spotter(self, phrases: Sequence[str], sounds: bool = True) -> KeywordSpotter:
        """Spotting of ``phrases``; on sounds (homophones pooled) unless ``sounds`` is off."""
        classes = sound_classes(self.tokenizer.vocab) if sounds else None
        return KeywordSpotter(phrases, self.tokenizer.encode, self.tokenizer.blank_id, classes)

    def language_model(
        self, path: str | os.PathLike[str], weight: float = LM_WEIGHT, length_bonus: float = LENGTH_BONUS
    ) -> LmFusion:
        """A saved n-gram (``callqa train lm``), checked against this model's vocabulary."""
        return LmFusion(CharNgram.load(path, self.tokenizer.vocab), weight, length_bonus)

    def transcribe(
        self,
        waves: Sequence[np.ndarray],
        beam: int = 1,
        hotwords: Hotwords | None = None,
        lm: LmFusion | None = None,
        spotter: KeywordSpotter | None = None,
        edge_seconds: float = 0.0,
    ) -> list[Transcript]:
        """Transcribe mono waveforms at ``sample_rate`` in one batch; beam 1 without hotwords or a
        language model is greedy. With a ``spotter``, each transcript also says how close the posteriors
        came to each of its phrases, which survives where the best path wrote a homophone (nothing where
        the posteriors are too flat to tell phrases apart), and keeps the evidence of its first and last
        ``edge_seconds`` (KeywordSpotter.bridge)."""
        lengths = np.array([max(len(w), self.min_samples) for w in waves], dtype=np.int64)
        batch = np.zeros((len(waves), int(lengths.max())), dtype=np.float32)
        for k, w in enumerate(waves):
            batch[k, : len(w)] = w
        logp, out_len = self.run(batch, lengths)
        results = []
        for k in range(len(waves)):
            lp = logp[k, : int(out_len[k])]
            if beam > 1 or hotwords is not None or lm is not None:
                ids = prefix_beam_search(lp, beam=max(beam, 2), hotwords=hotwords, lm=lm)[0][0]
            else:
                ids = greedy_ids(lp)
            transcript = Transcript(self.tokenizer.decode(ids), ids)
            if spotter is not None:
                edge_frames = round(edge_seconds * len(lp) * self.sample_rate / max(len(waves[k]), 1))
                _spot(transcript, spotter, lp, edge_frames)
            results.append(transcript)
        return results


def _spot(transcript: Transcript, spotter: KeywordSpotter, lp: np.ndarray, edge_frames: int) -> None:
    """Fill in a segment's phrases near enough to keep and its edges for bridging (if ``edge_frames``),
    or mark it flat."""
    evidence = spotter.evidence(lp)
    scores = spotter.align(evidence)
    if spotter.flat(scores):
        transcript.flat = True
        return
    transcript.spotted = {h.phrase: h.score for h in scores if h.score >= SPOT_FLOOR}
    if edge_frames > 0:
        transcript.edges = spotter.edges(evidence, edge_frames)


def load_asr(path: str | os.PathLike[str], threads: int | None = None) -> OnnxAsr | OnnxWhisper:
    """The right onnxruntime engine for an exported ASR file (CTC or Whisper), read from its metadata.

    Both engines offer ``transcribe(waves, beam, hotwords) -> list[Transcript]`` and ``sample_rate``.
    """
    if model_kind(path) == "asr-whisper":
        from callqa.serving.whisper_onnx import OnnxWhisper

        return OnnxWhisper(path, threads)
    return OnnxAsr(path, threads)
