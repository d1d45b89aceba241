"""PII masking cost: a dense 10,000-character transcript, and adversarial inputs as ratios to it.

Run: .venv/bin/python bench/pii.py
Prints milliseconds per call (best of N) and each adversarial input's time relative to the transcript,
so a regex change that backtracks shows up as a ratio far above 1 on any machine.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from callqa.data.pii import mask_pii

PARTS = [
    "您好，工号一零二三为您服务。",
    "我的手机是一三八 一二三四 五六七八，",
    "身份证11010519900101123X，",
    "退款一百二十八元三个工作日到账。",
    "好的，请您稍等一下。",
    "三月十五号尾号五六七八。",
]
ADVERSARIAL = {
    "spaced digits": "1 " * 5000,
    "hyphenated digits": "1-" * 5000,
    "10k Chinese digits": "一" * 10_000,
    "digit-comma runs": "1 ,  " * 2000 + "x",
}


def best_seconds(fn: Callable[[str], str], text: str, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    rng = random.Random(0)
    transcript = "".join(rng.choice(PARTS) for _ in range(2000))[:10_000]
    base = best_seconds(mask_pii, transcript)
    print(f"{'input':<22}{'ms':>10}{'ratio':>10}")
    print(f"{'dense transcript':<22}{base * 1e3:>10.2f}{1.0:>10.1f}")
    for name, text in ADVERSARIAL.items():
        t = best_seconds(mask_pii, text, repeat=3)
        print(f"{name:<22}{t * 1e3:>10.2f}{t / base:>10.1f}")


if __name__ == "__main__":
    main()
