"""The hand-written generalisation dev set: big enough, unlike the generator, held out, and rendered as a
corpus every tool reads."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

from callqa.data.constants import AGENT, CUSTOMER
from callqa.data.corpus import Corpus
from callqa.data.synth.handwritten import load_dialogues, parse_dialogues, render_handwritten
from callqa.data.synth.templates import TemplateBank
from callqa.data.synth.voices import variant_split

_PUNCT = re.compile(r"[，。？！、\s]")


@pytest.fixture(scope="module")
def dialogues():
    return load_dialogues()


def test_the_set_is_big_and_spans_many_industries(dialogues) -> None:
    turns = [t for d in dialogues for t in d.turns]
    assert len(turns) >= 150
    assert len({d.industry for d in dialogues}) >= 8
    assert all({t.speaker for t in d.turns} == {AGENT, CUSTOMER} for d in dialogues)
    assert {t.emotion for t in turns} >= {"neutral", "angry", "sad", "happy", "surprise"}


def test_its_industries_and_wording_are_not_the_generators(dialogues) -> None:
    bank = TemplateBank.load()
    names = {bank.scenario_name_zh(s) for s in bank.scenarios}
    assert not names & {d.industry for d in dialogues}
    # no template clause of ten or more characters appears in a hand-written turn (stock phrases such
    # as 请问有什么可以帮您 are shorter), and no turn in a template
    pieces = {
        p for t in bank.all() for p in re.split(r"\{[a-z_0-9]+\}", _PUNCT.sub("", t.text)) if len(p) >= 10
    }
    turns = {_PUNCT.sub("", t.text) for d in dialogues for t in d.turns}
    assert not [p for p in pieces if any(p in turn for turn in turns)]
    templates = {_PUNCT.sub("", t.text) for t in bank.all()}
    assert not [turn for turn in turns if len(turn) >= 6 and any(turn in t for t in templates)]


def test_nothing_in_the_generator_reads_it() -> None:
    synth = Path(str(resources.files("callqa.data.synth")))
    readers = [
        p.name
        for p in synth.glob("*.py")
        if not p.name.startswith("handwritten") and "handwritten" in p.read_text()
    ]
    assert readers == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "dialogues"),
        ({"dialogues": [{"id": "a", "industry": "x", "turns": [{"agent": "您好"}]}]}, "at least two"),
        (
            {"dialogues": [{"id": "a", "industry": "x", "turns": [{"agent": "您好"}, {"boss": "嗯"}]}]},
            "a.turns.1",
        ),
        (
            {
                "dialogues": [
                    {
                        "id": "a",
                        "industry": "x",
                        "turns": [{"agent": "好"}, {"customer": "嗯", "emotion": "x"}],
                    }
                ]
            },
            "emotion",
        ),
    ],
)
def test_bad_entries_name_the_dialogue_and_turn(data, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_dialogues(data, "gen-dev.yaml")


def test_renders_a_test_split_corpus_with_held_out_voices(tmp_path: Path) -> None:
    src = tmp_path / "two.yaml"
    src.write_text(
        yaml.safe_dump(
            {
                "dialogues": [
                    {
                        "id": "pet-x",
                        "industry": "宠物医院",
                        "turns": [
                            {"agent": "您好，宠物医院。"},
                            {"customer": "我家猫不吃饭了。", "emotion": "sad"},
                            {"agent": "几天了？"},
                        ],
                    },
                    {
                        "id": "gym-x",
                        "industry": "健身会员",
                        "turns": [{"customer": "喂？"}, {"agent": "您好，请讲。"}],
                    },
                ]
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    info = render_handwritten(tmp_path / "hw", seed=3, workers=1, path=src)
    corpus = Corpus(tmp_path / "hw")
    calls, utts = corpus.calls, corpus.utterances
    assert info["counts"]["calls"] == len(calls) == 2 and len(utts) == 5
    assert {c.split for c in calls} == {u.split for u in utts} == {"test"}
    assert all(variant_split(u.voice) == "test" for u in utts)
    assert [u.text for u in utts][:3] == ["您好，宠物医院。", "我家猫不吃饭了。", "几天了？"]
    assert utts[1].emotion == "sad" and utts[1].channel == 1 and utts[0].channel == 0
    assert all(0 <= t.start < t.end <= c.duration for c in calls for t in c.turns)
    again = render_handwritten(tmp_path / "hw2", seed=3, workers=1, path=src)
    assert again["fingerprint"] == info["fingerprint"]
