"""A character n-gram language model for CTC shallow fusion, counted from training transcripts.

Mandarin has about 1,300 toned syllables for thousands of characters, so a character CTC model hears
公 and 工 the same; its attention learns some context, but on sentences built from unseen templates it
falls back on sound. An n-gram counted over the training text (call utterances and coverage sentences)
knows that 工 follows 员 and 号 follows 工, which is the context a homophone needs. Scores are
interpolated Kneser-Ney: absolute discounting, lower orders counted by how many contexts a sequence
follows rather than how often it occurs, so a frequent bigram inside one fixed phrase does not leak
into every other context.

Pure Python over token ids of the acoustic model's own tokenizer, saved as JSON beside the ONNX file,
so the torch-free serving path reads it too.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from callqa.data.files import atomic_path

BOS = -1  # pads the context at the start of an utterance


class CharNgram:
    """Interpolated Kneser-Ney n-gram over token ids; ``logp(context, token)`` in nats."""

    def __init__(self, order: int, vocab: list[str], counts: list[dict[tuple[int, ...], dict[int, int]]]):
        if order < 1 or len(counts) != order:
            raise ValueError(f"an order-{order} model needs {order} count tables, not {len(counts)}")
        self.order, self.vocab, self.counts = order, vocab, counts
        self.discount = 0.75
        self._totals = [{h: (sum(c.values()), len(c)) for h, c in table.items()} for table in counts]
        self.logp = lru_cache(maxsize=1 << 20)(self._logp)

    @classmethod
    def train(cls, sequences: Iterable[Sequence[int]], vocab: list[str], order: int = 3) -> CharNgram:
        """Count ``order``-grams of each id sequence (context padded with BOS) and the Kneser-Ney
        continuation counts of the lower orders."""
        raw = Counter()
        for seq in sequences:
            padded = [BOS] * (order - 1) + list(seq)
            raw.update(tuple(padded[i - order + 1 : i + 1]) for i in range(order - 1, len(padded)))
        grams: Counter = raw
        tables: list[dict[tuple[int, ...], dict[int, int]]] = []
        for _ in range(order):  # from the highest order down
            table: dict[tuple[int, ...], dict[int, int]] = defaultdict(dict)
            for g, c in grams.items():
                table[g[:-1]][g[-1]] = c
            tables.append(dict(table))
            if len(tables) == order:
                break
            # lower orders count the distinct left contexts a gram follows; one that starts an
            # utterance has no left context, so it keeps its plain count
            lower: Counter = Counter()
            for g, c in grams.items():
                shorter = g[1:]
                lower[shorter] += c if shorter[0] == BOS else 1
            grams = lower
        return cls(order, vocab, tables[::-1])

    def _logp(self, context: tuple[int, ...], token: int) -> float:
        return math.log(self._prob(context[len(context) - self.order + 1 :] if self.order > 1 else (), token))

    def _prob(self, context: tuple[int, ...], token: int) -> float:
        k = len(context)
        lower = 1.0 / len(self.vocab) if k == 0 else self._prob(context[1:], token)
        total = self._totals[k].get(context)
        if total is None:
            return lower
        count, types = total
        seen = self.counts[k][context].get(token, 0)
        return max(seen - self.discount, 0.0) / count + self.discount * types / count * lower

    def score(self, ids: Sequence[int]) -> float:
        """Log-probability of a whole id sequence from the start of an utterance."""
        padded = (BOS,) * (self.order - 1) + tuple(ids)
        n = self.order - 1
        return sum(self.logp(padded[i - n : i], padded[i]) for i in range(n, len(padded)))

    def save(self, path: str | os.PathLike[str]) -> Path:
        doc = {
            "kind": "callqa-char-ngram",
            "order": self.order,
            "vocab": self.vocab,
            "counts": [[[list(h), list(nxt.items())] for h, nxt in table.items()] for table in self.counts],
        }
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], vocab: list[str] | None = None) -> CharNgram:
        """Read a saved model; with ``vocab``, refuse one counted over another tokenizer's ids."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not a readable language model ({e})") from e
        if doc.get("kind") != "callqa-char-ngram":
            raise ValueError(f"{path}: not a callqa character n-gram (kind={doc.get('kind')!r})")
        if vocab is not None and doc["vocab"] != vocab:
            raise ValueError(f"{path}: counted over a different vocabulary from the acoustic model's")
        counts = [{tuple(h): dict(map(tuple, nxt)) for h, nxt in table} for table in doc["counts"]]
        return cls(doc["order"], doc["vocab"], counts)
