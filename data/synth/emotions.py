"""Turn-level emotion variation: how often a customer's feeling moves within a call.

The dialogue plan gives a calm customer one mood for the whole call, so every turn of that speaker has
the same label. Real callers brighten, sag or are taken aback from turn to turn, and a model that judges
prosody against the speaker's own other turns needs such contrast to learn from and to be measured on.
``emotion_turn_rate`` (a synth setting, 0 by default) redraws that share of the customer's turns
uniformly over the emotions. It uses its own random stream, so the rest of the call (text, voices,
timing) is the one the same seed gives without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from callqa.data.constants import CUSTOMER, EMOTIONS

#: Turns whose emotion the rubric's truth depends on (an angry customer's complaint and their anger
#: left unsoothed): never redrawn.
_FIXED_KINDS = frozenset({"complain", "still_angry"})


class _Turn(Protocol):
    speaker: str
    kind: str
    emotion: str


def vary_emotions(turns: Sequence[_Turn], seed: int, rate: float) -> None:
    """Redraw about ``rate`` of the customer's turns' emotions in place (angry-customer turns kept)."""
    if rate <= 0:
        return
    rng = np.random.default_rng((seed, 0x5E12))
    for turn in turns:
        if turn.speaker != CUSTOMER or turn.kind in _FIXED_KINDS or turn.emotion == "angry":
            continue
        if rng.random() < rate:
            turn.emotion = str(rng.choice(EMOTIONS))
