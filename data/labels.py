"""Training labels from inspector sheets that are noisy, sparse and sometimes overturned.

Most calls are scored once; a calibration subset by every inspector; low scores are re-checked by a
second inspector and some go to appeal, where the QA lead decides. Each inspector misses some defects
and invents others at their own rates (DOMAIN.md). So a call's label per rubric item is built as:

1. The inspectors' sheets (first inspections and calibration) are pooled with a **Dawid–Skene** model
   per item: every inspector has a sensitivity (flags a real defect) and a specificity (leaves a clean
   call alone), learnt by EM over all calls at once, and each call gets the posterior probability of a
   defect. A lenient inspector's "no" counts for less than a strict one's; a careless one's "yes" too.
2. A **re-check** is a later, deliberate second look: its decision replaces the first inspection's.
3. An **appeal** is decided by the QA lead and replaces everything before it.

``first_inspection_labels`` gives the naive alternative (the first sheet only), so that the gain of the
above can be measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from callqa.data.rubric import Rubric
from callqa.data.schema import CallRecord, Inspection

#: Sheets that are independent looks at a call, pooled by Dawid–Skene.
POOLED_KINDS = ("sample", "calibration")
#: Later decisions that replace the pooled label, weakest first.
OVERRIDE_KINDS = ("recheck", "appeal")


def flagged(sheet: Inspection, item: str) -> bool:
    return item in sheet.fatal or sheet.items.get(item, 0.0) > 0


@dataclass
class RaterModel:
    """Dawid–Skene for one item: each rater's sensitivity and specificity, and the defect rate."""

    item: str
    prevalence: float
    sensitivity: dict[str, float]
    specificity: dict[str, float]
    iterations: int


@dataclass
class CallLabels:
    """One call's labels: P(defect) per item, the hard decision, its source and the points at stake."""

    call_id: str
    probability: dict[str, float]
    defect: dict[str, bool]
    source: dict[str, str]
    points: dict[str, float] = field(default_factory=dict)
    #: Log-likelihood ratio (defect : clean) of the pooled sheets under the rater model, for a learner
    #: that brings its own prior (see training/qa_linear.py); absent for overridden items.
    evidence: dict[str, float] = field(default_factory=dict)


#: Prior beliefs about an inspector, as pseudo-counts added to every rater's tallies: a deduction is a
#: deliberate act, so false alarms are rare (specificity about 0.97), while misses are common (about one
#: defect in five goes unheard). Without them, a few hundred mostly single-sheet calls leave the
#: estimates loose enough that one inspector's lone "defect" is voted down for the whole corpus.
PRIOR_SENSITIVITY = 0.8
PRIOR_SPECIFICITY = 0.97
PRIOR_STRENGTH = 10.0


def dawid_skene(
    votes: Sequence[dict[str, bool]], item: str = "", iterations: int = 100, strength: float = PRIOR_STRENGTH
) -> tuple[np.ndarray, RaterModel]:
    """Posterior P(defect) per call from ``votes`` (per call: rater -> flagged), and the rater model.

    Maximum a posteriori EM with the Beta priors above (``strength`` pseudo-counts each); calls without
    votes get the prevalence.
    """
    raters = sorted({r for v in votes for r in v})
    idx = {r: k for k, r in enumerate(raters)}
    n, m = len(votes), len(raters)
    flags = np.full((n, m), np.nan)
    for i, v in enumerate(votes):
        for r, f in v.items():
            flags[i, idx[r]] = float(f)
    seen = ~np.isnan(flags)
    f = np.nan_to_num(flags)
    counts = seen.sum(1)
    post = np.where(counts > 0, f.sum(1) / np.maximum(counts, 1), 0.0)  # majority vote to start
    sens = np.full(m, 0.8)
    spec = np.full(m, 0.9)
    prev = 0.5
    done = 0
    for done in range(1, iterations + 1):  # noqa: B007  (the count of iterations is reported)
        prev = float(np.clip(post[counts > 0].mean() if counts.any() else 0.5, 1e-3, 1 - 1e-3))
        w1 = post[:, None] * seen
        w0 = (1 - post)[:, None] * seen
        sens = ((w1 * f).sum(0) + strength * PRIOR_SENSITIVITY) / (w1.sum(0) + strength)
        spec = ((w0 * (1 - f)).sum(0) + strength * PRIOR_SPECIFICITY) / (w0.sum(0) + strength)
        log1 = np.log(prev) + (seen * (f * np.log(sens) + (1 - f) * np.log(1 - sens))).sum(1)
        log0 = np.log(1 - prev) + (seen * (f * np.log(1 - spec) + (1 - f) * np.log(spec))).sum(1)
        new = 1.0 / (1.0 + np.exp(np.clip(log0 - log1, -50, 50)))
        if np.max(np.abs(new - post)) < 1e-6:
            post = new
            break
        post = new
    model = RaterModel(
        item,
        prev,
        {r: round(float(sens[k]), 4) for r, k in idx.items()},
        {r: round(float(spec[k]), 4) for r, k in idx.items()},
        done,
    )
    return post, model


