"""Finding rubric phrases in ASR output that is wrong in places.

An inspector's phrase list says 你听不懂吗; a small recogniser on a noisy line writes 你经不懂啊. Matching
therefore happens on toneless pinyin syllables (homophone errors cost nothing), by an edit distance that
knows what recognisers confuse: replacing a syllable by one with the same initial or the same final
(jing/ting, a/ma, ni/nin) costs half of replacing it by an unrelated one, and a missing or extra
syllable costs one. The phrase is aligned with its best-fitting stretch of the text (Sellers'
algorithm). A phrase of m syllables matches when that distance is at most m * (1 - min_similarity):
at the default 0.8 a four-syllable phrase may have one near-miss syllable and no more (Chinese is full
of four-character phrases one character apart, such as 可以帮您 and 已经帮您), a five-syllable phrase one
unrelated error or two near misses.

A turn that comes from the pipeline may also carry keyword-spotting scores (``spotted``: how close the
ASR posteriors came to each rubric phrase, models.asr.keywords). A phrase counts as said when either the
text matches or its spotted score clears ``min_spotted`` (``min_spotted_short`` for phrases of up to
three characters, whose few frames make the per-character score noisier); on the similarity scale a
score exactly at the limit maps to ``min_similarity``.

Optional "fuzzy pinyin" folds the distinctions many southern speakers (and small ASR models) blur:
zh/z, ch/c, sh/s and the -ng finals. Phrases of up to three characters must match exactly (one
character: that character itself, since a single syllable is shared by too many characters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
from pypinyin import Style, lazy_pinyin

#: Phrases this short (in syllables) must match their syllables exactly: one near miss in three
#: syllables already turns 等着吧 into 等一下吧.
EXACT_UP_TO = 3
#: Cost of replacing a syllable by one that shares its initial or its final.
NEAR_MISS = 0.5
#: Spotting limits (mean log-probability per character below the best path, on sounds: homophones
#: pooled), from the rubric's phrases on 60 qa-train calls (dev split): at -1.5 a phrase of four
#: characters is found in 94 % of the turns that say it, with about one false find in 3,000 turn-phrase
#: pairs that do not (the same recall on characters alone needs -2.5 and lets in three times as many);
#: two or three characters need -0.5 for a similar rate.
MIN_SPOTTED = -1.5
MIN_SPOTTED_SHORT = -0.5

_HAN = re.compile(r"[\u4e00-\u9fff]")
_KEEP = re.compile(r"[\u4e00-\u9fff0-9A-Za-z]")
_FOLDS = (("zh", "z"), ("ch", "c"), ("sh", "s"))
_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r",
             "z", "c", "s", "y", "w")  # fmt: skip


@lru_cache(maxsize=8192)
def _fold_syllable(syllable: str) -> str:
    for a, b in _FOLDS:
        if syllable.startswith(a):
            syllable = b + syllable[len(a) :]
            break
    return syllable[:-1] if syllable.endswith("ng") and len(syllable) > 2 else syllable


@lru_cache(maxsize=8192)
def _split(syllable: str) -> tuple[str, str]:
    for ini in _INITIALS:
        if syllable.startswith(ini) and len(syllable) > len(ini):
            return ini, syllable[len(ini) :]
    return "", syllable


class _Codes:
    """Interns syllables, initials and finals as integers, so that costs are computed with numpy."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def __call__(self, s: str) -> int:
        return self.ids.setdefault(s, len(self.ids))


_CODE = _Codes()


@lru_cache(maxsize=4096)
def _syllables(text: str, fuzzy: bool) -> tuple[tuple[str, ...], tuple[int, ...]]:
    s, o = syllables(text, fuzzy)
    return tuple(s), tuple(o)


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
        (_fold_syllable(p) if fuzzy else p) if _HAN.match(ch) else ch.lower()
        for p, (_, ch) in zip(pys, kept, strict=True)
    ]
    return out, [i for i, _ in kept]


