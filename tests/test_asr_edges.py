"""Edge context for ASR training: call turns cut wider into the quiet line around them, as a VAD cuts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from callqa.data.schema import Utterance
from callqa.models.tokenizer import CharTokenizer
from callqa.training.asr_data import AsrDataset, Item, quiet_room
from callqa.training.transforms import edge_context


def _turn(uid: str, channel: int, offset: float, duration: float) -> Utterance:
    return Utterance(
        id=uid, audio="a.wav", offset=offset, duration=duration, channel=channel, text="好", call_id="C1"
    )


def test_quiet_room_is_the_gap_on_the_turns_own_channel() -> None:
    utts = [_turn("a", 0, 1.0, 2.0), _turn("b", 1, 3.1, 1.0), _turn("c", 0, 3.3, 1.0)]
    room = quiet_room(utts, tail=0.5)
    assert np.allclose(room["a"], (1.0, 0.3))
    assert np.allclose(room["c"], (0.3, 0.5))  # channel 1's turn in between does not count
    assert np.allclose(room["b"], (3.1, 0.5))


def test_edge_context_stays_inside_the_room() -> None:
    rng = np.random.default_rng(0)
    cuts = [edge_context(5.0, 2.0, (0.2, 3.0), rng, max_edge=0.5, prob=1.0) for _ in range(500)]
    before = np.array([5.0 - o for o, _ in cuts])
    after = np.array([o + d - 7.0 for o, d in cuts])
    assert before.min() >= 0 and before.max() <= 0.2 and after.max() <= 0.5 and after.max() > 0.4
    plain = [edge_context(5.0, 2.0, (1.0, 1.0), rng, prob=0.0) for _ in range(10)]
    assert all(c == (5.0, 2.0) for c in plain)


def test_training_items_hear_the_line_and_evaluation_items_do_not(
    tiny_corpus: Path, tiny_utterances: list[Utterance]
) -> None:
    turns = [u for u in tiny_utterances if u.call_id][:6]
    room = quiet_room(turns)
    tok = CharTokenizer.build(u.text for u in turns)
    items = [Item(u, tiny_corpus, room[u.id]) for u in turns]
    plain = AsrDataset(items, tok, train=False)
    assert [len(plain[i][0]) for i in range(6)] == [round(u.duration * 8000) for u in turns]
    train = AsrDataset(items, tok, train=True)
    for i, u in enumerate(turns):  # never wider than its room allows, even slowed down by 0.9
        widest = (u.duration + min(0.5, room[u.id][0]) + min(0.5, room[u.id][1])) / 0.9
        assert len(train[i][0]) <= round(widest * 8000) + 1
