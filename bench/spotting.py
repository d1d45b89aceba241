"""What keyword spotting of the rubric's phrases costs the call pipeline (``callqa score``).

    python bench/spotting.py --model runs/quickstart/export/asr/asr.onnx --corpus runs/quickstart/corpus \
        [--calls 40] [--repeats 3]

The same calls go through the pipeline without spotting, with spotting on characters and with spotting
on sounds (homophones pooled, the default), alternating so that drift on a shared machine falls on all
three alike. Printed: seconds per call-minute for each, and the ratios to no spotting, measured in one
run, because absolute speed depends on the machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from callqa.data.corpus import Corpus
from callqa.data.rubric import load_rubric
from callqa.qa.rules import RuleSet
from callqa.serving.asr_onnx import OnnxAsr
from callqa.serving.pipeline import CallPipeline, read_call_audio
from callqa.serving.vad import load_vad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    corpus = Corpus(args.corpus)
    calls = [c for c in corpus.calls if c.channels != "mono"][: args.calls]
    audio = [read_call_audio(corpus.dir / c.audio) for c in calls]
    minutes = sum(a.shape[1] for a in audio) / 8000 / 60
    asr = OnnxAsr(args.model)
    phrases = RuleSet(load_rubric()).phrases()
    vad = load_vad("energy")
    variants = {
        "no spotting": CallPipeline(asr, vad, raw=True),
        "characters": CallPipeline(asr, vad, raw=True, keywords=asr.spotter(phrases, sounds=False)),
        "sounds": CallPipeline(asr, vad, raw=True, keywords=asr.spotter(phrases)),
    }
    seconds = dict.fromkeys(variants, 0.0)
    for _ in range(args.repeats):
        for name, pipeline in variants.items():
            t0 = time.perf_counter()
            for call, a in zip(calls, audio, strict=True):
                pipeline.run(a, call.id)
            seconds[name] += time.perf_counter() - t0
    base = seconds["no spotting"]
    print(f"{len(calls)} calls, {minutes:.1f} call-minutes, {len(phrases)} phrases, {args.repeats} repeats")
    for name, s in seconds.items():
        per = s / args.repeats / minutes
        print(f"{name:12s} {per:.3f} s per call-minute   x{s / base:.2f} of no spotting")


if __name__ == "__main__":
    main()
