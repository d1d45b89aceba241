"""Whole-call real-time factor and peak memory of the call pipeline (``callqa transcribe``).

    python bench/pipeline_rtf.py --model runs/export/asr/asr.onnx --corpus runs/quickstart/corpus \
        [--int8 runs/export/asr/asr.int8.onnx] [--ser-model SER.onnx] [--vad silero] \
        [--rtf-minutes 10] [--minutes 1 10 60]

Long calls are built by concatenating the corpus's stereo call audio (8 kHz PCM-16 WAV under a temp
folder). Every measurement runs in a fresh child process that reads the file, runs the pipeline once
and reports its own peak RSS (``ru_maxrss``), so one length's memory never hides another's. RTF is
processing seconds (read + VAD + ASR + SER, after a warm-up on 30 s of the call) per second of
call; the figures are printed as ratios measured in one run, because absolute speed depends on the
machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

from callqa.data.audio import read_audio
from callqa.data.constants import SAMPLE_RATE
from callqa.data.corpus import Corpus


def build_call(corpus: Path, minutes: float, out: Path) -> Path:
    """A stereo call of ``minutes`` made of the corpus's calls one after another (written in pieces,
    so building a 60-minute call does not itself hold it twice in memory)."""
    need = round(minutes * 60 * SAMPLE_RATE)
    calls = [c for c in Corpus(corpus).calls if c.channels != "mono"]
    with sf.SoundFile(out, "w", SAMPLE_RATE, 2, subtype="PCM_16") as fh:
        written, k = 0, 0
        while written < need:
            audio, _ = read_audio(corpus / calls[k % len(calls)].audio)
            piece = audio[:, : need - written]
            fh.write(piece.T)
            written += piece.shape[1]
            k += 1
    return out


def child(args: argparse.Namespace) -> None:
    from callqa.serving.asr_onnx import load_asr
    from callqa.serving.pipeline import CallPipeline
    from callqa.serving.vad import load_vad

    t0 = time.perf_counter()
    ser = None
    if args.ser_model:
        from callqa.serving.ser_onnx import load_ser

        ser = load_ser(args.ser_model, args.threads)
    pipeline = CallPipeline(load_asr(args.model, args.threads), load_vad(args.vad, args.threads), ser)
    # onnxruntime's first runs of a session are slow (allocation, kernel choice): warm it on 30 s of
    # speechy audio first, so a 1-minute call is not charged a fixed cost that a 60-minute one hides.
    warm = read_audio(args.child, SAMPLE_RATE, duration=30.0)[0]
    pipeline.run(warm, "warm-up")
    t1 = time.perf_counter()
    result = pipeline.run_file(args.child)
    t2 = time.perf_counter()
    report = {
        "load_s": t1 - t0,  # loading and warm-up
        "run_s": t2 - t1,
        "duration": result.duration,
        "turns": len(result.turns),
        "stages": result.stage_seconds,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": "torch" in sys.modules,
    }
    print(json.dumps(report))


def measure(wav: Path, model: Path, threads: int, vad: str, ser: Path | None) -> dict:
    cmd = [sys.executable, __file__, "--child", str(wav), "--model", str(model), "--threads", str(threads)]
    cmd += ["--vad", vad] + (["--ser-model", str(ser)] if ser else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="fp32 ASR ONNX")
    ap.add_argument("--int8", type=Path, help="int8 ASR ONNX (default: asr.int8.onnx beside --model)")
    ap.add_argument("--corpus", type=Path, help="corpus whose calls make the long recordings")
    ap.add_argument("--ser-model", type=Path)
    ap.add_argument("--vad", default="silero")
    ap.add_argument("--rtf-minutes", type=float, default=10.0)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0, 60.0])
    ap.add_argument("--threads", type=int, default=2, help="threads of the memory runs")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    if args.corpus is None:
        ap.error("--corpus is required")
    int8 = args.int8 or args.model.with_name("asr.int8.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        lengths = sorted({args.rtf_minutes, *args.minutes})
        wavs = {m: build_call(args.corpus, m, Path(tmp) / f"call-{m:g}min.wav") for m in lengths}

        print(f"## Whole-call RTF, {args.rtf_minutes:g}-minute stereo call, vad={args.vad}")
        print("| ASR | threads | RTF | vad s | asr s | ser s | RTF / fp32 1 thread |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        base = None
        for name, model in (("fp32", args.model), ("int8", int8)):
            if not model.exists():
                print(f"| {name} | - | (no {model}) | | | | |")
                continue
            for threads in (1, 2):
                r = measure(wavs[args.rtf_minutes], model, threads, args.vad, args.ser_model)
                rtf = r["run_s"] / r["duration"]
                base = base or rtf
                st = r["stages"]
                print(
                    f"| {name} | {threads} | {rtf:.4f} | {st['vad']:.1f} | {st['asr']:.1f} | "
                    f"{st.get('ser', 0):.1f} | {rtf / base:.2f} |"
                )

        print(f"\n## Peak memory and time by call length (fp32, {args.threads} threads, vad={args.vad})")
        print("| call | peak RSS MB | run s | RTF | time / 1-minute time | turns | torch imported |")
        print("|---|---:|---:|---:|---:|---:|---|")
        first = None
        for m in args.minutes:
            r = measure(wavs[m], args.model, args.threads, args.vad, args.ser_model)
            first = first or r["run_s"]
            print(
                f"| {m:g} min | {r['rss_mb']:.0f} | {r['run_s']:.1f} | {r['run_s'] / r['duration']:.4f} | "
                f"{r['run_s'] / first:.1f} (length ×{m / args.minutes[0]:g}) | {r['turns']} | {r['torch']} |"
            )


if __name__ == "__main__":
    main()
