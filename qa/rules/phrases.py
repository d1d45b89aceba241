"""Detectors of what the agent says: required phrases, forbidden phrases, their order, and politeness."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from callqa.data.constants import AGENT, CUSTOMER
from callqa.qa.match import first_match
from callqa.qa.rules.base import Detector, Options, Phrases, Verdict, register
from callqa.qa.timeline import CallView, Said


class RequiredSettings(Phrases):
    speaker: Literal["agent", "customer"] = AGENT
    #: Where the phrase must be: the speaker's first turns, last turns, or anywhere.
    where: Literal["first_turns", "last_turns", "anywhere"] = "anywhere"
    turns: int = Field(1, ge=1)
    #: With ``first_turns``: only turns that start this soon after the call's first speech count.
    within_seconds: float | None = Field(None, gt=0)
    #: Phrases that undo the requirement when said in the window (a brush-off beside a commitment).
    unless: Phrases = Field(default_factory=Phrases)


@register
class RequiredPhrase(Detector):
    """A defect when none of the phrases is said in the window (greeting, closing, resolution)."""

    name = "required_phrase"
    Settings = RequiredSettings

    def setup(self) -> None:
        self.matcher, self.unless = self.opts.matcher(), self.opts.unless.matcher()

    def window(self, view: CallView) -> list[Said]:
        o = self.opts
        turns = view.of(o.speaker)
        if o.where == "first_turns":
            turns = turns[: o.turns]
            if o.within_seconds is not None and view.turns:
                t0 = view.turns[0].start
                turns = [t for t in turns if t.start - t0 <= o.within_seconds]
        elif o.where == "last_turns":
            turns = turns[-o.turns :]
        return turns

    def judge(self, view: CallView) -> Verdict:
        if not view.roles_known:
            return self.not_judged("speakers unknown (mono mix)")
        turns = self.window(view)
        hit = first_match(self.matcher, turns)
        best = max((self.matcher.best(t) for t in turns), default=0.0)
        undo = first_match(self.unless, turns) if self.unless else None
        # a brush-off the agent then makes good (没办法 ... 已经为您加急处理) is resolved after all
        later = first_match(self.matcher, turns[undo[0] + 1 :]) if undo is not None else None
        if later is not None:
            reason = f"said {later[1].phrase} after"
            return self.verdict(False, 0.5 * later[1].similarity, reason=reason, best=best, unless=0.5)
        if undo is not None:
            t = turns[undo[0]]
            ev = self.event(
                [t], 0.5 + 0.4 * undo[1].similarity * (1.0 if hit is None else 0.5), f"said {undo[1].phrase}"
            )
            return self.verdict(True, ev.confidence, [ev], reason=ev.detail, best=best, unless=1.0)
        if hit is not None:
            return self.verdict(
                False, hit[1].similarity, reason=f"said {hit[1].phrase}", best=best, unless=0.0
            )
        where = self.opts.where.replace("_", " ")
        if turns:
            ev = self.event(turns, 1.0 - best, f"none of the phrases in the {self.opts.speaker}'s {where}")
        else:
            t0 = view.turns[0].start if view.turns else 0.0
            ev = self.event(
                [],
                1.0,
                f"the {self.opts.speaker} says nothing in the window",
                "",
                span=(t0, t0 + (self.opts.within_seconds or 0.0)),
            )
        return self.verdict(True, 1.0 - best, [ev], reason=ev.detail, best=best, unless=0.0)


class ForbiddenSettings(Phrases):
    speaker: Literal["agent", "customer"] = AGENT


@register
class ForbiddenPhrase(Detector):
    """Each forbidden phrase the speaker says is an event; what the other side says never counts (a
    customer quoting a rude phrase back is not the agent's fault)."""

    name = "forbidden_phrase"
    Settings = ForbiddenSettings

    def setup(self) -> None:
        self.matcher = self.opts.matcher()

    def judge(self, view: CallView) -> Verdict:
        if not view.roles_known:
            return self.not_judged("speakers unknown (mono mix)")
        events = []
        best = 0.0
        for t in view.of(self.opts.speaker):
            best = max(best, self.matcher.best(t))
            for m in self.matcher.find(t):
                events.append(
                    self.event(
                        [t],
                        m.similarity,
                        f"forbidden phrase {m.phrase}{' (spotted in the posteriors)' if m.spotted else ''}",
                        t.text[m.start : m.end],
                    )
                )
        conf = max((e.confidence for e in events), default=1.0 - best)
        return self.verdict(
            bool(events),
            conf,
            events,
            reason=f"{len(events)} forbidden phrase(s)",
            count=len(events),
            best=best,
        )


class OrderSettings(Options):
    speaker: Literal["agent", "customer"] = AGENT
    #: What must come first (identity checks) ...
    first: Phrases
    #: ... before any of these (account details).
    then: Phrases
    #: When ``then`` is never said: is a missing ``first`` still a defect?
    require_first: bool = True


@register
class Order(Detector):
    """A defect when ``then`` is said before any ``first`` (details before identity is verified)."""

    name = "order"
    Settings = OrderSettings

    def setup(self) -> None:
        self.first, self.then = self.opts.first.matcher(), self.opts.then.matcher()

    def judge(self, view: CallView) -> Verdict:
        if not view.roles_known:
            return self.not_judged("speakers unknown (mono mix)")
        turns = view.of(self.opts.speaker)
        first = first_match(self.first, turns)
        then = first_match(self.then, turns)
        best = max((self.first.best(t) for t in turns), default=0.0)
        if then is None:
            if first is not None or not self.opts.require_first:
                return self.verdict(False, 0.6, reason="no details discussed", best_first=best, details=0)
            ev = self.event(
                turns or [],
                0.6 * (1 - best),
                "never verified",
                "",
                span=(turns[0].start, turns[-1].end) if turns else (0.0, 0.0),
            )
            return self.verdict(True, 0.6 * (1 - best), [ev], "never verified", best_first=best, details=0)
        if first is not None and first[0] <= then[0]:
            return self.verdict(
                False, first[1].similarity, reason=f"{first[1].phrase} first", best_first=best, details=1
            )
        t = turns[then[0]]
        ev = self.event(
            [t], max(then[1].similarity * (1 - best), 0.5), f"{then[1].phrase} before any identity check"
        )
        return self.verdict(True, ev.confidence, [ev], ev.detail, best_first=best, details=1)


class PolitenessSettings(Phrases):
    """``phrases`` are the polite words (您, 请, 谢谢 ...)."""

    #: Share of the agent's turns that must carry a polite word.
    min_share: float = Field(0.6, ge=0.0, le=1.0)
    #: Fewer agent turns than this: the share is not judged.
    min_turns: int = Field(3, ge=1)
    #: Blunt wording (你 for 您, 说重点 ...) and question words: an agent turn with one of these and no
    #: polite word is curt (号码多少？, 你是机主吗？), and more than ``max_curt_turns`` of them is a defect.
    curt: Phrases = Field(default_factory=Phrases)
    #: Demands that are curt whatever else the turn says (快点, 说清楚): 您 does not soften 您快点, and a
    #: recogniser's segment often runs a polite sentence and a blunt one together.
    blunt: Phrases = Field(default_factory=Phrases)
    #: A blunt demand's finding stands whatever the QA model says (an inspector deducts for one
    #: every time, and a QA training corpus may hold none to learn that from).
    blunt_stands: bool = True
    max_curt_turns: int = Field(0, ge=0)
    #: An apology the agent owes once the customer complains ...
    apology: Phrases = Field(default_factory=Phrases)
    #: ... recognised by these phrases or by an angry customer turn (probability at least this).
    complaint: Phrases = Field(default_factory=Phrases)
    angry_probability: float = Field(0.5, gt=0.0, le=1.0)
    #: How many agent turns after the complaint the apology may take.
    apology_within_turns: int = Field(3, ge=1)
    #: One sentence, one item: the agent's first turns (the greeting item's) and turns saying any of
    #: these phrases (other items' forbidden or impatient wording) are not judged for politeness, as an
    #: inspector does not take points twice for one sentence.
    skip_first_turns: int = Field(1, ge=0)
    exclude: list[Phrases] = Field(default_factory=list)


@register
class Politeness(Detector):
    """Too few polite agent turns, or a complaint with no apology after it."""

    name = "politeness"
    Settings = PolitenessSettings

    def setup(self) -> None:
        self.polite, self.curt = self.opts.matcher(), self.opts.curt.matcher()
        self.blunt = self.opts.blunt.matcher()
        self.apology, self.complaint = self.opts.apology.matcher(), self.opts.complaint.matcher()
        self.exclude = [p.matcher() for p in self.opts.exclude]

    def judge(self, view: CallView) -> Verdict:
        if not view.roles_known:
            return self.not_judged("speakers unknown (mono mix)")
        agent = [
            t for t in view.agent[self.opts.skip_first_turns :] if not any(m.find(t) for m in self.exclude)
        ]
        polite = [bool(self.polite.find(t)) for t in agent]
        share = sum(polite) / len(polite) if polite else 1.0
        events = []
        if len(agent) >= self.opts.min_turns and share < self.opts.min_share:
            plain = [t for t, p in zip(agent, polite, strict=True) if not p]
            events.append(
                self.event(
                    plain,
                    0.5 + (self.opts.min_share - share),
                    f"{share:.0%} of the agent's turns polite, under {self.opts.min_share:.0%}",
                    " / ".join(t.text for t in plain[:4]),
                )
            )
        curt = [t for t, p in zip(agent, polite, strict=True) if not p and self.curt.find(t)]
        if len(curt) > self.opts.max_curt_turns:
            events.append(
                self.event(
                    curt,
                    0.5 + 0.1 * (len(curt) - self.opts.max_curt_turns),
                    f"{len(curt)} curt agent turn(s)",
                    " / ".join(t.text for t in curt[:4]),
                )
            )
        demands = [(t, found) for t in agent if self.blunt and (found := self.blunt.find(t))]
        blunt = [t for t, _ in demands]
        if demands:
            detail = f"blunt demand: {demands[0][1][0].phrase}"
            events.append(self.event(blunt, 0.9, detail, " / ".join(t.text for t in blunt[:4])))
        complained = self._complaint(view)
        apologised, unapologised = 0.0, False
        if complained is not None and self.apology:
            after = [t for t in agent if t.start >= complained.start][: self.opts.apology_within_turns]
            apologised = max((self.apology.best(t) for t in after), default=0.0)
            unapologised = not any(self.apology.find(t) for t in after)
            if unapologised:
                events.append(
                    self.event(
                        [complained],
                        0.5 + 0.5 * (1 - apologised),
                        "the customer complained and the agent did not apologise",
                    )
                )
        conf = max((e.confidence for e in events), default=min(1.0, 0.5 + (share - self.opts.min_share)))
        verdict = self.verdict(
            bool(events),
            conf,
            events,
            "; ".join(e.detail for e in events),
            polite_share=share,
            curt_turns=len(curt),
            blunt_turns=len(blunt),
            complained=float(complained is not None),
            apology=apologised,
            # each finding apart, so a model can weigh a missing apology, which ASR errors rarely
            # fake, above one curt turn, which a mis-heard 您 -> 你 fakes easily
            share_short=max(0.0, self.opts.min_share - share) if len(agent) >= self.opts.min_turns else 0.0,
            curt_excess=float(max(0, len(curt) - self.opts.max_curt_turns)),
            unapologised=float(unapologised),
        )
        verdict.stands = bool(blunt) and self.opts.blunt_stands
        return verdict

    def _complaint(self, view: CallView) -> Said | None:
        for t in view.of(CUSTOMER):
            angry = t.prob("angry")
            if (angry is not None and angry >= self.opts.angry_probability) or (
                self.complaint and self.complaint.find(t)
            ):
                return t
        return None
