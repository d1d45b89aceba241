"""Coverage sentences: random word sequences that teach an ASR model characters, not templates.

A model trained on call templates alone memorises them and fails on held-out templates (FACTS.md).
Sentences drawn from jieba's bundled word list (349k words with corpus frequencies, offline) spread the
training text over thousands of characters. Weights go with the square root of frequency so that common
words dominate without drowning the long tail.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import jieba
import numpy as np

_HAN = re.compile(r"^[\u4e00-\u9fff]+$")


def jieba_dictionary() -> Path:
    return Path(jieba.__file__).parent / "dict.txt"


@lru_cache(maxsize=4)
def coverage_words(vocabulary: int) -> tuple[tuple[str, ...], np.ndarray]:
    """The ``vocabulary`` most frequent all-Chinese words and their sampling probabilities."""
    entries: list[tuple[int, str]] = []
    with open(jieba_dictionary(), encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and _HAN.match(parts[0]):
                entries.append((int(parts[1]), parts[0]))
    entries.sort(key=lambda e: (-e[0], e[1]))
    top = entries[:vocabulary]
    weights = np.sqrt(np.array([f for f, _ in top], dtype=np.float64))
    return tuple(w for _, w in top), weights / weights.sum()


def coverage_sentence(rng: np.random.Generator, vocabulary: int, words: tuple[int, int]) -> str:
    """One sentence of ``words[0]``..``words[1]`` words, with a comma in long ones for a natural pause."""
    vocab, probs = coverage_words(vocabulary)
    n = int(rng.integers(words[0], words[1] + 1))
    picked = [vocab[i] for i in rng.choice(len(vocab), size=n, p=probs)]
    if n >= 5:
        picked[n // 2 - 1] += "，"
    return "".join(picked) + "。"
