"""ASR real-time factor: eager PyTorch vs ONNX fp32 vs ONNX int8, at 1 and 2 threads, on the same audio.

Run: .venv/bin/python bench/asr_rtf.py CHECKPOINT --corpus runs/quickstart/corpus [--limit 100]
Exports the checkpoint to a temporary folder (fp32 and int8), decodes the same test utterances with
each engine, and prints RTF (processing seconds per audio second) and CER for each, plus each RTF as
a ratio to eager PyTorch at the same thread count. Append the table to bench/RESULTS.md by hand with
the machine it ran on.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from callqa.data.corpus import Corpus
from callqa.data.segments import load_utterance
from callqa.evaluation.metrics import cer
from callqa.export.asr import export_asr_onnx, quantize_int8
from callqa.models.asr.checkpoint import load_asr_checkpoint
from callqa.models.asr.decoding import greedy_ids
from callqa.models.tokenizer import normalize
from callqa.serving.asr_onnx import OnnxAsr


def batches(waves: list[np.ndarray], size: int = 8) -> list[list[np.ndarray]]:
    return [waves[k : k + size] for k in range(0, len(waves), size)]


def run_eager(model: torch.nn.Module, tok, waves: list[np.ndarray]) -> tuple[float, list[str]]:
    hyps: list[str] = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for chunk in batches(waves):
            lengths = torch.tensor([len(w) for w in chunk])
            x = torch.zeros(len(chunk), int(lengths.max()))
            for k, w in enumerate(chunk):
                x[k, : len(w)] = torch.from_numpy(w)
            logp, out_len = model(x, lengths)
            hyps += [tok.decode(greedy_ids(logp[k, : out_len[k]].numpy())) for k in range(len(chunk))]
    return time.perf_counter() - t0, hyps


def run_onnx(path: Path, threads: int, waves: list[np.ndarray]) -> tuple[float, list[str]]:
    asr = OnnxAsr(path, threads=threads)
    asr.transcribe(waves[:1])  # warm-up: first-run allocations are not steady-state cost
    t0 = time.perf_counter()
    hyps = [t.text for chunk in batches(waves) for t in asr.transcribe(chunk)]
    return time.perf_counter() - t0, hyps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=100)
    args = ap.parse_args()

    model, tok, _ = load_asr_checkpoint(args.checkpoint)
    utts = sorted(Corpus(args.corpus).split_utterances(args.split), key=lambda u: u.id)[: args.limit]
    waves = [load_utterance(u, args.corpus) for u in utts]
    refs = [normalize(u.text) for u in utts]
    audio_s = sum(len(w) for w in waves) / 8000
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_asr_onnx(model, tok, Path(tmp) / "asr.onnx")
        int8 = quantize_int8(fp32, Path(tmp) / "asr.int8.onnx")
        rows = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            run_eager(model, tok, waves[:1])
            secs, hyps = run_eager(model, tok, waves)
            eager_rtf = secs / audio_s
            rows.append(("pytorch eager", threads, eager_rtf, 1.0, cer(refs, hyps)))
            for name, path in (("onnx fp32", fp32), ("onnx int8", int8)):
                secs, hyps = run_onnx(path, threads, waves)
                rows.append((name, threads, secs / audio_s, (secs / audio_s) / eager_rtf, cer(refs, hyps)))
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads max; {len(waves)} utterances, "
        f"{audio_s:.1f} s of audio; checkpoint {args.checkpoint.name}"
    )
    print("| engine | threads | RTF | RTF / eager | CER |\n|---|---:|---:|---:|---:|")
    for name, threads, rtf, ratio, c in rows:
        print(f"| {name} | {threads} | {rtf:.4f} | {ratio:.2f} | {c:.4f} |")


if __name__ == "__main__":
    main()
