"""Simulated inspectors (质检员): each scores calls with their own severity, blind spots and drift.

Real inspector labels are noisy in known ways (DOMAIN.md): some inspectors deduct more than others,
some items are easy to miss (speech rate, tone) and others hard to miss (a forbidden phrase), and an
inspector's attention drifts over the weeks. The corpus reproduces those effects so that models can be
evaluated against a consensus and against the inspectors' own agreement, as with real data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import numpy as np

from callqa.data.rubric import Rubric
from callqa.data.schema import Inspection

#: How easy an item is to miss when listening once: text you can't overlook vs prosody you can.
ITEM_MISS_BASE: dict[str, float] = {
    "greeting": 0.06,
    "verification": 0.12,
    "polite": 0.18,
    "forbidden": 0.03,
    "interruption": 0.22,
    "speech_rate": 0.3,
    "silence": 0.12,
    "emotion": 0.25,
    "deescalation": 0.2,
    "resolution": 0.12,
    "closing": 0.08,
    "confidentiality": 0.05,
}
_DEFAULT_MISS = 0.15

#: What an inspector writes next to a deduction.
ITEM_COMMENT: dict[str, str] = {
    "greeting": "开场未报工号或开场白不规范",
    "verification": "未核实客户身份即办理业务",
    "polite": "未使用礼貌用语",
    "forbidden": "使用服务禁用语",
    "interruption": "抢话，打断客户",
    "speech_rate": "语速过快或过慢",
    "silence": "长时间静音未告知客户",
    "emotion": "服务态度生硬，情绪不耐烦",
    "deescalation": "客户情绪激动未安抚",
    "resolution": "未给出明确解决方案",
    "closing": "结束语不规范",
    "confidentiality": "完整复述客户敏感信息",
}


@dataclass(frozen=True)
class InspectorProfile:
    """One simulated inspector. ``lead`` reviews appeals and is the most careful."""

    id: str
    severity: float  # multiplies partial deductions; > 1 deducts more
    attention: float  # multiplies every item's miss rate; < 1 misses less
    false_alarm: float  # chance per clean item of a wrong deduction
    drift_per_week: float  # added to every miss rate per week since the corpus began
    role: str = "inspector"

    def miss_rate(self, item: str, week: float) -> float:
        base = ITEM_MISS_BASE.get(item, _DEFAULT_MISS)
        return float(np.clip(base * self.attention + self.drift_per_week * week, 0.0, 0.95))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def make_inspectors(rng: np.random.Generator, n: int) -> list[InspectorProfile]:
    """``n`` inspectors whose biases spread from lenient to severe, plus the QA lead who hears appeals."""
    severities = np.linspace(0.7, 1.35, n)
    rng.shuffle(severities)
    team = [
        InspectorProfile(
            id=f"QA{i + 1:02d}",
            severity=round(float(severities[i]), 3),
            attention=round(float(rng.uniform(0.6, 1.8)), 3),
            false_alarm=round(float(rng.uniform(0.005, 0.04)), 4),
            drift_per_week=round(float(rng.choice([0.0, rng.uniform(0.003, 0.012)])), 4),
        )
        for i in range(n)
    ]
    lead = InspectorProfile(
        "QA-LEAD", severity=1.0, attention=0.3, false_alarm=0.0, drift_per_week=0.0, role="lead"
    )
    return [*team, lead]


def score_call(
    inspector: InspectorProfile,
    rubric: Rubric,
    defects: set[str],
    week: float,
    at: datetime,
    kind: str,
    rng: np.random.Generator,
) -> Inspection:
    """Fill one scoring sheet for a call whose true defects are ``defects``."""
    items: dict[str, float] = {}
    fatal: list[str] = []
    for item in rubric.items:
        if item.id in defects:
            if rng.random() < inspector.miss_rate(item.id, week):
                continue
            if item.fatal:
                fatal.append(item.id)
                items[item.id] = item.points
            else:
                share = inspector.severity * rng.uniform(0.5, 1.0)
                items[item.id] = float(np.clip(round(item.points * share), 1, item.points))
        elif not item.fatal and rng.random() < inspector.false_alarm * inspector.severity:
            items[item.id] = float(min(item.points, rng.integers(1, 4)))
    comment = "；".join(f"{ITEM_COMMENT.get(k, k)}（-{v:g}）" for k, v in items.items())
    return Inspection(
        inspector_id=inspector.id,
        at=at,
        items=items,
        fatal=fatal,
        total=rubric.total(items, fatal),
        comment=comment,
        kind=kind,
    )


def _sheet(
    who: InspectorProfile,
    kind: str,
    hours: float,
    *,
    call: dict[str, Any],
    rubric: Rubric,
    corpus_start: datetime,
    rng: np.random.Generator,
) -> Inspection:
    """One inspector's sheet for a call, ``hours`` after it ended, with drift by weeks since the start."""
    at = call["started_at"] + timedelta(hours=hours)
    week = (at - corpus_start).total_seconds() / (7 * 86400)
    return score_call(who, rubric, call["defects"], week, at, kind, rng)


def inspect_calls(
    rng: np.random.Generator,
    rubric: Rubric,
    inspectors: list[InspectorProfile],
    calls: list[dict[str, Any]],
    corpus_start: datetime,
    calibration_fraction: float,
    recheck_rate: float,
    appeal_rate: float,
) -> list[list[Inspection]]:
    """Score every call: most by one inspector, a calibration subset by all; low scores are sometimes
    re-checked by another inspector, and some agents appeal to the lead.

    ``calls`` carry ``started_at`` (datetime) and ``defects`` (set); returns inspections per call.
    """
    team = [i for i in inspectors if i.role == "inspector"]
    lead = next(i for i in inspectors if i.role == "lead")
    out: list[list[Inspection]] = []
    for call in calls:
        sheet = partial(_sheet, call=call, rubric=rubric, corpus_start=corpus_start, rng=rng)
        if rng.random() < calibration_fraction:
            sheets = [sheet(who, "calibration", float(rng.uniform(24, 96))) for who in team]
        else:
            first = team[int(rng.integers(len(team)))]
            sheets = [sheet(first, "sample", float(rng.uniform(1, 72)))]
            if sheets[0].total < 80 and rng.random() < recheck_rate:
                other = [w for w in team if w.id != first.id]
                sheets.append(
                    sheet(other[int(rng.integers(len(other)))], "recheck", float(rng.uniform(72, 120)))
                )
        if sheets[-1].total < 80 and rng.random() < appeal_rate:
            sheets.append(sheet(lead, "appeal", float(rng.uniform(120, 240))))
        out.append(sheets)
    return out
