"""The transparent QA model end to end on the tiny corpus: train, explain, evaluate, score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.data.rubric import default_rubric_path, load_rubric
from callqa.data.schema import CallRecord
from callqa.data.scores import CallScore
from callqa.models.qa.linear import LinearQa
from callqa.serving.score import Scorer
from tests.qa_fixtures import train_on_truth


@pytest.fixture(scope="module")
def trained(
    tiny_corpus: Path, tiny_calls: list[CallRecord], tmp_path_factory: pytest.TempPathFactory
) -> dict:
    root = tmp_path_factory.mktemp("qa")
    heard, model = train_on_truth(tiny_corpus, tiny_calls, root)
    return {"heard": heard, "model": model, "root": root}


def test_the_model_file_is_self_contained_and_explains_itself(
    trained: dict, tiny_calls: list[CallRecord]
) -> None:
    model = LinearQa.load(trained["model"])
    rubric = load_rubric()
    assert list(model.items) == rubric.ids and model.meta["labels"] == "resolved"
    again = LinearQa.load(model.save(trained["root"] / "copy.json"))
    scorer = Scorer(rubric, model=again)
    from callqa.qa.timeline import CallView

    score = scorer.judge(CallView.from_record(tiny_calls[0]))
    assert {i.source for i in score.items} == {"qa-linear"} and score.models["qa"].kind == "qa-linear"
    assert all(any("=" in e for e in i.explanation) for i in score.items)  # the features that weighed
    view, x = CallView.from_record(tiny_calls[0]), {"call.agent_share": 0.5}
    assert model.predict_items(view, x) == again.predict_items(view, x)


def test_a_model_refuses_a_rubric_it_was_not_trained_for(trained: dict, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("items:\n  - {id: zz, name_zh: 甲, points: 100}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="zz"):
        Scorer(load_rubric(other), model=LinearQa.load(trained["model"]), rubric_source=str(other))


def test_a_model_warns_when_the_rules_changed_under_it(
    trained: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Same items, another phrase list: the features no longer mean what they meant in training."""
    text = default_rubric_path().read_text(encoding="utf-8").replace("神经病, ", "")
    edited = tmp_path / "edited.yaml"
    edited.write_text(text, encoding="utf-8")
    model = LinearQa.load(trained["model"])
    fingerprint = load_rubric().rules_fingerprint()
    assert model.rubric["rules"] == fingerprint != load_rubric(edited).rules_fingerprint()
    with caplog.at_level("WARNING"):
        Scorer(load_rubric(), model=model)
    assert "retrain" not in caplog.text
    with caplog.at_level("WARNING"):
        Scorer(load_rubric(edited), model=model, rubric_source=str(edited))
    assert "retrain" in caplog.text and str(edited) in caplog.text


def test_evaluation_reports_items_totals_flips_and_pictures(trained: dict, tiny_corpus: Path) -> None:
    out = trained["root"] / "eval"
    args = [
        "evaluate",
        "qa",
        str(trained["model"]),
        "--corpus",
        str(tiny_corpus),
        "--heard",
        str(trained["heard"]),
        "--out",
        str(out),
        "--split",
        "all",
        "--n-boot",
        "20",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "qa_eval.json").read_text())
    aucs = [m["vs_truth"]["auc"][0] for m in report["items"].values() if 0 < m["vs_truth"]["positives"] < 12]
    assert aucs and np.nanmean(aucs) > 0.9  # fitted on these calls: the rule evidence must separate them
    assert report["flips"]["band_flip_rate"] == 0.0  # heard == truth here, so nothing can flip
    assert report["truth"]["model"]["qwk"][0] > 0.5
    html = (out / "report.html").read_text()
    assert html.count("<img") >= 3 and all(
        (out / f).stat().st_size > 5000 for f in ("reliability.png", "flips.png")
    )


def test_evaluation_takes_the_rules_of_another_rubric_with_the_same_items(
    trained: dict, tiny_corpus: Path, tmp_path: Path
) -> None:
    """An old corpus's rubric.yaml is a snapshot: --rubric judges it with today's rules; a rubric of
    other items cannot, since the inspectors' labels are per item."""
    edited = tmp_path / "edited.yaml"
    edited.write_text(default_rubric_path().read_text(encoding="utf-8").replace("神经病, ", ""), "utf-8")
    other = tmp_path / "other.yaml"
    other.write_text("items:\n  - {id: zz, name_zh: 甲, points: 100}\n", encoding="utf-8")
    base = ["evaluate", "qa", str(trained["model"]), "--corpus", str(tiny_corpus), "--heard"]
    base += [str(trained["heard"]), "--split", "all", "--n-boot", "5"]
    ok = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "a"), "--rubric", str(edited)])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "b"), "--rubric", str(other)])
    assert bad.exit_code == 1 and "['zz'] are not the corpus's" in str(bad.exception)


def test_score_with_the_model(trained: dict, tiny_corpus: Path, tiny_calls: list[CallRecord]) -> None:
    out = trained["root"] / "scores.jsonl"
    args = ["score", str(tiny_corpus), "--out", str(out), "--qa-model", str(trained["model"])]
    assert CliRunner().invoke(app, args).exit_code == 0
    scores = [CallScore.model_validate(json.loads(x)) for x in out.read_text().splitlines()]
    assert len(scores) == len(tiny_calls) and all(
        s.models["qa"].path == str(trained["model"]) for s in scores
    )
