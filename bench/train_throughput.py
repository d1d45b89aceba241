"""ASR training throughput: audio-seconds trained per wall-clock second, for a config on a corpus.

Run: .venv/bin/python bench/train_throughput.py configs/asr/base-cpu.yaml --corpus runs/quickstart/corpus
Builds the config's model and DataModule, runs a few warm-up steps, then times ``--steps`` full
optimiser steps (forward, CTC loss, backward, update) on real batches, at 1 thread and at all threads,
and prints audio-s/s for each and their ratio. On a GPU (``--device cuda``) it uses bf16 autocast;
``--bf16`` also times bf16 autocast on the CPU at all threads against fp32 (``trainer.precision:
bf16-mixed``), which pays only where the CPU multiplies bf16 natively (the ``avx512_bf16`` or
``amx_bf16`` flag, printed).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from itertools import islice
from pathlib import Path

import torch
import yaml

from callqa.training.asr_data import AsrDataModule
from callqa.training.asr_module import AsrModule


def throughput(config: dict, corpus: str, steps: int, threads: int, device: str, bf16: bool) -> float:
    torch.set_num_threads(threads)
    data = AsrDataModule([corpus], batch_seconds=config["data"].get("batch_seconds", 120), num_workers=0)
    module = AsrModule(config["model"]["model"], data.vocabulary).to(device).train()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4)
    batches = list(islice(iter(data.train_dataloader()), steps + 2))
    audio, elapsed = 0.0, 0.0
    for k, batch in enumerate(batches):
        batch = {key: v.to(device) if torch.is_tensor(v) else v for key, v in batch.items()}
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss, _, _ = module._loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if k >= 2:  # the first steps pay for allocation and kernel selection
            elapsed += time.perf_counter() - t0
            audio += float(batch["lengths"].sum()) / 8000
    return audio / elapsed


def bf16_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return []
    return sorted({f for f in text.split() if f in ("avx512_bf16", "amx_bf16")})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="also time bf16 autocast on the CPU")
    args = ap.parse_args()
    config = yaml.safe_load(Path(args.config).read_text(encoding="utf-8"))
    cores = os.cpu_count() or 1
    gpu = args.device == "cuda"
    counts = [1, cores] if not gpu else [cores]
    results = {t: throughput(config, args.corpus, args.steps, t, args.device, gpu) for t in counts}
    print(f"machine: {platform.machine()}, {cores} cores, device {args.device}; config {args.config}")
    for t, r in results.items():
        print(f"threads {t}: {r:.1f} audio-s/s")
    if len(results) == 2:
        print(f"{cores} threads vs 1: {results[cores] / results[1]:.2f}x")
    if args.bf16 and not gpu:
        bf16 = throughput(config, args.corpus, args.steps, cores, args.device, True)
        print(f"threads {cores}, bf16 autocast: {bf16:.1f} audio-s/s; vs fp32 {bf16 / results[cores]:.2f}x")
        print(f"bf16 CPU flags: {', '.join(bf16_flags()) or 'none'}")


if __name__ == "__main__":
    main()
