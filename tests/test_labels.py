"""Inspector labels: Dawid-Skene recovers raters from sparse sheets; re-checks and appeals override."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from callqa.data.labels import dawid_skene, first_inspection_labels, resolved_labels
from callqa.data.rubric import load_rubric
from callqa.data.schema import CallRecord, Inspection


def test_dawid_skene_recovers_the_raters_and_beats_the_single_sheet() -> None:
    rng = np.random.default_rng(0)
    sens, spec = [0.95, 0.85, 0.6, 0.9, 0.75], [0.99, 0.97, 0.99, 0.9, 0.98]
    votes, truth, first = [], [], []
    for _ in range(3000):
        d = bool(rng.random() < 0.15)
        raters = range(5) if rng.random() < 0.2 else [int(rng.integers(5))]
        v = {f"r{r}": bool(rng.random() < sens[r]) if d else bool(rng.random() > spec[r]) for r in raters}
        votes.append(v)
        truth.append(d)
        first.append(next(iter(v.values())))
    post, model = dawid_skene(votes, "x")
    truth_a = np.array(truth)
    assert abs(model.prevalence - 0.15) < 0.03
    assert model.sensitivity["r2"] < model.sensitivity["r0"] - 0.2  # the careless rater is found out
    assert model.specificity["r3"] < model.specificity["r0"] - 0.05  # and the trigger-happy one
    assert ((post >= 0.5) == truth_a).mean() > (np.array(first) == truth_a).mean()


def _sheet(who: str, kind: str, hours: int, items: dict[str, float]) -> Inspection:
    return Inspection(
        inspector_id=who,
        at=datetime(2026, 1, 1) + timedelta(hours=hours),
        items=items,
        total=100 - sum(items.values()),
        kind=kind,
    )


def _call(cid: str, sheets: list[Inspection]) -> CallRecord:
    return CallRecord(
        id=cid,
        audio="a.wav",
        sample_rate=8000,
        channels="mono",
        duration=10.0,
        agent_id="A1",
        started_at=datetime(2026, 1, 1),
        inspections=sheets,
    )


def test_an_appeal_replaces_the_first_sheet_and_first_labels_do_not() -> None:
    rubric = load_rubric()
    calls = [
        _call("c1", [_sheet("QA01", "sample", 1, {"polite": 6}), _sheet("QA-LEAD", "appeal", 9, {})]),
        _call("c2", [_sheet("QA02", "sample", 1, {}), _sheet("QA03", "recheck", 5, {"closing": 4})]),
        *[_call(f"n{i}", [_sheet(f"QA0{1 + i % 3}", "sample", 1, {})]) for i in range(20)],
    ]
    resolved = {lab.call_id: lab for lab in resolved_labels(calls, rubric)[0]}
    first = {lab.call_id: lab for lab in first_inspection_labels(calls, rubric)}
    assert first["c1"].defect["polite"] and not resolved["c1"].defect["polite"]
    assert resolved["c1"].source["polite"] == "appeal"
    assert resolved["c2"].defect["closing"] and resolved["c2"].points["closing"] == 4
    assert not first["c2"].defect["closing"]


def test_the_model_prior_revives_a_defect_one_careless_inspector_missed() -> None:
    from callqa.data.labels import RaterModel, log_likelihood_ratio
    from callqa.training.qa_linear import _with_prior

    raters = RaterModel(
        "speech_rate", 0.13, {"careless": 0.4, "careful": 0.95}, {"careless": 0.98, "careful": 0.98}, 10
    )
    missed_by_careless = log_likelihood_ratio({"careless": False}, raters)
    missed_by_careful = log_likelihood_ratio({"careful": False}, raters)
    assert missed_by_careful < missed_by_careless < 0  # a careful "no" weighs more
    prior = np.array([0.9, 0.9, 0.9])
    evidence = np.array([missed_by_careless, missed_by_careful, 0.0])
    fixed = np.array([False, False, True])  # the last was settled on appeal
    post = _with_prior(prior, evidence, fixed, np.array([0.1, 0.1, 0.0]))
    assert post[0] > 0.5 > post[1] and post[2] == 0.0
