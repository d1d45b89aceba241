"""Keyword spotting on CTC posteriors: how close the acoustic model came to hearing each phrase.

A quality rubric hinges on a few dozen phrases (你烦不烦, 稍等, 投诉 ...), and a small recogniser on a
telephone line often has the right character as its second guess where the best path wrote a
homophone or worse: 你烦不烦 comes out as 您三不三. The transcript has thrown that evidence away; the
frame posteriors still hold it. For each phrase we find the best CTC alignment of its characters
anywhere in a segment (frames outside it are free) and score it by how much log-probability it gives
up against the best path over the frames it covers, per character. 0 means the phrase is the best
path; -1 means each character was on average e^-1 times as likely as the best guess at its frames.

Optionally the alignment runs on sounds rather than characters (``classes``: homophones share a class,
and a class's probability is the sum of its characters'): the recogniser spreads a syllable's
probability over the characters that sound alike (烦 凡 繁 反), and for a rubric, which is about what was
said aloud, any of them will do, as in the pinyin matching of the text (callqa.qa.match).

All phrases are aligned at once (padded to the longest), one frame at a time, so a segment costs one
NumPy loop over its frames whatever the length of the list. NumPy only: it runs in the scoring server.

A phrase can also be cut in two: by a short pause the voice-activity detector took for the end of a
turn (我也没办法，你自己 | 看着办), or by the cap on a segment's length. Neither half scores on its own.
So a segment keeps the spotting evidence of its first and last frames (:class:`Edges`, a few hundred
kilobytes at most, where whole posteriors would be megabytes), and :meth:`KeywordSpotter.bridge` aligns
the phrases over the end of one segment followed by the start of the next, keeping only alignments that
cross the cut.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

NEG = -1e9
#: Where posteriors are flat (noise, a codec failure, a voice the model cannot follow), most phrases
#: come close to the best path, which there is no better than a guess: spotting says nothing. On
#: qa-eval the noise segments of C000194 had 76 to 158 of the rubric's 211 phrases within -2 per
#: character; a segment that says 你烦不烦啊 brings every phrase with 你, 烦 or 不 near, and had 27;
#: over 863 segments of 60 qa-train calls the 99.9th percentile was 16. (The median phrase's score
#: does not separate them: -2.75 for 你烦不烦啊, -3.25 for noise.)
FLAT_SCORE = -2.0
FLAT_SHARE = 0.25
#: With fewer phrases than this the share says too little: never flat.
FLAT_MIN = 10


@dataclass(frozen=True)
class Spotted:
    """One phrase's best alignment in one segment: its score (<= 0, per character) and frame span."""

    phrase: str
    score: float
    start: int
    end: int


@dataclass(frozen=True)
class Edges:
    """A segment's spotting evidence (:meth:`KeywordSpotter.evidence`) at its two ends."""

    head: np.ndarray
    tail: np.ndarray


