"""Finding rubric phrases in ASR output that is wrong in places.

An inspector's phrase list says 请您稍等; the recogniser may write 请您稍的 or 清您稍等. Matching happens on
toneless pinyin syllables, so homophone errors cost nothing, and then by edit distance over syllables
against the best-fitting stretch of the text (Sellers' algorithm), so that one wrong, missing or extra
syllable in a phrase of five still matches. ``min_similarity`` sets how many: a phrase of m syllables
may have floor(m * (1 - min_similarity)) errors, so at the default 0.8 phrases of four syllables or
fewer must be exact (Chinese is full of four-character phrases one character apart: 可以帮您 and
已经帮您), five to nine may have one error and longer ones two. Optional "fuzzy pinyin" folds the
distinctions many southern speakers (and small ASR models) blur: zh/z, ch/c, sh/s and the -ng finals.
A phrase of one character matches that character only: one syllable is shared by too many characters
(吗 and 妈 and 嘛).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

_HAN = re.compile(r"[\u4e00-\u9fff]")
_KEEP = re.compile(r"[\u4e00-\u9fff0-9A-Za-z]")
_FOLDS = (("zh", "z"), ("ch", "c"), ("sh", "s"))


@lru_cache(maxsize=8192)
def _fold(syllable: str) -> str:
    for a, b in _FOLDS:
        if syllable.startswith(a):
            syllable = b + syllable[len(a) :]
            break
    return syllable[:-1] if syllable.endswith("ng") and len(syllable) > 2 else syllable


def syllables(text: str, fuzzy: bool = True) -> tuple[list[str], list[int]]:
    """Toneless pinyin per Han character (letters and digits kept as themselves, everything else
    dropped), with the character offset of each."""
    kept = [(i, ch) for i, ch in enumerate(text) if _KEEP.match(ch)]
    if not kept:
        return [], []
    chars = "".join(ch for _, ch in kept)
    pys = lazy_pinyin(chars, style=Style.NORMAL, errors=lambda s: list(s))
    if len(pys) != len(chars):  # pypinyin merged something: fall back to one character at a time
        pys = [lazy_pinyin(ch, style=Style.NORMAL, errors=lambda s: list(s))[0] for ch in chars]
    out = [
        (_fold(p) if fuzzy else p) if _HAN.match(ch) else ch.lower()
        for p, (_, ch) in zip(pys, kept, strict=True)
    ]
    return out, [i for i, _ in kept]


def best_substring(needle: Sequence[str], hay: Sequence[str]) -> tuple[int, int, int]:
    """Edit distance from ``needle`` to its closest stretch of ``hay``, and that stretch (start, end).

    Sellers' algorithm: the ordinary edit-distance table, except that the stretch may start anywhere
    in ``hay`` for free (the first row is zeros) and end anywhere (the minimum of the last row).
    """
    m = len(needle)
    prev = [0] * (len(hay) + 1)
    starts = list(range(len(hay) + 1))
    for i in range(1, m + 1):
        cur, cur_starts = [i], [0]
        for j in range(1, len(hay) + 1):
            sub = prev[j - 1] + (needle[i - 1] != hay[j - 1])
            dele = prev[j] + 1
            ins = cur[j - 1] + 1
            best = min(sub, dele, ins)
            cur.append(best)
            cur_starts.append(
                starts[j - 1] if best == sub else starts[j] if best == dele else cur_starts[j - 1]
            )
        prev, starts = cur, cur_starts
    end = min(range(len(hay) + 1), key=lambda j: (prev[j], -j))
    return prev[end], starts[end], end


@dataclass(frozen=True)
class Match:
    """One phrase found in one text: where (character offsets, end exclusive) and how closely."""

    phrase: str
    start: int
    end: int
    similarity: float


class PhraseMatcher:
    """Finds any of a list of phrases (and optional regular expressions) in a text.

    Regular expressions run on the raw text and count as exact matches: they are for shapes a phrase
    cannot say, such as "digits followed by 号".
    """

    def __init__(
        self,
        phrases: Sequence[str],
        patterns: Sequence[str] = (),
        min_similarity: float = 0.8,
        fuzzy_pinyin: bool = True,
    ) -> None:
        self.phrases = list(phrases)
        self.patterns = [re.compile(p) for p in patterns]
        self.fuzzy = fuzzy_pinyin
        self._syl = [syllables(p, fuzzy_pinyin)[0] for p in self.phrases]
        for phrase, syl in zip(self.phrases, self._syl, strict=True):
            if not syl:
                raise ValueError(f"phrase {phrase!r} has no Chinese characters, letters or digits")
        self._allowed = [math.floor(len(s) * (1.0 - min_similarity) + 1e-9) for s in self._syl]
        self._bags = [Counter(s) for s in self._syl]
        self._chars = {p for p in self.phrases if len(p) == 1}

    def __bool__(self) -> bool:
        return bool(self.phrases or self.patterns)

    def _scan(self, text: str) -> Iterable[tuple[str, int, int, float, bool]]:
        """(phrase, start, end, similarity, matched) for every phrase that comes near the text."""
        for p in self.patterns:
            for m in p.finditer(text):
                yield m.group(0), m.start(), m.end(), 1.0, True
        if not self.phrases:
            return
        hay, offsets = syllables(text, self.fuzzy)
        if not hay:
            return
        bag = Counter(hay)
        for phrase, syl, allowed, need in zip(
            self.phrases, self._syl, self._allowed, self._bags, strict=True
        ):
            if phrase in self._chars:
                at = text.find(phrase)
                if at >= 0:
                    yield phrase, at, at + 1, 1.0, True
                continue
            shared = sum((need & bag).values())
            if shared == 0:
                continue
            if shared < len(syl) - allowed:  # too few syllables in common: at best a near miss
                yield phrase, 0, 0, shared / len(syl) / 2, False
                continue
            d, a, b = best_substring(syl, hay)
            sim = max(0.0, 1.0 - d / len(syl))
            ok = d <= allowed and b > a
            yield phrase, offsets[a] if b > a else 0, offsets[b - 1] + 1 if b > a else 0, sim, ok

    def find(self, text: str) -> list[Match]:
        """Every phrase (at most once each, its best place) and every pattern match in ``text``."""
        return [Match(p, a, b, round(sim, 3)) for p, a, b, sim, ok in self._scan(text) if ok]

    def best(self, text: str) -> float:
        """The closest any phrase comes to appearing in ``text`` (0 when nothing is near), so that a
        model can use "almost said it" as evidence where a threshold would throw it away."""
        return max((sim for *_, sim, _ok in self._scan(text)), default=0.0)


def first_match(matcher: PhraseMatcher, texts: Iterable[str]) -> tuple[int, Match] | None:
    """The index of the first text with a match, and its best match."""
    for i, text in enumerate(texts):
        found = matcher.find(text)
        if found:
            return i, max(found, key=lambda m: m.similarity)
    return None
