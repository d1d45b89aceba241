"""The quickstart's whole-call stage: test calls and the hand-written set through the call pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from callqa.quickstart import call_stage
from callqa.serving.pipeline import CallPipeline
from callqa.serving.vad import load_vad
from tests.pipeline_fakes import FakeSer, SpyAsr


@pytest.fixture
def dialogues(tmp_path: Path) -> Path:
    src = tmp_path / "hand.yaml"
    turns = [{"agent": "您好，宠物医院，请讲。"}, {"customer": "我家猫三天不吃饭了。", "emotion": "sad"}]
    src.write_text(
        yaml.safe_dump(
            {"dialogues": [{"id": "pet-x", "industry": "宠物医院", "turns": turns}]}, allow_unicode=True
        ),
        encoding="utf-8",
    )
    return src


def test_call_stage_scores_test_calls_and_the_hand_written_set(
    tiny_corpus: Path, tmp_path: Path, dialogues: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asr = SpyAsr()
    figures = call_stage(
        tiny_corpus, tmp_path, CallPipeline(asr, load_vad("energy"), FakeSer(), raw=True), dialogues
    )
    test, hand = figures["test"], figures["handwritten"]
    assert test["calls"] >= 2 and test["turns_matched"] > 0
    assert test["start_error_median"] < 0.2 and test["end_error_median"] < 0.2
    # The spy writes 好 for everything, so nearly every reference character is an error.
    assert test["pipeline_cer"] > 0.8 and test["utterance_cer"] > 0.8
    assert hand["calls"] == 1 and hand["utterance_cer"] > 0.8
    printed = capsys.readouterr().out
    assert printed.count("== ") == 2 and "agent" in printed and "[angry" in printed
    assert (
        json.loads((tmp_path / "handwritten" / "corpus.json").read_text(encoding="utf-8"))["counts"]["calls"]
        == 1
    )


def test_qa_stage_trains_judges_and_prints_the_agreement_table(
    tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from callqa.quickstart_qa import qa_stage

    monkeypatch.chdir(tmp_path)  # the neural model's MLflow store (runs/mlflow.db) goes here
    from tests.test_handwritten_calls import SMALL

    hand = tmp_path / "calls.yaml"
    hand.write_text(yaml.safe_dump(SMALL, allow_unicode=True), encoding="utf-8")
    pipeline = CallPipeline(SpyAsr(), load_vad("energy"), FakeSer(), raw=True)
    figures = qa_stage(tiny_corpus, tmp_path, pipeline, eval_calls=12, handwritten=hand, train_calls=30)
    assert figures["eval"]["calls"] == 12 and figures["handwritten"]["calls"] == 1
    assert set(figures["test"]["item_f1_vs_truth"]) >= {"greeting", "forbidden"}
    assert (tmp_path / "qa" / "qa-linear.json").is_file() and (
        tmp_path / "qa" / "eval" / "report.html"
    ).is_file()
    printed = " ".join(capsys.readouterr().out.split())
    assert "Total score agreement" in printed and "vs the others" in printed and "model vs" in printed
    assert "neural model vs truth (eval)" in printed
    assert (tmp_path / "qa" / "turns" / "export" / "qa.onnx").is_file()
    assert figures["eval-turns"]["calls"] == 12