class KeywordSpotter:
    """Scores a fixed list of phrases against CTC log-posteriors ``(frames, vocab)``.

    Phrases with a character the model cannot write are left out (``skipped``): no alignment exists.
    ``classes`` gives each vocabulary id its sound class (the blank in a class of its own); without it
    each token is its own class.
    """

    def __init__(
        self,
        phrases: Sequence[str],
        encode: Callable[[str], list[int]],
        blank: int = 0,
        classes: Sequence[int] | None = None,
    ) -> None:
        self.phrases: list[str] = []
        self.skipped: list[str] = []
        seqs: list[list[int]] = []
        for p in dict.fromkeys(phrases):
            ids = encode(p)
            if ids and all(i > 1 for i in ids) and blank not in ids:
                self.phrases.append(p)
                seqs.append(ids)
            else:
                self.skipped.append(p)
        self.classes = None if classes is None else np.asarray(classes, dtype=np.int64)
        if self.classes is not None:
            if (self.classes == self.classes[blank]).sum() != 1:
                raise ValueError("the blank must be alone in its sound class")
            seqs = [[int(self.classes[i]) for i in s] for s in seqs]
            blank = int(self.classes[blank])
            # columns grouped by class, for summing each class's probability with one reduceat
            self._order = np.argsort(self.classes, kind="stable")
            sorted_classes = self.classes[self._order]
            self._starts = np.flatnonzero(np.r_[True, sorted_classes[1:] != sorted_classes[:-1]])
            self._class_ids = sorted_classes[self._starts]
        self.lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        n_states = 2 * int(self.lengths.max(initial=0)) + 1
        # CTC topology per phrase: blank, c1, blank, c2, ..., ck, blank; padding states repeat blank
        self.states = np.full((len(seqs), n_states), blank, dtype=np.int64)
        for k, s in enumerate(seqs):
            self.states[k, 1 : 2 * len(s) : 2] = s
        self.last = 2 * self.lengths  # the closing blank; the last character is one before it
        chars = self.states[:, 1::2]
        # a character may follow the one two states back directly unless they are the same character
        self.skip = np.zeros_like(self.states, dtype=bool)
        self.skip[:, 3::2] = chars[:, 1:] != chars[:, :-1]
        self.valid = np.arange(n_states)[None, :] <= self.last[:, None]
        # the evidence keeps one column per unit the phrases use; each state reads its unit's column
        self._units, self._columns = np.unique(self.states, return_inverse=True)
        self._columns = self._columns.reshape(self.states.shape)

    def __len__(self) -> int:
        return len(self.phrases)

    def evidence(self, log_probs: np.ndarray) -> np.ndarray:
        """(frames, units) how far below the frame's best guess each unit the phrases use lies (<= 0):
        all that spotting reads from the posteriors."""
        top = log_probs.max(axis=1)
        units = log_probs if self.classes is None else self._class_log_probs(log_probs, top)
        return np.minimum(units[:, self._units] - top[:, None], 0.0).astype(np.float32)

    def scores(self, log_probs: np.ndarray) -> list[Spotted]:
        """The best alignment of every phrase in ``log_probs`` (frames, vocab)."""
        return self.align(self.evidence(log_probs))

    def edges(self, evidence: np.ndarray, frames: int) -> Edges:
        """The first and last ``frames`` of a segment's evidence, kept for :meth:`bridge`."""
        return Edges(evidence[:frames].copy(), evidence[-frames:].copy())

    def flat(self, scores: Sequence[Spotted]) -> bool:
        """Whether so many phrases came near (more than a quarter of them) that the segment's
        posteriors cannot tell one phrase from another."""
        near = sum(s.score >= FLAT_SCORE for s in scores)
        return len(scores) >= FLAT_MIN and near > FLAT_SHARE * len(scores)

    def bridge(self, before: np.ndarray, after: np.ndarray, floor: float) -> list[Spotted]:
        """Phrases that start in ``before`` (the evidence at the end of one segment) and end in
        ``after`` (the start of the next), scoring at least ``floor``; spans are frames of the two
        joined. An alignment wholly on one side was already found in that segment."""
        cut = len(before)
        return [
            s
            for s in self.align(np.concatenate([before, after]))
            if s.score >= floor and s.start < cut < s.end
        ]

    def align(self, evidence: np.ndarray) -> list[Spotted]:
        """The best alignment of every phrase in a stretch of :meth:`evidence`."""
        n, t_max = len(self.phrases), evidence.shape[0]
        if n == 0 or t_max == 0:
            return []
        gap = np.where(self.valid[None], evidence[:, self._columns], NEG)  # (T, P, S), <= 0
        score = np.full(self.states.shape, NEG)
        begin = np.zeros(self.states.shape, dtype=np.int64)
        best = np.full(n, NEG)
        span = np.zeros((n, 2), dtype=np.int64)
        rows = np.arange(n)
        # the four ways into a state at each frame, in buffers reused frame after frame: a free start
        # (in the leading blank or the first character), staying, one step, or skipping a blank. The
        # free start comes first, so that on a tie (blank frames cost nothing) the span starts as late
        # as it can; cells no way reaches stay at NEG.
        cand = np.full((4, *self.states.shape), NEG)
        cand[0, :, :2] = 0.0
        at = np.zeros((4, *self.states.shape), dtype=np.int64)
        for t in range(t_max):
            cand[1] = score
            cand[2, :, 1:] = score[:, :-1]
            cand[3, :, 2:] = np.where(self.skip[:, 2:], score[:, :-2], NEG)
            at[0] = t
            at[1] = begin
            at[2, :, 1:] = begin[:, :-1]
            at[3, :, 2:] = begin[:, :-2]
            pick = cand.argmax(axis=0)[None]
            score = np.take_along_axis(cand, pick, 0)[0] + gap[t]
            begin = np.take_along_axis(at, pick, 0)[0]
            # the phrase may end at this frame, on its last character or the blank after it
            for end_state in (self.last, self.last - 1):
                s = score[rows, end_state]
                better = s > best
                best = np.where(better, s, best)
                span[better, 0] = begin[rows, end_state][better]
                span[better, 1] = t
        per_char = best / self.lengths
        return [
            Spotted(p, round(float(per_char[k]), 4), int(span[k, 0]), int(span[k, 1]) + 1)
            for k, p in enumerate(self.phrases)
        ]

    def _class_log_probs(self, log_probs: np.ndarray, top: np.ndarray) -> np.ndarray:
        """(frames, classes) log of each sound class's summed probability, indexed by class id."""
        summed = np.add.reduceat(np.exp(log_probs[:, self._order] - top[:, None]), self._starts, axis=1)
        out = np.full((log_probs.shape[0], int(self._class_ids.max()) + 1), NEG)
        out[:, self._class_ids] = np.log(summed) + top[:, None]
        return out
