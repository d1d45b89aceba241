"""Detectors of how the call sounds: the agent's emotion and whether an angry customer was calmed."""

from __future__ import annotations

from pydantic import Field

from callqa.data.constants import AGENT, CUSTOMER
from callqa.qa.rules.base import Detector, Options, Phrases, Verdict, register
from callqa.qa.timeline import CallView, Said


class EmotionSettings(Options):
    #: Emotions that count against the agent.
    labels: list[str] = Field(default_factory=lambda: ["angry"])
    min_probability: float = Field(0.5, gt=0.0, le=1.0)
    #: How many such agent turns make a defect.
    min_turns: int = Field(1, ge=1)
    #: Impatient or cold wording, which counts like an angry turn.
    phrases: Phrases = Field(default_factory=Phrases)


@register
class AgentEmotion(Detector):
    """Agent turns that sound angry (from SER) or say impatient things."""

    name = "emotion"
    Settings = EmotionSettings

    def setup(self) -> None:
        self.words = self.opts.phrases.matcher()

    def judge(self, view: CallView) -> Verdict:
        if not view.roles_known:
            return self.not_judged("speakers unknown (mono mix)")
        agent = view.agent
        if not view.has_emotion and not self.words:
            return self.not_judged("no emotion in the input")
        events, top = [], 0.0
        for t in agent:
            p = max((t.prob(label) or 0.0 for label in self.opts.labels), default=0.0)
            top = max(top, p)
            if p >= self.opts.min_probability:
                events.append(self.event([t], p, f"agent sounds {'/'.join(self.opts.labels)} (p={p:.2f})"))
            elif self.words and (found := self.words.find(t)):
                m = max(found, key=lambda m: m.similarity)
                events.append(self.event([t], 0.5 + 0.4 * m.similarity, f"impatient wording {m.phrase}"))
        defect = len(events) >= self.opts.min_turns
        conf = max((e.confidence for e in events), default=1.0 - top) if defect else 1.0 - top
        return self.verdict(
            defect,
            conf,
            events if defect else [],
            f"{len(events)} cold or angry turn(s)",
            max_prob=top,
            count=len(events),
        )


class DeescalationSettings(Options):
    angry_probability: float = Field(0.5, gt=0.0, le=1.0)
    #: Words of an angry or complaining customer (投诉, 受够了 ...): with SER, or without it, they tell
    #: that the customer is angry; in the customer's last turns, that they still are.
    anger: Phrases = Field(default_factory=Phrases)
    #: Soothing wording the agent should use once the customer is angry.
    soothe: Phrases = Field(default_factory=Phrases)
    #: The customer's last turns (this many) must not be angry: two, because an unhappy customer's last
    #: word on the matter (我不接受这个答复) is usually followed by the closing exchange (没有了).
    end_turns: int = Field(2, ge=1)


@register
class Deescalation(Detector):
    """Only judged when the customer is angry: the agent must soothe, and the customer end calmer.

    Anger is heard (SER) or said (the ``anger`` phrases). Speech-emotion models that judge a speaker
    against their own turns miss a customer who is angry from the first word to the last, which is
    exactly the call this item is about, so the words count as much as the voice.
    """

    name = "deescalation"
    Settings = DeescalationSettings

    def setup(self) -> None:
        self.soothe, self.anger = self.opts.soothe.matcher(), self.opts.anger.matcher()

    def _angry(self, turn: Said) -> float:
        heard = turn.prob("angry") or 0.0
        said = self.anger.best(turn) if self.anger else 0.0
        return max(heard, 1.0 if said >= self.opts.anger.min_similarity else 0.0)

    def judge(self, view: CallView) -> Verdict:
        if not view.roles_known:
            return self.not_judged("speakers unknown (mono mix)")
        if not view.has_emotion and not self.anger:
            return self.not_judged("no emotion in the input")
        customer = view.of(CUSTOMER)
        p = self.opts.angry_probability
        angry = [t for t in customer if self._angry(t) >= p]
        if not angry:
            return self.verdict(
                False, 0.9, reason="customer never angry", angry=0.0, soothed=0.0, angry_at_end=0.0
            )
        first = angry[0]
        after = [t for t in view.of(AGENT) if t.start >= first.start]
        soothed = max((self.soothe.best(t) for t in after), default=0.0) if self.soothe else 1.0
        said = any(self.soothe.find(t) for t in after) if self.soothe else True
        tail = [t for t in customer[-self.opts.end_turns :] if t is not first]
        end_anger = max((self._angry(t) for t in tail), default=0.0)
        events = []
        if not said:
            events.append(
                self.event([first], 0.5 + 0.5 * (1 - soothed), "angry customer, no soothing from the agent")
            )
        if end_anger >= p:
            events.append(self.event(tail, end_anger, "the customer is still angry at the end"))
        conf = max((e.confidence for e in events), default=0.8)
        words = [bool(self.anger and self.anger.find(t)) for t in customer]
        return self.verdict(
            bool(events),
            conf,
            events,
            "; ".join(e.detail for e in events),
            angry=1.0,
            soothed=soothed,
            said_soothe=float(said),
            angry_at_end=end_anger,
            said_angry_at_end=float(bool(self.anger) and any(self.anger.find(t) for t in tail)),
            heard_angry_at_end=max(((t.prob("angry") or 0.0) for t in tail), default=0.0),
            angry_share=len(angry) / len(customer),
            heard_angry=max((t.prob("angry") or 0.0) for t in customer),
            said_angry=float(sum(words)),
            # anger first heard in the customer's last turns (我不接受这个答复 before goodbye) leaves the
            # agent no turn to soothe in, and is the end the item is about, yet the tail leaves it out
            late_anger=float(first in customer[-self.opts.end_turns :]),
        )
