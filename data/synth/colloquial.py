"""Spoken disfluency on top of a filled template: fillers, false starts, cut-off turns, trailing remarks.

People on the phone do not speak in written sentences: they start with 嗯/那个/就是, begin a phrase twice
("我这个，我这个月的话费"), break off when the agent cuts in, and add a remark at the end. A model that
has only heard clean template sentences fails on that (the hand-written dev set measures it), so the
generator roughs turns up here, after the slots are filled, from the call's own rng.

Only kinds whose labels do not hang on their exact wording are touched: greetings, closings, holds,
apologies, forbidden phrases and read-back numbers stay as written, and a customer's identity answer is
never cut off. The fillers carry no 您/请/谢谢, so a curt agent stays curt.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from callqa.data.constants import AGENT

_CUSTOMER_FILLERS: Final = (
    "嗯，", "那个，", "就是，", "啊，", "哎，", "嗯，那个，", "就是说，", "那个，就是，",
)  # fmt: skip
_AGENT_FILLERS: Final = ("嗯，", "好的，", "那个，", "嗯，好的，", "是这样的，")
_CUSTOMER_TAILS: Final = (
    "，你帮我看看吧。", "，就这么个情况。", "，我也搞不明白。", "，你们给查一下。", "，是吧？",
)  # fmt: skip
_PUNCTUATION: Final = "，。？！、"

#: (speaker-side) kinds that may be roughed up, and how.
_CUSTOMER_KINDS: Final = frozenset(
    {"issue", "detail", "followup", "complain", "verify_answer", "still_angry"}
)
_CUT_KINDS: Final = frozenset({"issue", "detail", "followup"})
_TAIL_KINDS: Final = frozenset({"issue", "detail"})
_AGENT_KINDS: Final = frozenset({"probe", "resolve", "unresolved", "ack"})

FILLER_RATE: Final = 0.3
AGENT_FILLER_RATE: Final = 0.15
RESTART_RATE: Final = 0.1
CUT_RATE: Final = 0.05
TAIL_RATE: Final = 0.1


def _choice(rng: np.random.Generator, values: tuple[str, ...]) -> str:
    return values[int(rng.integers(len(values)))]


def _false_start(rng: np.random.Generator, text: str) -> str:
    """Say the first two to four characters of the first clause, break, and start again."""
    clause = len(text)
    for i, ch in enumerate(text):
        if ch in _PUNCTUATION:
            clause = i
            break
    if clause < 5:
        return text
    n = int(rng.integers(2, min(4, clause - 2) + 1))
    return f"{text[:n]}，{text}"


def _cut_off(rng: np.random.Generator, text: str) -> str:
    """Stop mid-sentence, as when the agent cuts in; at least five characters are said."""
    body = text.rstrip(_PUNCTUATION)
    if len(body) < 9:
        return text
    return body[: int(rng.integers(5, len(body) - 2))].rstrip(_PUNCTUATION)


def roughen(rng: np.random.Generator, speaker: str, kind: str, text: str) -> str:
    """The turn as it is said. Draws from ``rng`` a fixed number of times per kind, so a call is
    reproducible from its seed."""
    if speaker == AGENT:
        if kind in _AGENT_KINDS and rng.random() < AGENT_FILLER_RATE:
            return _choice(rng, _AGENT_FILLERS) + text
        return text
    if kind not in _CUSTOMER_KINDS:
        return text
    if kind in _TAIL_KINDS and rng.random() < TAIL_RATE and text.endswith("。"):
        text = text[:-1] + _choice(rng, _CUSTOMER_TAILS)
    if rng.random() < RESTART_RATE:
        text = _false_start(rng, text)
    if kind in _CUT_KINDS and rng.random() < CUT_RATE:
        text = _cut_off(rng, text)
    if rng.random() < FILLER_RATE:
        text = _choice(rng, _CUSTOMER_FILLERS) + text
    return text
