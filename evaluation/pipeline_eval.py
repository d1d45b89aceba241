"""How well the call pipeline hears a call, against a synthetic corpus's ground truth.

Turn times: each reference turn is matched to the pipeline turn on its channel that overlaps it most,
and the start and end differences are measured (an unmatched reference turn counts as missed).
Silences: each reference gap over the threshold (no one speaking, from the reference turns) is matched
to the pipeline silence that overlaps it most. CER: each channel's pipeline text, in time order, against
the channel's reference text in time order, so that segmentation differences (a turn split or joined)
do not count as errors; mono calls have one channel holding both speakers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callqa.data.results import CallResult
from callqa.data.schema import CallRecord
from callqa.evaluation.asr_eval import _errors
from callqa.models.tokenizer import normalize


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
