"""The hand-written QA calls: labelled across the whole rubric, and rendered with the written timing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from callqa.data.corpus import Corpus
from callqa.data.rubric import load_rubric
from callqa.data.synth.handwritten_calls import load_labelled_calls, render_labelled_calls


def test_every_item_is_labelled_in_several_calls_and_some_calls_are_clean() -> None:
    calls = load_labelled_calls()
    counts = Counter(d for c in calls for d in c.defects)
    assert len(calls) >= 24 and len({c.industry for c in calls}) >= 8
    assert all(counts[i] >= 3 for i in load_rubric().ids), counts
    assert sum(not c.defects for c in calls) >= 5


SMALL = {
    "calls": [
        {
            "id": "gas-x",
            "industry": "燃气",
            "agent_rate": 1.0,
            "defects": ["silence", "interruption"],
            "turns": [
                {"agent": "您好，燃气公司，工号三二一。"},
                {"customer": "我家燃气表好像坏了，一直在走字，可是我家根本没用气啊。"},
                {"agent": "您说的情况我明白了。", "gap": -2.0},
                {"agent": "那我帮您约个师傅上门看看。", "gap": 9.0},
            ],
        }
    ]
}


def test_rendered_timing_follows_the_file(tmp_path: Path) -> None:
    src = tmp_path / "one.yaml"
    src.write_text(yaml.safe_dump(SMALL, allow_unicode=True), encoding="utf-8")
    render_labelled_calls(tmp_path / "c", seed=1, workers=1, path=src)
    (call,) = Corpus(tmp_path / "c").calls
    t = call.turns
    assert call.truth is not None and call.truth.defects == ["silence", "interruption"]
    assert t[2].start == pytest.approx(t[1].end - 2.0, abs=0.01)  # talks over the customer for 2 s
    assert t[3].start - max(t[1].end, t[2].end) == pytest.approx(9.0, abs=0.01)  # silence after both
    assert (tmp_path / "c" / "rubric.yaml").is_file()


def test_a_label_that_is_not_a_rubric_item_is_refused(tmp_path: Path) -> None:
    bad = {"calls": [{**SMALL["calls"][0], "defects": ["rudeness"]}]}
    src = tmp_path / "bad.yaml"
    src.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=r"gas-x.*rudeness"):
        load_labelled_calls(src)
