"""How well the call pipeline hears a corpus's calls: turn times, long silences and CER against truth.

    python bench/pipeline_accuracy.py --model runs/export/asr/asr.onnx --corpus runs/quickstart/corpus \
        [--vad energy|silero] [--split test] [--limit N]

Turn and silence times are matched as in callqa.evaluation.pipeline_eval. CER is the pipeline's channel
text (from its own segments, no ground-truth times) against each channel's reference text, beside the
per-utterance CER of the same model on the same calls' utterances (cut at the true turn times).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from callqa.data.corpus import Corpus
from callqa.evaluation.asr_eval import corpus_cer, decode_split
from callqa.evaluation.pipeline_eval import (
    TimingErrors,
    channel_texts,
    pipeline_cer,
    silence_errors,
    turn_time_errors,
)
from callqa.serving.asr_onnx import OnnxAsr
from callqa.serving.pipeline import CallPipeline
from callqa.serving.vad import load_vad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--vad", default="energy")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int)
    args = ap.parse_args()
    corpus = Corpus(args.corpus)
    asr = OnnxAsr(args.model, threads=1)
    pipeline = CallPipeline(asr, load_vad(args.vad), raw=True)
    calls = corpus.split_calls(args.split)[: args.limit]
    timing, silences, missed, pairs, seconds = TimingErrors(), [], 0, [], 0.0
    for call in calls:
        result = pipeline.run_file(args.corpus / call.audio, call.id)
        seconds += result.processing_seconds
        turn_time_errors(call, result, timing)
        errors, m = silence_errors(call, result, 5.0)
        silences += errors
        missed += m
        pairs += channel_texts(call, result)
    ids = {c.id for c in calls}
    utts = [u for u in corpus.split_utterances(args.split) if u.call_id in ids]
    by_utterance = corpus_cer(decode_split(asr, args.corpus, utts))
    start, end = np.abs(timing.start), np.abs(timing.end)
    sil = np.abs(silences) if silences else np.zeros(1)
    print(
        f"vad={args.vad}, {len(calls)} {args.split} calls, {sum(c.duration for c in calls):.0f} s of audio, "
        f"processed in {seconds:.1f} s"
    )
    print(
        f"turns: {len(start)} matched, {timing.missed} missed; |start error| median {np.median(start):.3f} s "
        f"(p90 {np.percentile(start, 90):.3f}), |end error| median {np.median(end):.3f} s "
        f"(p90 {np.percentile(end, 90):.3f})"
    )
    print(
        f"silences > 5 s: {len(silences)} found, {missed} missed; |duration error| median "
        f"{np.median(sil):.3f} s, max {sil.max():.3f} s, {int((sil <= 0.3).sum())} within 0.3 s"
    )
    cer = pipeline_cer(pairs)
    print(f"CER: pipeline {cer:.4f}, per utterance {by_utterance:.4f} (Δ {cer - by_utterance:+.4f})")


if __name__ == "__main__":
    main()
