"""How well scored records (``callqa score``'s lines, or the server's answers) agree with the
inspectors' consensus and with the truth of a labelled corpus.

Measured as ``callqa evaluate qa`` measures a model, so the two figures can sit side by side: the
record's total against the consensus total of the calls at least three inspectors scored, and the
total that counts only which items were flagged against the same total of the truth's defects. A
call the scorer did not judge (no speech heard) is counted, not given a made-up score.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from callqa.data.corpus import Corpus
from callqa.data.scores import CallScore
from callqa.evaluation.qa_metrics import N_BOOT, total_metrics
from callqa.evaluation.qa_refs import consensus, decision_total


def score_agreement(corpus: Corpus, scores: Mapping[str, CallScore], n_boot: int = N_BOOT) -> dict[str, Any]:
    """Agreement of the judged records in ``scores`` (by call id) with the corpus's references."""
    rubric = corpus.rubric
    minimums = [b.min for b in rubric.bands]
    calls = [c for c in corpus.calls if c.id in scores]
    judged = [c for c in calls if scores[c.id].judged]
    out: dict[str, Any] = {
        "calls": len(calls),
        "not_judged": sorted(c.id for c in calls if not scores[c.id].judged),
    }
    cons = consensus(judged)
    if cons.call_ids:
        totals = np.array([scores[c].total for c in cons.call_ids], dtype=float)
        out["vs_consensus"] = total_metrics(totals, cons.totals(), minimums, n_boot)
    with_truth = [c for c in judged if c.truth is not None]
    if with_truth:
        flagged = [{i.item for i in scores[c.id].items if i.defect} for c in with_truth]
        model = np.array([decision_total(rubric, f) for f in flagged])
        truth = np.array([decision_total(rubric, c.truth.defects) for c in with_truth])  # type: ignore[union-attr]
        out["vs_truth"] = total_metrics(model, truth, minimums, n_boot)
    return out
