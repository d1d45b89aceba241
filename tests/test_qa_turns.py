"""The neural QA model: its inputs, its masking, every config in configs/qa/ cross-fitted for a step on
the tiny corpus, the ONNX export with its parity gate, and scoring with the exported file."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from callqa.cli import app
from callqa.data.rubric import load_rubric
from callqa.data.schema import CallRecord
from callqa.data.scores import CallScore
from callqa.models.qa.turn_inputs import (
    EDGE,
    PAD,
    UNKNOWN,
    TurnEncoding,
    batch_arrays,
    build_vocabulary,
    encode_call,
)
from callqa.models.qa.turns import TurnQa, TurnQaConfig
from callqa.qa.rules import RuleSet
from callqa.qa.sheet import judge_call
from callqa.qa.timeline import CallView, Said
from callqa.serving.qa_onnx import OnnxQa, load_qa_model
from tests.qa_fixtures import write_heard

CONFIGS = sorted((Path(str(resources.files("callqa.configs"))) / "qa").glob("*.yaml"))


def _view(n: int = 3) -> CallView:
    turns = [
        Said("agent" if k % 2 == 0 else "customer", 3.0 * k, 3.0 * k + 2.0, f"您好请问{k}号", channel=k % 2)
        for k in range(n)
    ]
    return CallView("c1", turns, duration=3.0 * n)


def test_a_call_becomes_arrays_that_know_where_each_turn_sits() -> None:
    enc = TurnEncoding(build_vocabulary(["您好请问", "您好"], min_count=1), ["call.x"], [1.0], [2.0], 5)
    view = _view(20)
    a = encode_call(view, {"call.x": 5.0}, enc)
    assert a.chars.shape == (20, 5)  # 您好请问 + the digit, which the vocabulary lacks
    assert list(a.chars[0]) == [enc.chars("您")[0], enc.chars("好")[0], *enc.chars("请问"), UNKNOWN]
    assert a.edges[0].tolist() == [0, EDGE - 1] and a.edges[-1].tolist() == [EDGE - 1, 0]
    assert a.edges[10].tolist() == [EDGE - 1, EDGE - 1]  # the middle of a long call is all alike
    assert a.turn_features[0, 0] == 1.0 and a.turn_features[1, 1] == 1.0  # agent, then customer
    assert a.call.tolist() == [2.0]  # (5 - 1) / 2
    empty = encode_call(CallView("c2", [], duration=10.0), {}, enc)
    assert empty.chars.shape == (1, 1) and (empty.chars == PAD).all()


def test_padding_changes_nothing_and_attention_stays_on_real_turns() -> None:
    torch.manual_seed(0)
    enc = TurnEncoding(build_vocabulary(["您好请问0123456789号"], min_count=1), ["call.x"], [0.0], [1.0])
    model = TurnQa(TurnQaConfig(vocab_size=len(enc.vocabulary), items=3, call_features=1, dim=32)).eval()
    for p in model.parameters():  # the head starts at zero: give the turn path a say
        torch.nn.init.normal_(p, std=0.2)
    short, long = encode_call(_view(3), {"call.x": 1.0}, enc), encode_call(_view(9), {"call.x": 0.0}, enc)
    with torch.no_grad():
        alone = model(*(torch.from_numpy(v) for v in batch_arrays([short]).values()))
        both = model(*(torch.from_numpy(v) for v in batch_arrays([short, long]).values()))
    assert torch.allclose(alone[0][0], both[0][0], atol=1e-5)
    attention = both[1][0]
    assert torch.allclose(attention.sum(-1), torch.ones(3), atol=1e-5)
    assert attention[:, 3:].abs().max() < 1e-6  # none on the padded turns of the shorter call


@pytest.fixture(scope="module")
def heard(tiny_calls: list[CallRecord], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_heard(tiny_calls, tmp_path_factory.mktemp("turns") / "heard.jsonl")


def test_there_are_qa_configs() -> None:
    assert {p.name for p in CONFIGS} >= {"turns.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_qa_config_cross_fits_exports_and_scores(
    path: Path,
    tmp_path: Path,
    tiny_corpus: Path,
    tiny_calls: list[CallRecord],
    heard: Path,
    isolated_run: list[str],
) -> None:
    from callqa.export.qa import export_qa
    from callqa.training.qa_turns_cli import train_qa_turns

    hp = train_qa_turns(
        [
            "--config",
            str(path),
            "--trainer.max_epochs=1",
            "--trainer.enable_progress_bar=false",
            f"--data.corpus={tiny_corpus}",
            f"--data.heard={heard}",
            "--data.folds=2",
            "--data.batch_size=4",
            "--model.model.dim=16",
            "--model.model.char_dim=8",
            *isolated_run,
        ],
        tmp_path / "qa.ckpt",
    )
    rubric = load_rubric(tiny_corpus / "rubric.yaml")
    assert hp["items"] == rubric.ids and hp["folds"] == 2 and len(hp["model"]["members"]) == 2
    assert hp["calls"] == sum(1 for c in tiny_calls if c.inspections)  # every call held out once
    assert set(hp["calibration"]) == set(rubric.ids)
    # each item's linear path reads its own rule's evidence and the timeline, as the transparent one
    names = hp["encoding"]["features"]
    greeting = [names[k] for k in hp["model"]["members"][0]["item_features"][rubric.ids.index("greeting")]]
    assert greeting and all(n.startswith(("call.", "greeting.")) for n in greeting)

    report = export_qa(tmp_path / "qa.ckpt", tmp_path / "export", corpus=tiny_corpus, heard=heard)
    assert report["parity"]["passed"], report["parity"]
    assert {c["inputs"] for c in report["parity"]["checks"]} == {"random", "corpus"}
    model = load_qa_model(tmp_path / "export" / "qa.onnx")
    assert isinstance(model, OnnxQa) and model.item_ids == rubric.ids and model.version

    score = judge_call(CallView.from_record(tiny_calls[0]), RuleSet(rubric), model)
    sources = {i.source for i in score.items}
    assert sources == {"qa-turns"} and score.total is not None
    assert all(any("attention" in e for e in i.explanation) for i in score.items)

    out = tmp_path / "scores.jsonl"
    result = CliRunner().invoke(
        app,
        ["score", str(tiny_corpus), "--qa-model", str(tmp_path / "export" / "qa.onnx"), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    scores = [CallScore.model_validate(json.loads(line)) for line in out.read_text().splitlines()]
    assert len(scores) == len(tiny_calls) and all(s.models["qa"].kind == "qa-turns" for s in scores)
    assert np.isfinite([s.total for s in scores if s.judged]).all()


def test_a_checkpoint_that_is_not_a_qa_model_is_refused(tmp_path: Path) -> None:
    from callqa.export.qa import export_qa
    from callqa.models.checkpoint import CheckpointError

    torch.save({"hyper_parameters": {"model": {}}, "state_dict": {}}, tmp_path / "x.ckpt")
    with pytest.raises(CheckpointError, match=r"x\.ckpt: not a neural QA checkpoint"):
        export_qa(tmp_path / "x.ckpt", tmp_path / "out")
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(ValueError, match=r"bad\.onnx"):
        load_qa_model(tmp_path / "bad.onnx")


def test_calibration_needs_positives_and_places_the_threshold_between_the_classes() -> None:
    from callqa.training.qa_turns_module import calibrate

    rng = np.random.default_rng(0)
    y = np.r_[np.ones(20), np.zeros(80)]
    logits = np.c_[4 * y - 2 + rng.normal(0, 0.5, 100), rng.normal(0, 1, 100)]
    targets = np.c_[y, np.r_[np.ones(3), np.zeros(97)]]  # the second item: three positives
    cal = calibrate(logits, targets, ["seen", "rare"])
    a, b = cal["seen"]["platt"]
    p = 1 / (1 + np.exp(-(a * logits[:, 0] + b)))
    assert a > 0 and ((p >= cal["seen"]["threshold"]) == (y == 1)).mean() > 0.95
    assert cal["rare"] == {"platt": [1.0, 0.0], "threshold": 0.5, "positives": 3}
