"""What is in a corpus: counts and hours per split, defect rates per rubric item (true and inspected),
the score distribution in the rubric's bands, the emotion mix per speaker, and CSAT against the score.

The inspected defect rate of an item is over each call's first primary inspection (so calibration calls
are not counted several times); the true rate is over all calls with ground truth.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable

import numpy as np
from scipy import stats as sps

from callqa.data.constants import EMOTIONS, SPEAKERS, SPLITS
from callqa.data.corpus import Corpus
from callqa.data.schema import CallRecord, Utterance
from callqa.evaluation.corpus_inspections import (
    deducted,
    first_inspection,
    is_calibration,
    primary_inspections,
    truth_total,
)
from callqa.evaluation.corpus_results import Counts, CsatStats, ItemRates, ScoreStats, finite, share

log = logging.getLogger(__name__)

#: Label for turns or utterances without an emotion, and for records without a split.
UNLABELLED = "unlabelled"
UNASSIGNED = "unassigned"
#: Width of the score histogram bins, in points.
HIST_BIN = 2.0


def split_of(x: CallRecord | Utterance) -> str:
    return x.split or UNASSIGNED


def split_keys(values: Iterable[str]) -> list[str]:
    present = set(values)
    return [s for s in (*SPLITS, UNASSIGNED) if s in present]


def count_corpus(corpus: Corpus) -> Counts:
    calls = corpus.calls
    call_hours: defaultdict[str, float] = defaultdict(float)
    for c in calls:
        call_hours[split_of(c)] += c.duration / 3600.0
    utt_hours: defaultdict[str, float] = defaultdict(float)
    for u in corpus.utterances:
        utt_hours[split_of(u)] += u.duration / 3600.0
    by_call = Counter(split_of(c) for c in calls)
    by_utt = Counter(split_of(u) for u in corpus.utterances)
    mono = sum(1 for c in calls if c.channels == "mono")
    return Counts(
        calls={s: by_call[s] for s in split_keys(by_call)},
        calls_total=len(calls),
        utterances={s: by_utt[s] for s in split_keys(by_utt)},
        coverage_utterances=len(corpus.coverage),
        call_hours=sum(call_hours.values()),
        call_hours_by_split={s: call_hours[s] for s in split_keys(call_hours)},
        utterance_hours={s: utt_hours[s] for s in split_keys(utt_hours)},
        coverage_hours=sum(u.duration for u in corpus.coverage) / 3600.0,
        mono_calls=mono,
        stereo_calls=len(calls) - mono,
        inspections=sum(len(c.inspections) for c in calls),
        inspected_calls=sum(1 for c in calls if c.inspections),
        calibration_calls=sum(1 for c in calls if is_calibration(c)),
        calls_with_csat=sum(1 for c in calls if c.survey is not None and c.survey.csat is not None),
        calls_with_truth=sum(1 for c in calls if c.truth is not None),
    )


# ---------------------------------------------------------------------------------------------- items


def item_rates(corpus: Corpus) -> list[ItemRates]:
    """Per rubric item: how often the defect is really there and how often the first inspector deducted."""
    truth_calls = [c for c in corpus.calls if c.truth is not None]
    firsts = [(c, i) for c in corpus.calls if (i := first_inspection(c)) is not None]
    splits = split_keys(split_of(c) for c in corpus.calls)
    out = []
    for item in corpus.rubric.items:
        out.append(
            ItemRates(
                id=item.id,
                name_zh=item.name_zh,
                name_en=item.name_en or item.id,
                points=item.points,
                fatal=item.fatal,
                true_rate=share(item.id in c.truth.defects for c in truth_calls),
                inspected_rate=share(deducted(i, item.id) for _, i in firsts),
                true_rate_by_split={
                    s: share(item.id in c.truth.defects for c in truth_calls if split_of(c) == s)
                    for s in splits
                },
                inspected_rate_by_split={
                    s: share(deducted(i, item.id) for c, i in firsts if split_of(c) == s) for s in splits
                },
            )
        )
    _warn_unknown_items(corpus)
    return out


def _warn_unknown_items(corpus: Corpus) -> None:
    """Item ids outside the rubric are ignored by the rates; say so once rather than drop them silently."""
    known = set(corpus.rubric.ids)
    unknown: set[str] = set()
    for c in corpus.calls:
        for insp in c.inspections:
            unknown |= (set(insp.items) | set(insp.fatal)) - known
        if c.truth is not None:
            unknown |= set(c.truth.defects) - known
    if unknown:
        log.warning("%s: item ids not in the rubric are ignored: %s", corpus.dir, sorted(unknown))


# --------------------------------------------------------------------------------------------- scores


def score_stats(corpus: Corpus) -> ScoreStats:
    """Distribution of each call's first primary total, in the rubric's own bands."""
    rubric = corpus.rubric
    totals = np.array([i.total for c in corpus.calls if (i := first_inspection(c)) is not None], dtype=float)
    bands = Counter(rubric.band(t) for t in totals)
    edges = np.arange(0.0, 100.0 + HIST_BIN, HIST_BIN)
    hist, _ = np.histogram(totals, bins=edges)
    truths = [truth_total(rubric, c.truth.defects) for c in corpus.calls if c.truth is not None]
    n = int(totals.size)
    return ScoreStats(
        n=n,
        mean=finite(totals.mean()) if n else None,
        median=finite(np.median(totals)) if n else None,
        std=finite(totals.std(ddof=1)) if n > 1 else None,
        band_min={b.name: b.min for b in rubric.bands},
        band_counts={b.name: bands[b.name] for b in rubric.bands},
        band_shares={b.name: (bands[b.name] / n if n else None) for b in rubric.bands},
        hist_edges=[float(e) for e in edges],
        hist_counts=[int(h) for h in hist],
        truth_mean=finite(np.mean(truths)) if truths else None,
    )


def emotion_mix(corpus: Corpus) -> dict[str, dict[str, int]]:
    """Turn counts per speaker and emotion; unlabelled turns are counted, not hidden."""
    mix: dict[str, Counter[str]] = {s: Counter() for s in SPEAKERS}
    for c in corpus.calls:
        for t in c.turns:
            mix[t.speaker][t.emotion or UNLABELLED] += 1
    labels = [*EMOTIONS, UNLABELLED]
    return {s: {e: counts[e] for e in labels if e in counts or e != UNLABELLED} for s, counts in mix.items()}


def mean_primary_total(call: CallRecord) -> float | None:
    primary = primary_inspections(call)
    return float(np.mean([i.total for i in primary.values()])) if primary else None


def csat_stats(corpus: Corpus) -> CsatStats:
    """CSAT shares and whether customers' satisfaction tracks the inspectors' scores at all."""
    csat = {c.id: c.survey.csat for c in corpus.calls if c.survey is not None and c.survey.csat is not None}
    counts = Counter(csat.values())
    pairs = [
        (csat[c.id], t) for c in corpus.calls if c.id in csat and (t := mean_primary_total(c)) is not None
    ]
    rho = p = None
    if len(pairs) >= 3:
        x, y = np.array(pairs, dtype=float).T
        if np.ptp(x) > 0 and np.ptp(y) > 0:
            res = sps.spearmanr(x, y)
            rho, p = finite(res.statistic), finite(res.pvalue)
    return CsatStats(
        counts={str(k): counts[k] for k in range(1, 6)},
        n=len(csat),
        mean=finite(np.mean(list(csat.values()))) if csat else None,
        n_paired=len(pairs),
        spearman_vs_total=rho,
        p_value=p,
    )
