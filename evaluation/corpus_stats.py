"""What is in a call corpus, and how much its inspector labels can be trusted.

``callqa corpus stats DIR`` runs :func:`corpus_stats_report`. The same statistics are computed for a
synthetic corpus and for a real centre's export: ground truth (``truth``) and simulated inspector profiles
(``inspectors.json``) only add figures, never gate them.

Choices worth knowing (they are also in the ``notes`` of every :class:`CorpusStats`):

* An inspector's *primary* score of a call is their earliest ``sample`` or ``calibration`` inspection of it.
  Re-checks see the model's flags and appeals follow the agent's argument, so they measure another process;
  they are counted per inspector but left out of bias, agreement, drift and rates.
* A *calibration call* has primary scores from at least three distinct inspectors.
* The inspected defect rate of an item is over each call's first primary inspection (so calibration calls
  are not counted several times); the true rate is over all calls with ground truth.
* Bias vs consensus is leave-one-out on calibration calls; bias vs truth compares every primary total with
  the truth score (every true defect loses its full points, fatal defects zero the call).
* Drift is the least-squares slope of an inspector's signed error per week since the corpus's first
  inspection, against truth when the corpus has it and against the consensus otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import types
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import numpy as np
from scipy import stats as sps

from callqa.data.constants import EMOTIONS, INSPECTION_KINDS, SPEAKERS, SPLITS
from callqa.data.rubric import Rubric, load_rubric
from callqa.data.schema import CallRecord, Inspection, Utterance, read_calls, read_utterances
from callqa.evaluation.agreement import (
    PairAgreement,
    RaterBias,
    bias_from_differences,
    bias_vs_consensus,
    interval_alpha_ci,
    krippendorff_alpha,
    leave_one_out_differences,
    pairwise_agreement,
    score_matrix,
)

log = logging.getLogger(__name__)

#: Inspection kinds that are an inspector's own first judgement of a call.
PRIMARY_KINDS = ("sample", "calibration")
#: Distinct inspectors that make a call a calibration call.
MIN_CALIBRATION_INSPECTORS = 3
#: Label for turns or utterances without an emotion, and for records without a split.
UNLABELLED = "unlabelled"
UNASSIGNED = "unassigned"
#: Width of the score histogram bins, in points.
HIST_BIN = 2.0
SECONDS_PER_WEEK = 7 * 24 * 3600.0
#: What the report keeps from corpus.json: enough to tell which corpus, generator and seed it describes.
INFO_KEYS = ("name", "preset", "seed", "generator_version", "fingerprint", "counts")

NOTES = [
    "primary score = an inspector's earliest sample/calibration inspection of a call; "
    "rechecks and appeals are counted but not scored",
    f"calibration call = primary scores from >= {MIN_CALIBRATION_INSPECTORS} distinct inspectors",
    "inspected rate = share of calls whose first primary inspection deducted the item "
    "(points lost > 0 or fatal)",
    "bias < 0 means harsher than the reference; CIs are 95 % percentile bootstrap over calls",
]


# ----------------------------------------------------------------------------------------------- results


@dataclass
class Counts:
    calls: dict[str, int]
    calls_total: int
    utterances: dict[str, int]
    coverage_utterances: int
    call_hours: float
    call_hours_by_split: dict[str, float]
    utterance_hours: dict[str, float]
    coverage_hours: float
    mono_calls: int
    stereo_calls: int
    inspections: int
    inspected_calls: int
    calibration_calls: int
    calls_with_csat: int
    calls_with_truth: int


@dataclass
class ItemRates:
    id: str
    name_zh: str
    name_en: str
    points: float
    fatal: bool
    true_rate: float | None
    inspected_rate: float | None
    true_rate_by_split: dict[str, float | None]
    inspected_rate_by_split: dict[str, float | None]


@dataclass
class ScoreStats:
    n: int
    mean: float | None
    median: float | None
    std: float | None
    band_min: dict[str, float]
    band_counts: dict[str, int]
    band_shares: dict[str, float | None]
    hist_edges: list[float]
    hist_counts: list[int]
    truth_mean: float | None


@dataclass
class CsatStats:
    counts: dict[str, int]
    n: int
    mean: float | None
    n_paired: int
    spearman_vs_total: float | None
    p_value: float | None


@dataclass
class WeeklyError:
    week: int
    mean: float
    n: int


@dataclass
class DriftStats:
    basis: str
    n: int
    slope_per_week: float | None
    weeks: list[WeeklyError]


@dataclass
class InspectorStats:
    id: str
    inspections: int
    inspections_by_kind: dict[str, int]
    bias_vs_consensus: RaterBias | None
    bias_vs_truth: RaterBias | None
    miss_rate: dict[str, float | None]
    false_alarm_rate: dict[str, float | None]
    drift: DriftStats | None
    profile: dict[str, Any] = field(default_factory=dict)


@dataclass
class AgreementStats:
    calibration_calls: int
    inspectors: list[str]
    alpha_total: float | None
    alpha_total_ci: list[float] | None
    item_alpha: dict[str, float | None]
    pairwise: list[PairAgreement]
    mean_pairwise_spearman: float | None


@dataclass
class CorpusStats:
    """Everything ``callqa corpus stats`` reports; plain data, so it serialises and reloads losslessly."""

    corpus: str
    info: dict[str, Any]
    has_truth: bool
    has_inspector_profiles: bool
    counts: Counts
    items: list[ItemRates]
    scores: ScoreStats
    emotions: dict[str, dict[str, int]]
    csat: CsatStats
    inspectors: list[InspectorStats]
    agreement: AgreementStats
    notes: list[str] = field(default_factory=lambda: list(NOTES))

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict: NaN and infinities become null so strict parsers (and browsers) accept it."""
        return _json_safe(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CorpusStats:
        """Rebuild from :meth:`to_json` output (a saved ``stats.json``) to re-render without recomputing."""
        return _from_plain(cls, data)


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def _from_plain(tp: Any, value: Any) -> Any:
    """Inverse of ``asdict`` for the dataclasses above, guided by their type hints."""
    if value is None:
        return None
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        return _from_plain(options[0], value) if len(options) == 1 else value
    if dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        kwargs = {
            f.name: _from_plain(hints[f.name], value[f.name])
            for f in dataclasses.fields(tp)
            if f.name in value
        }
        return tp(**kwargs)
    if origin is list:
        (arg,) = get_args(tp)
        return [_from_plain(arg, v) for v in value]
    if origin is dict:
        _, arg = get_args(tp)
        return {k: _from_plain(arg, v) for k, v in value.items()}
    return value


def _num(x: float | np.floating | None) -> float | None:
    """Undefined statistics are None in results, so JSON, tables and plots all read one missing marker."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _rate(flags: Iterable[bool]) -> float | None:
    values = list(flags)
    return sum(values) / len(values) if values else None


# ----------------------------------------------------------------------------------------------- loading


@dataclass
class Corpus:
    """A corpus folder as read from disk; the optional files are empty when absent."""

    dir: Path
    info: dict[str, Any]
    rubric: Rubric
    calls: list[CallRecord]
    utterances: list[Utterance]
    coverage: list[Utterance]
    profiles: dict[str, dict[str, Any]]


def load_corpus_dir(dir: str | os.PathLike[str]) -> Corpus:
    """Read a corpus folder; only ``calls.jsonl`` is required, because a real export may have nothing else."""
    root = Path(dir)
    calls_path = root / "calls.jsonl"
    if not calls_path.is_file():
        raise FileNotFoundError(f"{root}: no calls.jsonl, so this is not a corpus folder")
    rubric_path = root / "rubric.yaml"
    rubric = load_rubric(rubric_path if rubric_path.is_file() else None)
    info = _read_json(root / "corpus.json", default={})
    profiles = _read_json(root / "inspectors.json", default=[])
    return Corpus(
        dir=root,
        info=info if isinstance(info, dict) else {},
        rubric=rubric,
        calls=read_calls(calls_path),
        utterances=_read_optional_utterances(root / "utterances.jsonl"),
        coverage=_read_optional_utterances(root / "coverage.jsonl"),
        profiles={str(p["id"]): p for p in profiles if isinstance(p, dict) and "id" in p},
    )


def _read_json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _read_optional_utterances(path: Path) -> list[Utterance]:
    if not path.is_file():
        log.info("%s not found; its counts are zero", path)
        return []
    return read_utterances(path)


# ----------------------------------------------------------------------------------- per-call primitives


def primary_inspections(call: CallRecord) -> dict[str, Inspection]:
    """Each inspector's earliest sample/calibration inspection of the call."""
    out: dict[str, Inspection] = {}
    for insp in sorted(call.inspections, key=lambda i: _utc(i.at)):
        if insp.kind in PRIMARY_KINDS and insp.inspector_id not in out:
            out[insp.inspector_id] = insp
    return out


def first_inspection(call: CallRecord) -> Inspection | None:
    primary = primary_inspections(call)
    return min(primary.values(), key=lambda i: _utc(i.at)) if primary else None


def is_calibration(call: CallRecord) -> bool:
    return len(primary_inspections(call)) >= MIN_CALIBRATION_INSPECTORS


def deducted(insp: Inspection, item_id: str) -> bool:
    """An inspector flagged an item when they took points off it or vetoed the call on it."""
    return insp.items.get(item_id, 0.0) > 0.0 or item_id in insp.fatal


def truth_total(rubric: Rubric, defects: Iterable[str]) -> float:
    """The score a perfect inspector gives: every true defect loses its full points, fatal ones veto."""
    known = [d for d in defects if d in rubric.ids]
    return rubric.total({d: rubric[d].points for d in known}, [d for d in known if rubric[d].fatal])


def _utc(dt: datetime) -> datetime:
    """Naive and aware timestamps mixed in one export must still compare; naive ones are taken as UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _split(x: CallRecord | Utterance) -> str:
    return x.split or UNASSIGNED


def split_keys(values: Iterable[str]) -> list[str]:
    present = set(values)
    return [s for s in (*SPLITS, UNASSIGNED) if s in present]


# ----------------------------------------------------------------------------------------------- counts


def count_corpus(corpus: Corpus) -> Counts:
    calls = corpus.calls
    call_hours: defaultdict[str, float] = defaultdict(float)
    for c in calls:
        call_hours[_split(c)] += c.duration / 3600.0
    utt_hours: defaultdict[str, float] = defaultdict(float)
    for u in corpus.utterances:
        utt_hours[_split(u)] += u.duration / 3600.0
    by_call = Counter(_split(c) for c in calls)
    by_utt = Counter(_split(u) for u in corpus.utterances)
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
    splits = split_keys(_split(c) for c in corpus.calls)
    out = []
    for item in corpus.rubric.items:
        out.append(
            ItemRates(
                id=item.id,
                name_zh=item.name_zh,
                name_en=item.name_en or item.id,
                points=item.points,
                fatal=item.fatal,
                true_rate=_rate(item.id in c.truth.defects for c in truth_calls),
                inspected_rate=_rate(deducted(i, item.id) for _, i in firsts),
                true_rate_by_split={
                    s: _rate(item.id in c.truth.defects for c in truth_calls if _split(c) == s)
                    for s in splits
                },
                inspected_rate_by_split={
                    s: _rate(deducted(i, item.id) for c, i in firsts if _split(c) == s) for s in splits
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
        mean=_num(totals.mean()) if n else None,
        median=_num(np.median(totals)) if n else None,
        std=_num(totals.std(ddof=1)) if n > 1 else None,
        band_min={b.name: b.min for b in rubric.bands},
        band_counts={b.name: bands[b.name] for b in rubric.bands},
        band_shares={b.name: (bands[b.name] / n if n else None) for b in rubric.bands},
        hist_edges=[float(e) for e in edges],
        hist_counts=[int(h) for h in hist],
        truth_mean=_num(np.mean(truths)) if truths else None,
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
            rho, p = _num(res.statistic), _num(res.pvalue)
    return CsatStats(
        counts={str(k): counts[k] for k in range(1, 6)},
        n=len(csat),
        mean=_num(np.mean(list(csat.values()))) if csat else None,
        n_paired=len(pairs),
        spearman_vs_total=rho,
        p_value=p,
    )


# ------------------------------------------------------------------------------------------ inspectors


def primary_scores(calls: Iterable[CallRecord]) -> dict[str, dict[str, float]]:
    """``{inspector: {call_id: primary total}}``, the shape every agreement function takes."""
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    for c in calls:
        for inspector, insp in primary_inspections(c).items():
            scores[inspector][c.id] = insp.total
    return dict(scores)


def _weeks_since(at: datetime, origin: datetime) -> float:
    return (_utc(at) - origin).total_seconds() / SECONDS_PER_WEEK


def drift(errors: list[tuple[float, float]], basis: str) -> DriftStats | None:
    """Slope of signed error per week and the weekly means behind it; None without any error."""
    if not errors:
        return None
    weeks = np.array([w for w, _ in errors])
    err = np.array([e for _, e in errors])
    slope = None
    if len(errors) >= 3 and np.ptp(weeks) > 0:
        slope = _num(sps.linregress(weeks, err).slope)
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
    stamps = [_utc(i.at) for c in corpus.calls for i in c.inspections]
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
    return {i: _rate((not f) if missed else f for f in flags.get(i, [])) for i in ids}


def _clean_bias(b: RaterBias | None) -> RaterBias | None:
    if b is None:
        return None
    return dataclasses.replace(b, bias=_num(b.bias), ci_low=_num(b.ci_low), ci_high=_num(b.ci_high))


# ------------------------------------------------------------------------------------------- agreement


def agreement_stats(corpus: Corpus, n_boot: int = 1000, seed: int = 0) -> AgreementStats:
    """Inspectors against each other: α on calibration totals and per-item flags, and every pair."""
    calibration = [c for c in corpus.calls if is_calibration(c)]
    scores = primary_scores(calibration)
    inspectors, _, matrix = score_matrix(scores)
    alpha = _num(krippendorff_alpha(matrix, "interval")) if calibration else None
    ci = [_num(v) for v in interval_alpha_ci(matrix, n=n_boot, seed=seed)] if alpha is not None else None
    pairs = pairwise_agreement(primary_scores(corpus.calls), min_common=3)
    rhos = [p.spearman for p in pairs if math.isfinite(p.spearman)]
    return AgreementStats(
        calibration_calls=len(calibration),
        inspectors=inspectors,
        alpha_total=alpha,
        alpha_total_ci=ci if ci and None not in ci else None,
        item_alpha={item: _item_alpha(calibration, item) for item in corpus.rubric.ids},
        pairwise=[
            dataclasses.replace(
                p, spearman=_num(p.spearman), mean_abs_diff=_num(p.mean_abs_diff), mean_diff=_num(p.mean_diff)
            )
            for p in pairs
        ],
        mean_pairwise_spearman=_num(np.mean(rhos)) if rhos else None,
    )


def _item_alpha(calibration: list[CallRecord], item: str) -> float | None:
    flags: dict[str, dict[str, float]] = defaultdict(dict)
    for c in calibration:
        for inspector, insp in primary_inspections(c).items():
            flags[inspector][c.id] = float(deducted(insp, item))
    if not flags:
        return None
    return _num(krippendorff_alpha(score_matrix(flags)[2], "nominal"))


# ----------------------------------------------------------------------------------------------- entry


def compute_corpus_stats(dir: str | os.PathLike[str], n_boot: int = 1000, seed: int = 0) -> CorpusStats:
    """All statistics of one corpus folder; ``n_boot`` resamples and ``seed`` fix every bootstrap CI."""
    corpus = load_corpus_dir(dir)
    log.info("corpus %s: %d calls, %d utterances", corpus.dir, len(corpus.calls), len(corpus.utterances))
    return CorpusStats(
        corpus=str(corpus.dir),
        info={k: v for k, v in corpus.info.items() if k in INFO_KEYS},
        has_truth=any(c.truth is not None for c in corpus.calls),
        has_inspector_profiles=bool(corpus.profiles),
        counts=count_corpus(corpus),
        items=item_rates(corpus),
        scores=score_stats(corpus),
        emotions=emotion_mix(corpus),
        csat=csat_stats(corpus),
        inspectors=inspector_stats(corpus, n_boot, seed),
        agreement=agreement_stats(corpus, n_boot, seed),
    )
