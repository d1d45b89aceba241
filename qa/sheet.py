"""From verdicts to a scoring sheet: points lost per item, fatal vetoes, total and band."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from callqa.data.constants import FULL_MARKS
from callqa.data.rubric import Rubric
from callqa.data.scores import CallScore, ItemScore, RubricRef, RuleEvent
from callqa.models.qa.base import QaModel
from callqa.models.qa.features import call_features
from callqa.qa.rules import RuleSet
from callqa.qa.rules.base import Verdict
from callqa.qa.timeline import CallView

log = logging.getLogger(__name__)


def rule_items(rubric: Rubric, verdicts: Mapping[str, Verdict]) -> list[ItemScore]:
    """Score each item from its rule alone: a defect loses the item's points. The probability is the
    rule's confidence turned into P(defect), so rules and models report on one scale."""
    items = []
    for item in rubric.items:
        v = verdicts[item.id]
        p = (v.confidence if v.defect else 1.0 - v.confidence) if v.judged else 0.0
        items.append(
            ItemScore(
                item=item.id,
                defect=v.defect,
                probability=round(p, 3),
                points_lost=item.points if v.defect else 0.0,
                fatal=item.fatal and v.defect,
                expected_points_lost=round(item.points * p, 3),
                source="rules",
                explanation=[e.detail for e in v.events] or ([v.reason] if v.reason else []),
                judged=v.judged,
            )
        )
    return items


def sheet(call_id: str, rubric: Rubric, items: list[ItemScore], events: list[RuleEvent]) -> CallScore:
    fatal = [i.item for i in items if i.fatal]
    total = rubric.total({i.item: i.points_lost for i in items}, fatal)
    fatal_ids = {i.id for i in rubric.items if i.fatal}
    survive = 1.0
    for i in items:
        if i.item in fatal_ids:
            survive *= 1.0 - i.probability
    lost = sum(i.expected_points_lost for i in items if i.item not in fatal_ids)
    return CallScore(
        id=call_id,
        rubric=RubricRef(name=rubric.name, version=rubric.version),
        items=items,
        events=events,
        total=round(total, 2),
        expected_total=round(min(FULL_MARKS, max(0.0, survive * (FULL_MARKS - lost))), 2),
        band=rubric.band(total),
        fatal=fatal,
    )


def model_items(
    rubric: Rubric,
    model: QaModel,
    view: CallView,
    features: Mapping[str, float],
    verdicts: Mapping[str, Verdict],
) -> list[ItemScore]:
    """Score each item from the QA model; an item the model does not know falls back to its rule, a
    fatal item the rule finds is a defect whatever the model says, and one it does not find is not.
    The explanation lists the rule's findings first, then what weighed most in the model."""
    fallback = {i.item: i for i in rule_items(rubric, verdicts)}
    predicted = model.predict_items(view, features)
    items = []
    for item in rubric.items:
        m = predicted.get(item.id)
        if m is None:
            items.append(fallback[item.id])
            continue
        p = m.probability
        defect = p >= m.threshold
        v = verdicts.get(item.id)
        if v is not None and v.judged and v.defect and (item.fatal or v.stands):
            # a fatal finding of the rule stands whatever the model says: the model learnt from
            # transcripts of one recogniser, and a veto an inspector can check in seconds (the event
            # says where) costs less than a forbidden phrase let through; so does a finding its
            # detector is sure of
            p, defect = max(p, fallback[item.id].probability), True
        elif v is not None and v.judged and item.fatal:
            # and a fatal item the rule did not find is no veto: zeroing a call needs evidence an
            # inspector can check, not a pattern of gaps and anger (the quickstart's model, trained on
            # 200 calls, flagged confidentiality in a call without a single number read back)
            defect = False
        items.append(
            ItemScore(
                item=item.id,
                defect=defect,
                probability=round(p, 4),
                points_lost=round(min(item.points, m.points), 2) if defect else 0.0,
                fatal=item.fatal and defect,
                expected_points_lost=round(min(item.points, m.points) * p, 3),
                source=model.kind,
                explanation=[e.detail for e in (v.events if v else [])] + m.reasons,
            )
        )
    return items


def check_model_rubric(model: QaModel, rubric: Rubric, source: str) -> None:
    """A model scores the items it was trained on: refuse a rubric whose items it does not know."""
    missing = [i for i in rubric.ids if i not in model.item_ids]
    if missing:
        raise ValueError(
            f"{source}: the QA model was trained for rubric {model.rubric.get('name')!r} "
            f"(items {sorted(model.item_ids)}); this rubric's {missing} are unknown to it"
        )
    trained_with = model.rubric.get("rules")
    if trained_with and trained_with != rubric.rules_fingerprint():
        log.warning(
            "%s: its rule settings (phrase lists, thresholds) differ from those the QA model was trained "
            "with; the rule features will not mean what they meant in training: retrain it",
            source,
        )


def unjudgeable(view: CallView) -> str | None:
    """Why a call cannot be judged, or None. A recording with no words in it (silence, noise, a dead
    line) or none from the agent would otherwise score as a string of missing greetings and closings:
    a made-up figure that would go into the averages. Such a call goes to a person instead."""
    if not any(t.text.strip() for t in view.turns):
        return "no speech was heard: the call was not judged"
    if view.roles_known and not any(t.text.strip() for t in view.agent):
        return "no speech on the agent's channel (check the channel mapping): the call was not judged"
    return None


def not_judged(call_id: str, rubric: Rubric, reason: str) -> CallScore:
    items = [
        ItemScore(
            item=i.id, defect=False, probability=0.0, points_lost=0.0, judged=False, explanation=[reason]
        )
        for i in rubric.items
    ]
    return CallScore(
        id=call_id,
        rubric=RubricRef(name=rubric.name, version=rubric.version),
        items=items,
        total=None,
        band=None,
        judged=False,
        warnings=[reason],
    )


def judge_call(view: CallView, rules: RuleSet, model: QaModel | None = None) -> CallScore:
    """The whole judgement of one heard call: every rule, then the model (or the rules alone), then the
    sheet. Unmasked: masking belongs to whoever shows the result (``callqa score``, the server)."""
    reason = unjudgeable(view)
    if reason is not None:
        return not_judged(view.id, rules.rubric, reason)
    verdicts = rules.judge(view)
    if model is not None:
        items = model_items(rules.rubric, model, view, call_features(view, verdicts), verdicts)
    else:
        items = rule_items(rules.rubric, verdicts)
    events = [e for v in verdicts.values() for e in v.events]
    return sheet(view.id, rules.rubric, items, events)
