"""Synthesis throughput: audio-hours of corpus made per wall-clock minute, 1 worker vs all cores.

Run: .venv/bin/python bench/synth.py [--calls 40] [--coverage 200]
Both runs make the same corpus (same seed), so the ratio is the parallel speed-up on this machine.
Hours count call recordings (both channels' timeline once), the utterances cut from them, and the
coverage sentences.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from callqa.data.synth.config import load_synth_config, preset_path
from callqa.data.synth.generate import generate_corpus


def run(calls: int, coverage: int, workers: int) -> dict[str, float]:
    cfg = load_synth_config(preset_path("small"), calls=calls, coverage_sentences=coverage)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        info = generate_corpus(cfg, Path(tmp) / "c", seed=0, workers=workers)
        wall = time.perf_counter() - t0
    c = info["counts"]
    utt_hours = sum(c["utterance_hours_per_split"].values())
    return {
        "workers": workers,
        "wall_s": wall,
        "call_hours": c["call_hours"],
        "speech_hours": utt_hours + c["coverage_hours"],
        "call_hours_per_min": c["call_hours"] / (wall / 60),
        "speech_hours_per_min": (utt_hours + c["coverage_hours"]) / (wall / 60),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--coverage", type=int, default=200)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    rows = [run(args.calls, args.coverage, 1), run(args.calls, args.coverage, cores)]
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {cores} cores, Python {platform.python_version()}")
    print(f"{'workers':>8}{'wall s':>9}{'call h':>9}{'speech h':>10}{'call h/min':>12}{'speech h/min':>14}")
    for r in rows:
        print(
            f"{r['workers']:>8}{r['wall_s']:>9.1f}{r['call_hours']:>9.3f}{r['speech_hours']:>10.3f}"
            f"{r['call_hours_per_min']:>12.3f}{r['speech_hours_per_min']:>14.3f}"
        )
    print(f"speed-up {cores} workers vs 1: {rows[0]['wall_s'] / rows[1]['wall_s']:.2f}x")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