def log_likelihood_ratio(votes: dict[str, bool], model: RaterModel) -> float:
    """How much a call's sheets favour "defect" over "clean", given each rater's sensitivity and
    specificity: a strict rater's "no" weighs little against a defect, a careful rater's "yes" a lot."""
    out = 0.0
    for r, f in votes.items():
        sens, spec = model.sensitivity[r], model.specificity[r]
        out += float(np.log(sens / (1 - spec)) if f else np.log((1 - sens) / spec))
    return out


def _by_time(sheets: Sequence[Inspection]) -> list[Inspection]:
    return sorted(sheets, key=lambda s: s.at)


def resolved_labels(
    calls: Sequence[CallRecord], rubric: Rubric, overrides: bool = True
) -> tuple[list[CallLabels], dict[str, RaterModel]]:
    """Labels for every call with at least one sheet: Dawid–Skene over the pooled sheets, then the
    latest re-check or appeal in its place (unless ``overrides`` is False)."""
    scored = [c for c in calls if c.inspections]
    out = [CallLabels(c.id, {}, {}, {}) for c in scored]
    models: dict[str, RaterModel] = {}
    for item in rubric.ids:
        votes = [
            {s.inspector_id: flagged(s, item) for s in c.inspections if s.kind in POOLED_KINDS}
            for c in scored
        ]
        post, models[item] = dawid_skene(votes, item)
        for lab, call, p, v in zip(out, scored, post, votes, strict=True):
            lab.probability[item], lab.defect[item], lab.source[item] = float(p), bool(p >= 0.5), "pooled"
            lab.evidence[item] = log_likelihood_ratio(v, models[item])
            later = [s for s in _by_time(call.inspections) if s.kind in OVERRIDE_KINDS] if overrides else []
            if later:
                lab.evidence.pop(item)
                final = later[-1]
                lab.defect[item] = flagged(final, item)
                lab.probability[item] = 1.0 if lab.defect[item] else 0.0
                lab.source[item] = final.kind
            lab.points[item] = _points(call.inspections, item, rubric) if lab.defect[item] else 0.0
    return out, models


def first_inspection_labels(calls: Sequence[CallRecord], rubric: Rubric) -> list[CallLabels]:
    """The naive labels: whatever the first sheet of each call says."""
    out = []
    for c in calls:
        if not c.inspections:
            continue
        first = _by_time(c.inspections)[0]
        defect = {i: flagged(first, i) for i in rubric.ids}
        out.append(
            CallLabels(
                c.id,
                {i: float(d) for i, d in defect.items()},
                defect,
                dict.fromkeys(rubric.ids, first.kind),
                {i: (first.items.get(i, rubric[i].points) if d else 0.0) for i, d in defect.items()},
            )
        )
    return out


def _points(sheets: Sequence[Inspection], item: str, rubric: Rubric) -> float:
    """Points lost for a defect: the mean deduction of the sheets that flagged it (full points when
    only a fatal flag or an override says so)."""
    lost = [s.items.get(item, rubric[item].points) for s in sheets if flagged(s, item)]
    return float(np.mean(lost)) if lost else float(rubric[item].points)
