"""The scoring server under load: a real ``callqa serve`` on loopback, a concurrency sweep and a soak.

    python bench/server_load.py --model runs/quickstart/export/asr/asr.onnx \
        --ser-model runs/quickstart/ser/export/ser.onnx --qa-model runs/quickstart/qa/qa-linear.json \
        --corpus runs/quickstart/corpus [--concurrency 1 2 4 8] [--requests 16] [--soak 10000] \
        [--soak-seconds 5] [--max-concurrent 2] [--threads 1]

The sweep posts a 1-minute stereo call (built from the corpus's calls) ``--requests`` times at each
client concurrency and prints p50/p95/p99 latency, call-minutes scored per wall-second and errors; a
429 (server full) counts as an error. The soak posts ``--soak`` short calls at the best concurrency and
reads the server's resident memory from /proc before and after: growth over a few per cent is a leak.
Figures are for the machine the bench runs on; compare rows of one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from pipeline_rtf import build_call

from callqa.serving.client import LocalServer


def server_args(args: argparse.Namespace) -> list[str]:
    out = ["-m", str(args.model), "--max-concurrent", str(args.max_concurrent)]
    if args.threads:
        out += ["--threads", str(args.threads)]
    if args.ser_model:
        out += ["--ser-model", str(args.ser_model)]
    if args.qa_model:
        out += ["--qa-model", str(args.qa_model)]
    return out


def post(client: httpx.Client, url: str, audio: bytes) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = client.post(url, files={"audio": ("call.wav", audio, "audio/wav")}, timeout=600)
    return time.perf_counter() - t0, r.status_code


def burst(url: str, audio: bytes, requests: int, concurrency: int) -> tuple[list[float], list[int], float]:
    with httpx.Client() as client, ThreadPoolExecutor(concurrency) as pool:
        t0 = time.perf_counter()
        results = list(pool.map(lambda _: post(client, url, audio), range(requests)))
        wall = time.perf_counter() - t0
    return [r[0] for r in results], [r[1] for r in results], wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--ser-model", type=Path)
    ap.add_argument("--qa-model", type=Path)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--requests", type=int, default=16, help="1-minute calls per concurrency level")
    ap.add_argument("--soak", type=int, default=10_000, help="short calls in the memory soak (0: none)")
    ap.add_argument("--soak-seconds", type=float, default=5.0, help="length of each soak call")
    ap.add_argument("--max-concurrent", type=int, default=2, help="the server's --max-concurrent")
    ap.add_argument("--threads", type=int, help="the server's onnxruntime threads per session")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        minute = build_call(args.corpus, 1.0, Path(tmp) / "minute.wav").read_bytes()
        short = build_call(args.corpus, args.soak_seconds / 60, Path(tmp) / "short.wav").read_bytes()
    with LocalServer(server_args(args)) as server:
        url = f"{server.url}/v1/calls:score"
        burst(url, minute, 2, 1)  # warm the sessions
        threads = args.threads or "cores / workers"
        print(
            f"server --max-concurrent {args.max_concurrent} --threads {threads}; "
            f"{args.requests} 1-minute calls per level"
        )
        print("concurrency   p50 s   p95 s   p99 s   call-min/wall-s   errors")
        best, best_rate = 1, 0.0
        for c in args.concurrency:
            lat, status, wall = burst(url, minute, args.requests, c)
            ok = [t for t, s in zip(lat, status, strict=True) if s == 200]
            rate = len(ok) / wall
            p50, p95, p99 = (np.percentile(ok, q) if ok else float("nan") for q in (50, 95, 99))
            print(f"{c:>11}  {p50:6.2f}  {p95:6.2f}  {p99:6.2f}  {rate:16.2f}   {len(lat) - len(ok):>6}")
            if rate > best_rate and len(ok) == len(lat):
                best, best_rate = c, rate
        if args.soak:
            burst(url, short, 50, best)
            before = server.rss_mb()
            _, status, wall = burst(url, short, args.soak, best)
            after = server.rss_mb()
            errors = sum(s != 200 for s in status)
            print(
                f"soak: {args.soak} calls of {args.soak_seconds:g} s at concurrency {best} in {wall:.0f} s, "
                f"{errors} errors; RSS {before:.0f} -> {after:.0f} MB ({100 * (after / before - 1):+.1f} %)"
            )


if __name__ == "__main__":
    main()
