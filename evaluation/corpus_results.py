"""The results of ``callqa corpus stats`` as plain dataclasses, with their JSON round trip.

Undefined statistics are None (never NaN), so JSON, tables and plots all read one missing marker.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin, get_type_hints

import numpy as np

from callqa.evaluation.agreement import PairAgreement, RaterBias
from callqa.evaluation.corpus_inspections import MIN_CALIBRATION_INSPECTORS

NOTES = [
    "primary score = an inspector's earliest sample/calibration inspection of a call; "
    "rechecks and appeals are counted but not scored",
    f"calibration call = primary scores from >= {MIN_CALIBRATION_INSPECTORS} distinct inspectors",
    "inspected rate = share of calls whose first primary inspection deducted the item "
    "(points lost > 0 or fatal)",
    "bias < 0 means harsher than the reference; CIs are 95 % percentile bootstrap over calls",
]


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


def finite(x: float | np.floating | None) -> float | None:
    """Undefined statistics are None in results, so JSON, tables and plots all read one missing marker."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def share(flags: Iterable[bool]) -> float | None:
    values = list(flags)
    return sum(values) / len(values) if values else None
