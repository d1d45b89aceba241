"""How well the call pipeline hears a call, against a synthetic corpus's ground truth.

Turn times: each reference turn is matched to the pipeline turn on its channel that overlaps it most,
and the start and end differences are measured (an unmatched reference turn counts as missed).
Silences: each reference gap over the threshold (no one speaking, from the reference turns) is matched
to the pipeline silence that overlaps it most. CER: each channel's pipeline text, in time order, against
the channel's reference text in time order, so that segmentation differences (a turn split or joined)
do not count as errors; mono calls have one channel holding both speakers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from callqa.data.corpus import Corpus
from callqa.data.results import CallResult
from callqa.data.schema import CallRecord
from callqa.evaluation.asr_eval import _errors, corpus_cer, decode_split
from callqa.models.tokenizer import normalize
from callqa.serving.pipeline import CallPipeline


@dataclass
class TimingErrors:
    start: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)
    missed: int = 0


def turn_time_errors(call: CallRecord, result: CallResult, into: TimingErrors | None = None) -> TimingErrors:
    """Signed start and end errors (pipeline − reference, seconds) of every matched reference turn."""
    out = into or TimingErrors()
    for ref in call.turns:
        channel = call.channel_of(ref.speaker) or 0
        best, overlap = None, 0.0
        for t in result.turns:
            o = min(t.end, ref.end) - max(t.start, ref.start)
            if t.channel == channel and o > overlap:
                best, overlap = t, o
        if best is None:
            out.missed += 1
        else:
            out.start.append(best.start - ref.start)
            out.end.append(best.end - ref.end)
    return out


def reference_silences(call: CallRecord, min_seconds: float) -> list[tuple[float, float]]:
    out, reach = [], None
    for t in sorted(call.turns, key=lambda t: t.start):
        if reach is not None and t.start - reach >= min_seconds:
            out.append((reach, t.start))
        reach = t.end if reach is None else max(reach, t.end)
    return out


def silence_errors(call: CallRecord, result: CallResult, min_seconds: float = 5.0) -> tuple[list[float], int]:
    """Duration errors (pipeline − reference) of the reference silences over ``min_seconds``, and how many
    of them the pipeline did not find."""
    errors, missed = [], 0
    for s, e in reference_silences(call, min_seconds):
        best = max(result.silences, key=lambda iv: min(iv.end, e) - max(iv.start, s), default=None)
        if best is None or min(best.end, e) - max(best.start, s) <= 0:
            missed += 1
        else:
            errors.append(best.duration - (e - s))
    return errors, missed


def channel_texts(call: CallRecord, result: CallResult) -> list[tuple[str, str]]:
    """(reference, hypothesis) text per channel, each in time order, normalised as ASR is scored."""
    pairs = []
    for ch in range(len(result.channels)):
        ref = "".join(normalize(t.text) for t in call.turns if (call.channel_of(t.speaker) or 0) == ch)
        hyp = "".join(normalize(t.text) for t in result.turns if t.channel == ch)
        pairs.append((ref, hyp))
    return pairs


def pipeline_cer(pairs: list[tuple[str, str]]) -> float:
    """Errors over reference characters across all channels."""
    return sum(_errors(r, h) for r, h in pairs) / max(1, sum(len(r) for r, _ in pairs))


@dataclass
class PipelineReport:
    """The pipeline over a corpus split: its results, their timing errors and both CERs."""

    results: list[CallResult]
    timing: TimingErrors
    silence_errors: list[float]
    silences_missed: int
    pipeline_cer: float
    utterance_cer: float
    audio_seconds: float
    processing_seconds: float

    def summary(self) -> dict[str, float | int]:
        """The figures, rounded, as JSON-friendly numbers (medians of absolute errors)."""
        start, end = np.abs(self.timing.start), np.abs(self.timing.end)
        sil = np.abs(self.silence_errors)
        return {
            "calls": len(self.results),
            "turns_matched": len(start),
            "turns_missed": self.timing.missed,
            "start_error_median": round(float(np.median(start)), 3) if len(start) else float("nan"),
            "end_error_median": round(float(np.median(end)), 3) if len(end) else float("nan"),
            "silences_over_5s": len(sil),
            "silences_missed": self.silences_missed,
            "silence_error_max": round(float(sil.max()), 3) if len(sil) else 0.0,
            "pipeline_cer": round(self.pipeline_cer, 4),
            "utterance_cer": round(self.utterance_cer, 4),
            "audio_seconds": round(self.audio_seconds, 1),
            "processing_seconds": round(self.processing_seconds, 1),
        }


def evaluate_pipeline(
    pipeline: CallPipeline, corpus_dir: str | os.PathLike[str], split: str = "test", limit: int | None = None
) -> PipelineReport:
    """Run ``pipeline`` over a split's calls and score it against their truth.

    The per-utterance CER decodes the same calls' utterances, cut at the true turn times, with the same
    ASR, so the difference between the two CERs is what segmenting the call itself costs. The pipeline
    should be built with ``raw=True``: masked digits would count as errors."""
    corpus = Corpus(corpus_dir)
    calls = corpus.split_calls(split)[:limit]
    timing, silences, missed, pairs, results = TimingErrors(), [], 0, [], []
    for call in tqdm(calls, desc=f"pipeline {split}", unit="call", mininterval=2.0):
        result = pipeline.run_file(corpus.dir / call.audio, call.id)
        results.append(result)
        turn_time_errors(call, result, timing)
        errors, m = silence_errors(call, result, 5.0)
        silences += errors
        missed += m
        pairs += channel_texts(call, result)
    ids = {c.id for c in calls}
    utts = [u for u in corpus.split_utterances(split) if u.call_id in ids]
    return PipelineReport(
        results=results,
        timing=timing,
        silence_errors=silences,
        silences_missed=missed,
        pipeline_cer=pipeline_cer(pairs),
        utterance_cer=corpus_cer(decode_split(pipeline.asr, corpus.dir, utts)),
        audio_seconds=sum(c.duration for c in calls),
        processing_seconds=sum(r.processing_seconds for r in results),
    )
