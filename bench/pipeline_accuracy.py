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

from callqa.evaluation.pipeline_eval import evaluate_pipeline
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
    pipeline = CallPipeline(OnnxAsr(args.model, threads=1), load_vad(args.vad), raw=True)
    rep = evaluate_pipeline(pipeline, args.corpus, args.split, args.limit)
    start, end = np.abs(rep.timing.start), np.abs(rep.timing.end)
    sil = np.abs(rep.silence_errors) if rep.silence_errors else np.zeros(1)
    print(
        f"vad={args.vad}, {len(rep.results)} {args.split} calls, {rep.audio_seconds:.0f} s of audio, "
        f"processed in {rep.processing_seconds:.1f} s"
    )
    print(
        f"turns: {len(start)} matched, {rep.timing.missed} missed; |start error| median "
        f"{np.median(start):.3f} s (p90 {np.percentile(start, 90):.3f}), |end error| median "
        f"{np.median(end):.3f} s (p90 {np.percentile(end, 90):.3f})"
    )
    print(
        f"silences > 5 s: {len(rep.silence_errors)} found, {rep.silences_missed} missed; |duration error| "
        f"median {np.median(sil):.3f} s, max {sil.max():.3f} s, {int((sil <= 0.3).sum())} within 0.3 s"
    )
    cer, by_utterance = rep.pipeline_cer, rep.utterance_cer
    print(f"CER: pipeline {cer:.4f}, per utterance {by_utterance:.4f} (Δ {cer - by_utterance:+.4f})")


if __name__ == "__main__":
    main()
