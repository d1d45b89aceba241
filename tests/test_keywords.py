"""Keyword spotting on CTC posteriors, and the rules reading it beside the text."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from callqa.data.results import ChannelInfo
from callqa.data.rubric import load_rubric
from callqa.models.asr.keywords import KeywordSpotter
from callqa.qa.match import PhraseMatcher
from callqa.qa.rules import RuleSet
from callqa.qa.timeline import CallView, Said
from callqa.serving.segments import Segment
from callqa.serving.timeline import build_turns

VOCAB = ["<blank>", "<unk>", "你", "烦", "不", "三", "您"]


def encode(text: str) -> list[int]:
    return [VOCAB.index(ch) if ch in VOCAB else 1 for ch in text]


def posteriors(frames: list[dict[str, float]]) -> np.ndarray:
    """Log-posteriors from per-frame probabilities (the rest spread evenly over the other tokens)."""
    lp = np.zeros((len(frames), len(VOCAB)))
    for t, probs in enumerate(frames):
        rest = (1.0 - sum(probs.values())) / (len(VOCAB) - len(probs))
        for k, tok in enumerate(VOCAB):
            lp[t, k] = np.log(probs.get(tok, rest))
    return lp


def brute_force(lp: np.ndarray, ids: list[int]) -> float:
    """Every window, every frame labelling that collapses to ``ids``: the best per-character score."""
    best_path = lp.max(axis=1)
    best = -np.inf
    for s in range(len(lp)):
        for e in range(s + 1, len(lp) + 1):
            for path in itertools.product(range(len(VOCAB)), repeat=e - s):
                merged = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
                if [k for k in merged if k != 0] == ids:
                    best = max(best, sum(lp[s + i, k] - best_path[s + i] for i, k in enumerate(path)))
    return best / len(ids)


def test_scores_equal_the_best_alignment_found_by_brute_force() -> None:
    rng = np.random.default_rng(0)
    spotter = KeywordSpotter(["你烦", "烦烦", "不"], encode)
    for _ in range(6):
        logits = rng.normal(size=(5, len(VOCAB))) * 2
        lp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        for s in spotter.scores(lp):
            assert s.score == pytest.approx(brute_force(lp, encode(s.phrase)), abs=1e-3), s.phrase


def test_a_phrase_the_best_path_missed_still_scores_near_zero() -> None:
    """您三不三 on the best path, 你烦不烦 a close second: spotting finds it, and where it was said."""
    said = [("您", "你"), ("三", "烦"), ("不", "三"), ("三", "烦")]
    frames = [{"<blank>": 0.9}] * 3
    for best, second in said:
        frames += [{best: 0.55, second: 0.35}, {"<blank>": 0.9}]
    frames += [{"<blank>": 0.9}] * 3
    lp = posteriors(frames)
    spotter = KeywordSpotter(["你烦不烦", "你不烦", "烦"], encode)
    scores = {s.phrase: s for s in spotter.scores(lp)}
    hit = scores["你烦不烦"]
    # 不 is on the best path; the three others each give up log(0.55 / 0.35)
    assert hit.score == pytest.approx(-3 * np.log(0.55 / 0.35) / 4, abs=1e-4)
    assert 3 <= hit.start <= 4 and 10 <= hit.end <= 12
    assert scores["你不烦"].score < hit.score  # its characters are there, not in that order
    assert [s.phrase for s in spotter.scores(lp) if s.score >= -0.5] == ["你烦不烦", "烦"]


def test_a_phrase_cut_between_two_segments_is_found_across_the_cut() -> None:
    """你烦 | 不烦: neither segment holds the phrase, their edges joined do; what either side holds
    alone is not reported again."""
    first = posteriors([{"<blank>": 0.9}, {"你": 0.9}, {"<blank>": 0.9}, {"烦": 0.9}, {"<blank>": 0.9}])
    second = posteriors([{"<blank>": 0.9}, {"不": 0.9}, {"<blank>": 0.9}, {"烦": 0.9}, {"<blank>": 0.9}])
    spotter = KeywordSpotter(["你烦不烦", "烦"], encode)
    alone = {s.phrase: s.score for s in spotter.scores(first)}
    assert alone["你烦不烦"] < -1.0 and alone["烦"] == pytest.approx(0.0, abs=1e-4)
    before, after = (spotter.edges(spotter.evidence(x), 4) for x in (first, second))
    assert len(before.tail) == len(after.head) == 4
    found = spotter.bridge(before.tail, after.head, floor=-0.5)
    assert [s.phrase for s in found] == ["你烦不烦"]
    assert found[0].score == pytest.approx(0.0, abs=1e-4) and found[0].start < 4 < found[0].end
    assert spotter.bridge(before.tail, after.head[:0], floor=-0.5) == []


def test_phrases_the_model_cannot_write_are_skipped() -> None:
    spotter = KeywordSpotter(["你烦", "你好", "你烦"], encode)
    assert spotter.phrases == ["你烦"] and spotter.skipped == ["你好"]
    assert spotter.scores(np.zeros((0, len(VOCAB)))) == []


def test_a_spotted_phrase_counts_only_within_its_limit() -> None:
    m = PhraseMatcher(["你烦不烦", "别问我"])
    garbled = Said("agent", 0, 2, "您三不三啊", spotted={"你烦不烦": -1.2, "别问我": -1.2})
    (found,) = m.find(garbled)  # 别问我 is short: it must score above -1.0
    assert found.phrase == "你烦不烦" and found.spotted and found.similarity > 0.8
    assert m.find(garbled.text) == []  # the text alone does not say it
    assert not m.find(Said("agent", 0, 2, "您三不三啊", spotted={"你烦不烦": -3.0}))
    assert m.best(garbled) > m.best(garbled.text)


def test_the_forbidden_rule_fires_on_a_spotted_phrase_on_the_agent_side_only() -> None:
    rules = RuleSet(load_rubric())
    assert "你烦不烦" in rules.phrases() and all(len(p) >= 2 for p in rules.phrases())
    greeting = Said("agent", 0.5, 4.0, "您好，工号三七二八为您服务。")
    rude = Said("agent", 10, 12, "您三不三啊", spotted={"你烦不烦": -0.8})
    v = rules.detectors["forbidden"].judge(CallView("c", [greeting, rude], 20.0))
    assert v.defect and "spotted" in v.events[0].detail
    quoting = Said("customer", 10, 12, "您三不三啊", spotted={"你烦不烦": -0.8})
    assert not rules.detectors["forbidden"].judge(CallView("c", [greeting, quoting], 20.0)).defect


def test_a_turn_keeps_each_phrase_at_its_best_piece() -> None:
    segments = [Segment(0, 0.0, 5.0, 0), Segment(0, 5.0, 9.0, 0), Segment(1, 9.5, 11.0, 1)]
    spotted = [{"稍等": -2.0, "抱歉": -0.5}, {"稍等": -0.3}, {}]
    channels = [ChannelInfo(index=0, speaker="agent"), ChannelInfo(index=1, speaker="customer")]
    turns = build_turns(segments, ["请您", "稍等", "好"], channels, spotted=spotted)
    assert turns[0].spotted == {"稍等": -0.3, "抱歉": -0.5} and turns[1].spotted == {}
    assert build_turns(segments, ["a", "b", "c"], channels)[0].spotted is None  # spotting did not run


def test_spotting_on_sounds_pools_the_homophones_the_model_spreads_a_syllable_over() -> None:
    """烦 and 凡 sound alike: with the recogniser unsure between them (and 三 on the best path), the
    phrase is far closer on sounds than on characters, and a character of another sound does not help."""
    vocab = [*VOCAB, "凡"]
    frames = [{"<blank>": 0.9}, {"你": 0.9}, {"三": 0.4, "烦": 0.3, "凡": 0.3}, {"<blank>": 0.9}]
    lp = np.log(np.array([[f.get(t, 1e-4) for t in vocab] for f in frames]))
    enc = lambda text: [vocab.index(ch) for ch in text]  # noqa: E731
    classes = [0, 1, 2, 3, 4, 5, 6, 3]  # 凡 shares 烦's class
    on_chars = KeywordSpotter(["你烦"], enc).scores(lp)[0].score
    on_sounds = KeywordSpotter(["你烦"], enc, classes=classes).scores(lp)[0].score
    assert on_chars == pytest.approx(np.log(0.3 / 0.4) / 2, abs=1e-3)
    assert on_sounds == 0.0  # 0.6 for the sound beats the 0.4 of the best character
    with pytest.raises(ValueError, match="blank"):
        KeywordSpotter(["你烦"], enc, classes=[0, 0, 2, 3, 4, 5, 6, 3])


def test_sound_classes_follow_pinyin_without_tones() -> None:
    from callqa.qa.match import sound_classes

    c = sound_classes(["<blank>", "<unk>", "烦", "凡", "反", "三", "山", "a"])
    assert c[2] == c[3] == c[4]  # fán fán fǎn
    assert c[5] == c[6]  # sān shān: sh folded into s
    assert len({c[0], c[1], c[2], c[5], c[7]}) == 5


def test_flat_posteriors_spot_nothing() -> None:
    """Noise the model cannot hear gives every phrase a near-best path; such a segment is flagged, while
    a segment that says one of twenty phrases is not."""
    phrases = ["".join(p) for p in itertools.permutations("你烦不三您", 2)]
    spotter = KeywordSpotter(phrases, encode)
    flat = np.full((12, len(VOCAB)), np.log(1 / len(VOCAB)))
    assert spotter.flat(spotter.scores(flat))
    sure = 0.999
    said = posteriors([{"<blank>": sure}, {"你": sure}, {"<blank>": sure}, {"烦": sure}, {"<blank>": sure}])
    scores = spotter.scores(said)
    assert not spotter.flat(scores) and max(scores, key=lambda s: s.score).phrase == "你烦"
