"""Each inspector against the others and against the truth: workload, bias with bootstrap CIs, miss and
false-alarm rates per item, and drift over the weeks.

Bias vs consensus is leave-one-out on calibration calls; bias vs truth compares every primary total with
the truth score. Drift is the least-squares slope of an inspector's signed error per week since the
corpus's first inspection, against truth when the corpus has it and against the consensus otherwise.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from scipy import stats as sps

from callqa.data.constants import INSPECTION_KINDS
from callqa.data.corpus import Corpus
from callqa.evaluation.agreement import (
    RaterBias,
    bias_from_differences,
    bias_vs_consensus,
    leave_one_out_differences,
)
from callqa.evaluation.corpus_inspections import (
    MIN_CALIBRATION_INSPECTORS,
    deducted,
    primary_inspections,
    primary_scores,
    truth_total,
    utc,
)
from callqa.evaluation.corpus_results import DriftStats, InspectorStats, WeeklyError, finite, share

SECONDS_PER_WEEK = 7 * 24 * 3600.0


def _weeks_since(at: datetime, origin: datetime) -> float:
    return (utc(at) - origin).total_seconds() / SECONDS_PER_WEEK


def drift(errors: list[tuple[float, float]], basis: str) -> DriftStats | None:
    """Slope of signed error per week and the weekly means behind it; None without any error."""
    if not errors:
        return None
    weeks = np.array([w for w, _ in errors])
    err = np.array([e for _, e in errors])
    slope = None
    if len(errors) >= 3 and np.ptp(weeks) > 0:
        slope = finite(sps.linregress(weeks, err).slope)
    buckets: defaultdict[int, list[float]] = defaultdict(list)
    for w, e in errors:
        buckets[math.floor(w)].append(e)
    weekly = [WeeklyError(week=k, mean=float(np.mean(v)), n=len(v)) for k, v in sorted(buckets.items())]
    return DriftStats(basis=basis, n=len(errors), slope_per_week=slope, weeks=weekly)


@dataclass
class _InspectorData:
    """What one inspector did, gathered in one pass over the calls."""

    kinds: Counter[str] = field(default_factory=Counter)
    truth_errors: list[tuple[float, float]] = field(default_factory=list)
    flags_on_defect: defaultdict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    flags_on_clean: defaultdict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))


def _gather_inspectors(corpus: Corpus, origin: datetime) -> dict[str, _InspectorData]:
    data: defaultdict[str, _InspectorData] = defaultdict(_InspectorData)
    for c in corpus.calls:
        for insp in c.inspections:
            data[insp.inspector_id].kinds[insp.kind] += 1
        if c.truth is None:
            continue
        true_total = truth_total(corpus.rubric, c.truth.defects)
        for inspector, insp in primary_inspections(c).items():
            d = data[inspector]
            d.truth_errors.append((_weeks_since(insp.at, origin), insp.total - true_total))
            for item in corpus.rubric.ids:
                bucket = d.flags_on_defect if item in c.truth.defects else d.flags_on_clean
                bucket[item].append(deducted(insp, item))
    return dict(data)


def _consensus_errors(corpus: Corpus, origin: datetime) -> dict[str, list[tuple[float, float]]]:
    """(week, leave-one-out difference) per inspector on calibration calls, for drift without truth."""
    at = {(c.id, r): i.at for c in corpus.calls for r, i in primary_inspections(c).items()}
    diffs = leave_one_out_differences(primary_scores(corpus.calls), MIN_CALIBRATION_INSPECTORS)
    return {
        r: sorted((_weeks_since(at[(u, r)], origin), d) for u, d in per_unit.items())
        for r, per_unit in diffs.items()
    }


def inspector_stats(corpus: Corpus, n_boot: int = 1000, seed: int = 0) -> list[InspectorStats]:
    """Per inspector: workload by kind, bias (vs consensus and vs truth), misses and drift."""
    stamps = [utc(i.at) for c in corpus.calls for i in c.inspections]
    if not stamps:
        return []
    origin = min(stamps)
    gathered = _gather_inspectors(corpus, origin)
    consensus = bias_vs_consensus(primary_scores(corpus.calls), MIN_CALIBRATION_INSPECTORS, n_boot, seed)
    consensus_errors = _consensus_errors(corpus, origin)
    return [
        InspectorStats(
            id=inspector,
            inspections=sum(d.kinds.values()),
            inspections_by_kind={k: d.kinds[k] for k in INSPECTION_KINDS},
            bias_vs_consensus=_clean_bias(consensus.get(inspector)),
            bias_vs_truth=_truth_bias(inspector, d, n_boot, seed),
            miss_rate=_flag_shares(d.flags_on_defect, corpus.rubric.ids, missed=True)
            if d.truth_errors
            else {},
            false_alarm_rate=_flag_shares(d.flags_on_clean, corpus.rubric.ids) if d.truth_errors else {},
            drift=drift(d.truth_errors, "truth")
            if d.truth_errors
            else drift(consensus_errors.get(inspector, []), "consensus"),
            profile=dict(corpus.profiles.get(inspector, {})),
        )
        for inspector, d in sorted(gathered.items())
    ]


def _truth_bias(inspector: str, d: _InspectorData, n_boot: int, seed: int) -> RaterBias | None:
    if not d.truth_errors:
        return None
    return _clean_bias(bias_from_differences(inspector, [e for _, e in d.truth_errors], n_boot, seed))


def _flag_shares(
    flags: Mapping[str, list[bool]], ids: list[str], missed: bool = False
) -> dict[str, float | None]:
    """Share of flagged (with ``missed``: unflagged) sheets per item; None where an item never came up."""
    return {i: share((not f) if missed else f for f in flags.get(i, [])) for i in ids}


def _clean_bias(b: RaterBias | None) -> RaterBias | None:
    if b is None:
        return None
    return dataclasses.replace(b, bias=finite(b.bias), ci_low=finite(b.ci_low), ci_high=finite(b.ci_high))