def sound_classes(vocab: Sequence[str]) -> list[int]:
    """For each token of an ASR vocabulary, an integer shared by the tokens that sound the same once
    tones and the fuzzy-pinyin distinctions are dropped (烦 凡 反 share one): keyword spotting on sounds
    (models.asr.keywords). Other tokens, including the blank, are each their own class."""
    keys: dict[str, int] = {}
    out = []
    for i, token in enumerate(vocab):
        if len(token) == 1 and _HAN.match(token):
            key = "py:" + _fold_syllable(lazy_pinyin(token, style=Style.NORMAL)[0])
        else:
            key = f"tok:{i}"
        out.append(keys.setdefault(key, len(keys)))
    return out


@dataclass(frozen=True)
class Sounds:
    """A syllable sequence as integer codes of the syllables, their initials and their finals."""

    syl: np.ndarray
    ini: np.ndarray
    fin: np.ndarray

    @classmethod
    def of(cls, syls: Sequence[str]) -> Sounds:
        parts = [_split(s) for s in syls]
        return cls(
            np.array([_CODE(s) for s in syls], dtype=np.int64),
            np.array([_CODE("i:" + i) if i else -1 for i, _ in parts], dtype=np.int64),
            np.array([_CODE("f:" + f) for _, f in parts], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.syl)


def _costs(needle: Sounds, hay: Sounds) -> np.ndarray:
    same = needle.syl[:, None] == hay.syl[None, :]
    near = ((needle.ini[:, None] == hay.ini[None, :]) & (needle.ini[:, None] >= 0)) | (
        needle.fin[:, None] == hay.fin[None, :]
    )
    return np.where(same, 0.0, np.where(near, NEAR_MISS, 1.0))


def _last_row(cost: np.ndarray) -> np.ndarray:
    """Sellers' table, one vectorised row at a time: a free start anywhere in the text (first row 0),
    and insertions along the text folded in with a running minimum (cur[j] = min_k cur[j-k] + k)."""
    m, n = cost.shape
    prev = np.zeros(n + 1)
    steps = np.arange(n + 1, dtype=float)
    for i in range(m):
        cur = np.empty(n + 1)
        cur[0] = i + 1
        cur[1:] = np.minimum(prev[:-1] + cost[i], prev[1:] + 1.0)
        prev = np.minimum.accumulate(cur - steps) + steps
    return prev


def best_substring(needle: Sequence[str] | Sounds, hay: Sequence[str] | Sounds) -> tuple[float, int, int]:
    """Weighted edit distance from ``needle`` to its closest stretch of ``hay``, and that stretch
    (start, end). The end comes from the last row of the table; the start from the same table run
    backwards over the text up to that end."""
    a = needle if isinstance(needle, Sounds) else Sounds.of(needle)
    b = hay if isinstance(hay, Sounds) else Sounds.of(hay)
    cost = _costs(a, b)
    row = _last_row(cost)
    end = int(np.flatnonzero(row == row.min())[-1])
    back = _last_row(cost[::-1, :end][:, ::-1])
    start = end - int(np.flatnonzero(back == back.min())[0])
    return float(row[end]), start, end


@dataclass(frozen=True)
class Match:
    """One phrase found in one text: where (character offsets, end exclusive) and how closely.
    A phrase found only by spotting spans the whole text and says so."""

    phrase: str
    start: int
    end: int
    similarity: float
    spotted: bool = False


class Heard(Protocol):
    """A turn as the matcher reads it: its text and, from the pipeline, its spotted phrases."""

    @property
    def text(self) -> str: ...

    @property
    def spotted(self) -> Mapping[str, float] | None: ...


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
        min_spotted: float = MIN_SPOTTED,
        min_spotted_short: float = MIN_SPOTTED_SHORT,
    ) -> None:
        if min_spotted >= 0 or min_spotted_short >= 0:
            raise ValueError("spotting limits are log-probabilities below the best path: negative")
        self.min_spotted, self.min_spotted_short = min_spotted, min_spotted_short
        self.phrases = list(phrases)
        self.patterns = [re.compile(p) for p in patterns]
        self.fuzzy = fuzzy_pinyin
        self.min_similarity = min_similarity
        syls = [syllables(p, fuzzy_pinyin)[0] for p in self.phrases]
        for phrase, s in zip(self.phrases, syls, strict=True):
            if not s:
                raise ValueError(f"phrase {phrase!r} has no Chinese characters, letters or digits")
        self._keys = [tuple(s) for s in syls]
        self._sounds = [Sounds.of(s) for s in syls]
        self._seen: dict[str, list[tuple[str, int, int, float, bool]]] = {}

    def __bool__(self) -> bool:
        return bool(self.phrases or self.patterns)

    def _scan(self, text: str) -> list[tuple[str, int, int, float, bool]]:
        """(phrase, start, end, similarity, matched) for every phrase, however far from the text;
        remembered per text, since several rules and the features ask about the same turns."""
        if text not in self._seen:
            if len(self._seen) > 4096:
                self._seen.clear()
            self._seen[text] = list(self._compute(text))
        return self._seen[text]

    def _compute(self, text: str) -> Iterable[tuple[str, int, int, float, bool]]:
        for p in self.patterns:
            for m in p.finditer(text):
                yield m.group(0), m.start(), m.end(), 1.0, True
        if not self.phrases:
            return
        syls, offsets = _syllables(text, self.fuzzy)
        if not syls:
            return
        hay = Sounds.of(syls)
        for phrase, key, sounds in zip(self.phrases, self._keys, self._sounds, strict=True):
            m = len(key)
            if len(phrase) == 1:
                at = text.find(phrase)
                if at >= 0:
                    yield phrase, at, at + 1, 1.0, True
                continue
            d, a, b = best_substring(sounds, hay)
            sim = max(0.0, 1.0 - d / m)
            ok = b > a and (d == 0 if m <= EXACT_UP_TO else d <= m * (1.0 - self.min_similarity) + 1e-9)
            yield phrase, offsets[a] if b > a else 0, offsets[b - 1] + 1 if b > a else 0, sim, ok

    def _spotted(self, turn: str | Heard) -> Iterable[tuple[str, float, bool]]:
        """(phrase, similarity, counts) for each of this list's phrases the turn's spotting scored."""
        scores = None if isinstance(turn, str) else turn.spotted
        if not scores:
            return
        for phrase, key in zip(self.phrases, self._keys, strict=True):
            score = scores.get(phrase)
            if score is None or len(phrase) == 1:
                continue
            limit = self.min_spotted_short if len(key) <= EXACT_UP_TO else self.min_spotted
            yield phrase, max(0.0, 1.0 + score / -limit * (1.0 - self.min_similarity)), score >= limit

    def find(self, turn: str | Heard) -> list[Match]:
        """Every phrase (at most once each, its best place) and every pattern match in a text, or in a
        turn's text and its spotted phrases."""
        text = turn if isinstance(turn, str) else turn.text
        found = [Match(p, a, b, round(sim, 3)) for p, a, b, sim, ok in self._scan(text) if ok]
        seen = {m.phrase for m in found}
        found += [
            Match(p, 0, len(text), round(sim, 3), spotted=True)
            for p, sim, ok in self._spotted(turn)
            if ok and p not in seen
        ]
        return found

    def best(self, turn: str | Heard) -> float:
        """The closest any phrase comes to appearing in a text or turn (0 when nothing is near), so that
        a model can use "almost said it" as evidence where a threshold would throw it away."""
        text = turn if isinstance(turn, str) else turn.text
        near = [sim for *_, sim, _ok in self._scan(text)] + [sim for _, sim, _ok in self._spotted(turn)]
        return max(near, default=0.0)


def first_match(matcher: PhraseMatcher, turns: Iterable[str | Heard]) -> tuple[int, Match] | None:
    """The index of the first text or turn with a match, and its best match."""
    for i, turn in enumerate(turns):
        found = matcher.find(turn)
        if found:
            return i, max(found, key=lambda m: m.similarity)
    return None
