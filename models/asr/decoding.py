"""CTC decoding in NumPy: greedy and prefix beam search with optional hotword biasing and n-gram fusion.

NumPy only, because the scoring server decodes onnxruntime output without torch. Hotwords are domain
words (product names, 工号 phrases) the acoustic model tends to get nearly right: while a beam prefix is
spelling one of them, each matching character earns a bonus, taken back if the word is abandoned
half-way, so biasing helps finished words without dragging beams into wrong ones.

Shallow fusion adds ``lm_weight`` times a character n-gram's log-probability of each prefix
(``callqa.models.asr.lm``) and ``length_bonus`` nats per token, which offsets the language model's
preference for short outputs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from callqa.models.asr.lm import BOS, CharNgram

NEG_INF = -np.inf
#: Shallow-fusion defaults, tuned on the quickstart's dev split: 0.4 for an n-gram of the corpus's text
#: alone (bench/lm_fusion.py), 0.6 since it also counts real written Chinese (training/lm.py).
LM_WEIGHT = 0.6
LENGTH_BONUS = 1.0


def greedy_ids(log_probs: np.ndarray, blank: int = 0) -> list[int]:
    """Best path: argmax per frame, repeats merged, blanks dropped. ``log_probs`` is (frames, vocab)."""
    best = np.argmax(log_probs, axis=-1)
    keep = np.ones_like(best, dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(i) for i in best[keep & (best != blank)]]


def _logaddexp(a: float, b: float) -> float:
    return float(np.logaddexp(a, b))


@dataclass(frozen=True)
class Hotwords:
    """Token-id sequences to favour, with a bonus in nats per matched token."""

    words: tuple[tuple[int, ...], ...]
    bonus: float = 1.5

    def progress(self, prefix: tuple[int, ...]) -> int:
        """Length of the longest unfinished hotword start that the end of ``prefix`` is spelling now
        (finished words are counted separately)."""
        best = 0
        for word in self.words:
            for k in range(min(len(word) - 1, len(prefix)), 0, -1):
                if prefix[-k:] == word[:k]:
                    best = max(best, k)
                    break
        return best


def prefix_beam_search(
    log_probs: np.ndarray,
    beam: int = 8,
    blank: int = 0,
    hotwords: Hotwords | None = None,
    prune: float = -12.0,
    lm: LmFusion | None = None,
) -> list[tuple[list[int], float]]:
    """CTC prefix beam search over a (frames, vocab) log-probability matrix.

    Returns up to ``beam`` (token ids, score) pairs, best first. Each frame's candidates are its
    ``2 * beam`` likeliest tokens within ``prune`` nats of its best, which keeps the search fast on large
    vocabularies and on the flat outputs of an untrained model.
    """
    # prefix -> (log P ending in blank, log P ending in non-blank)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    fusion = _Fusion(lm) if lm is not None else None

    def extra(prefix: tuple[int, ...], final: bool = False) -> float:
        return _bias(prefix, hotwords, final) + (fusion(prefix) if fusion else 0.0)

    for frame in log_probs:
        likeliest = np.argpartition(frame, -min(2 * beam, len(frame)))[-2 * beam :]
        top = likeliest[frame[likeliest] >= frame.max() + prune]
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            for t in top:
                p = float(frame[t])
                if t == blank:
                    e = nxt[prefix]
                    e[0] = _logaddexp(e[0], total + p)
                    continue
                last = prefix[-1] if prefix else None
                extended = (*prefix, int(t))
                e = nxt[extended]
                e[1] = _logaddexp(e[1], (pb if t == last else total) + p)
                if t == last:  # the repeat collapses into the same prefix unless a blank separated it
                    s = nxt[prefix]
                    s[1] = _logaddexp(s[1], pnb + p)
        scored = sorted(nxt.items(), key=lambda kv: -(_logaddexp(*kv[1]) + extra(kv[0])))
        beams = {k: (v[0], v[1]) for k, v in scored[:beam]}
    ranked = sorted(
        ((list(k), _logaddexp(*v) + extra(k, final=True)) for k, v in beams.items()),
        key=lambda kv: -kv[1],
    )
    return ranked


@dataclass(frozen=True)
class LmFusion:
    """A language model and how much it counts: ``weight`` times its log-probability of a prefix plus
    ``length_bonus`` nats per token."""

    lm: CharNgram
    weight: float = LM_WEIGHT
    length_bonus: float = LENGTH_BONUS


class _Fusion:
    """The fused score of each prefix, built on its parent's (each beam prefix extends one that was
    scored the frame before)."""

    def __init__(self, fusion: LmFusion):
        self.fusion = fusion
        self.scores: dict[tuple[int, ...], float] = {(): 0.0}

    def __call__(self, prefix: tuple[int, ...]) -> float:
        score = self.scores.get(prefix)
        if score is None:
            f, n = self.fusion, self.fusion.lm.order - 1
            context = ((BOS,) * n + prefix[:-1])[len(prefix) - 1 :] if n else ()
            score = self(prefix[:-1]) + f.weight * f.lm.logp(context, prefix[-1]) + f.length_bonus
            self.scores[prefix] = score
        return score


def _bias(prefix: tuple[int, ...], hotwords: Hotwords | None, final: bool = False) -> float:
    """Bonus for completed hotwords in ``prefix`` plus, while searching, the one being spelled now."""
    if hotwords is None or not prefix:
        return 0.0
    done = 0
    for word in hotwords.words:
        n = len(word)
        done += sum(n for i in range(len(prefix) - n + 1) if prefix[i : i + n] == word)
    partial = 0 if final else hotwords.progress(prefix)
    return hotwords.bonus * (done + partial)


def hotwords_from_text(words: Sequence[str], encode, bonus: float = 1.5) -> Hotwords:
    """Build hotwords with a tokenizer's ``encode``; empty or all-unknown words are skipped."""
    seqs = tuple(tuple(ids) for ids in (encode(w) for w in words) if ids and all(i > 1 for i in ids))
    return Hotwords(seqs, bonus)
