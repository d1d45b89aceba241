"""Numbers that describe a heard call for the QA models: the timeline, the emotions and every rule's
own evidence. Plain Python over a :class:`CallView`, so the scoring server computes the same numbers
the model was trained on without torch.

Each rule contributes its decision, its confidence and the features behind it (``item.key``), so the
model can learn, for instance, that a phrase matched at 0.7 similarity by a noisy recogniser is
usually the phrase. The timeline features are the same for every item.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from callqa.qa.rules.base import Verdict
from callqa.qa.timeline import CallView, Said


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def _angry(turns: list[Said]) -> list[float]:
    return [p for t in turns if (p := t.prob("angry")) is not None]


def timeline_features(view: CallView) -> dict[str, float]:
    agent, customer = view.agent, view.customer
    talk_a = sum(t.duration for t in agent)
    talk_c = sum(t.duration for t in customer)
    gaps = [b - a for a, b in view.gaps()]
    third = max(1, len(customer) // 3)
    angry_c, angry_a = _angry(customer), _angry(agent)
    # The call's length and number of turns are left out on purpose: in the synthetic corpus a defect
    # changes the script and with it the length, and a model that learnt "long calls are clean" put
    # every 3-minute hand-written call in the top band.
    return {
        "call.agent_share": talk_a / max(talk_a + talk_c, 1e-6),
        "call.longest_gap": max(gaps, default=0.0),
        "call.gaps_over_3s": float(sum(g > 3.0 for g in gaps)),
        "call.agent_angry_max": max(angry_a, default=0.0),
        "call.agent_angry_mean": _mean(angry_a),
        "call.customer_angry_start": _mean(_angry(customer[:third])),
        "call.customer_angry_end": _mean(_angry(customer[-third:])),
        "call.customer_angry_max": max(angry_c, default=0.0),
        "call.has_emotion": float(view.has_emotion),
    }


def rule_features(verdicts: Mapping[str, Verdict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item, v in verdicts.items():
        out[f"{item}.judged"] = float(v.judged)
        out[f"{item}.defect"] = float(v.defect)
        out[f"{item}.p"] = (v.confidence if v.defect else 1.0 - v.confidence) if v.judged else 0.0
        for key, value in v.features.items():
            out[f"{item}.{key}"] = value if math.isfinite(value) else 0.0
    return out


def call_features(view: CallView, verdicts: Mapping[str, Verdict]) -> dict[str, float]:
    return timeline_features(view) | rule_features(verdicts)


def item_feature_names(item: str, names: list[str]) -> list[str]:
    """The features an item's model reads: the timeline's and its own rule's."""
    return [n for n in names if n.startswith("call.") or n.startswith(f"{item}.")]
