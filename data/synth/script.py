"""The dialogue plan of one call: which sentence each speaker says, in which emotion, given its defects.

Text-level defects (missing 工号, no identity check, curt wording, forbidden phrases, reading back a full
number, no resolution, no closing, an angry customer left unsoothed, an impatient agent) are decided
here. Timing defects (interruption, dead air) and speech rate depend on real durations and are placed
after synthesis (see timeline.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from callqa.data.constants import AGENT, CUSTOMER
from callqa.data.synth.colloquial import roughen
from callqa.data.synth.slots import fill
from callqa.data.synth.templates import TemplateBank

#: Customer moods when not angry: mostly calm, some pleased, worried or taken aback.
_CALM_CUSTOMER = (("neutral", 0.7), ("happy", 0.1), ("sad", 0.1), ("surprise", 0.1))
#: Share of calls whose customer runs the problem and its details into one long opening turn.
LONG_TURN_RATE = 0.15
#: Share of calls with a bare 嗯/对 from the customer after the agent's answer (the shortest turns).
BACKCHANNEL_RATE = 0.3


@dataclass
class PlannedTurn:
    speaker: str
    kind: str
    template_id: str
    text: str
    emotion: str


@dataclass
class CallPlan:
    scenario: str
    split: str
    defects: set[str]
    customer_angry: bool
    hold: bool
    turns: list[PlannedTurn] = field(default_factory=list)


class _Writer:
    """Appends turns to a plan, tracking how each speaker currently feels."""

    def __init__(self, rng: np.random.Generator, bank: TemplateBank, plan: CallPlan, slots: dict[str, str]):
        self.rng, self.bank, self.plan, self.slots = rng, bank, plan, slots
        self.customer_mood = "angry" if plan.customer_angry else self.calm_mood()
        self.agent_cold = False

    def calm_mood(self) -> str:
        names, probs = zip(*_CALM_CUSTOMER, strict=True)
        return str(self.rng.choice(names, p=probs))

    def agent_emotion(self) -> str:
        if self.agent_cold and self.rng.random() < 0.7:
            return "angry"
        return "happy" if self.rng.random() < 0.25 else "neutral"

    def say(self, speaker: str, kind: str, emotion: str | None = None, then: str | None = None) -> None:
        """One turn of ``kind``; ``then`` runs a sentence of another kind on in the same breath."""
        if emotion is None:
            emotion = self.agent_emotion() if speaker == AGENT else self.customer_mood
        t = self.bank.pick(self.rng, speaker, kind, self.plan.split, self.plan.scenario)
        text = roughen(self.rng, speaker, kind, fill(t.id, t.text, self.slots))
        if then is not None:
            more = self.bank.pick(self.rng, speaker, then, self.plan.split, self.plan.scenario)
            tail = roughen(self.rng, speaker, then, fill(more.id, more.text, self.slots))
            text = text.rstrip("。？！，") + "，" + tail
        self.plan.turns.append(PlannedTurn(speaker, kind, t.id, text, emotion))


def plan_call(
    rng: np.random.Generator,
    bank: TemplateBank,
    scenario: str,
    split: str,
    defects: set[str],
    customer_angry: bool,
    hold: bool,
    slots: dict[str, str],
) -> CallPlan:
    """Write the call as an inspector would hear it, step by step through the scoring sheet."""
    if "deescalation" in defects:
        customer_angry = True  # only an angry customer can be left unsoothed
    plan = CallPlan(scenario, split, set(defects), customer_angry, hold)
    w = _Writer(rng, bank, plan, slots)
    curt = "polite" in defects

    w.say(AGENT, "greeting_bad" if "greeting" in defects else "greeting")
    w.agent_cold = "emotion" in defects
    w.say(CUSTOMER, "issue", then="detail" if rng.random() < LONG_TURN_RATE else None)
    if customer_angry and rng.random() < 0.7:
        w.say(CUSTOMER, "complain")
    if (customer_angry or scenario == "complaint") and not curt:
        w.say(AGENT, "apology")
    if customer_angry and "deescalation" not in defects:
        w.say(AGENT, "soothe")
        w.customer_mood = w.calm_mood()

    if "verification" not in defects:
        w.say(AGENT, "verify_curt" if curt else "verify")
        w.say(CUSTOMER, "verify_answer")
        if "confidentiality" not in defects and rng.random() < 0.5:
            w.say(AGENT, "confirm_masked")
            w.say(CUSTOMER, "ack")
    w.say(AGENT, "probe_curt" if curt else "probe")
    w.say(CUSTOMER, "detail")
    if "confidentiality" in defects:
        w.say(AGENT, "leak")
        w.say(CUSTOMER, "ack")
    if "emotion" in defects:
        w.say(AGENT, "impatient", "angry")
    if hold:
        w.say(AGENT, "hold")
        w.say(AGENT, "hold_return")
    if "forbidden" in defects:
        w.say(CUSTOMER, "followup" if rng.random() < 0.5 else "complain")
        w.say(AGENT, "forbidden")

    w.say(AGENT, "unresolved" if "resolution" in defects else "resolve")
    if rng.random() < BACKCHANNEL_RATE:
        w.say(CUSTOMER, "backchannel")
    if rng.random() < 0.5:
        w.say(CUSTOMER, "followup")
        w.say(AGENT, "unresolved" if "resolution" in defects else "resolve")
    if w.customer_mood == "angry":
        w.say(CUSTOMER, "still_angry")
    else:
        w.say(CUSTOMER, "ack" if curt or rng.random() < 0.4 else "thanks")

    if "closing" in defects:
        w.say(AGENT, "closing_bad")
    else:
        w.say(AGENT, "anything_else")
        w.say(CUSTOMER, "no_more")
        w.say(AGENT, "farewell")
    return plan
