"""The quickstart's serving stage: a model promoted through the gates, ``callqa serve`` started in its
own process with the champion from the registry, calls scored over HTTP as the batch would score them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from callqa.data.schema import CallRecord, Utterance
from callqa.evaluation.asr_eval import evaluate_asr
from callqa.export.asr_report import export_asr
from callqa.models.tokenizer import CharTokenizer
from callqa.quickstart_serve import Candidate, serve_stage
from callqa.training.asr_module import AsrModule

TINY = {"d_model": 32, "num_heads": 2, "ffn_dim": 64, "num_layers": 2, "kernel_size": 7}


@pytest.fixture
def asr_candidate(tmp_path: Path, tiny_corpus: Path, tiny_utterances: list[Utterance]) -> Candidate:
    torch.manual_seed(0)
    module = AsrModule(TINY, CharTokenizer.build(u.text for u in tiny_utterances).to_json())
    ckpt = tmp_path / "tiny.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, ckpt)
    export_asr(ckpt, tmp_path / "export", int8=False, corpus=tiny_corpus, limit=4)
    evaluate_asr(tmp_path / "export" / "asr.onnx", tiny_corpus, tmp_path / "eval", limit=20)
    return Candidate("asr", tmp_path / "export", tmp_path / "eval" / "asr_eval.json")


def test_the_champion_is_served_and_scores_the_test_calls_over_http(
    tmp_path: Path,
    tiny_corpus: Path,
    tiny_calls: list[CallRecord],
    asr_candidate: Candidate,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    figures = serve_stage(tmp_path / "qs", [asr_candidate], tiny_corpus, tiny_corpus, {}, uri)
    assert figures["promotion"]["asr"] == {
        "version": 1,
        "champion": True,
        "reasons": ["parity passed", "int8: no variant made", figures["promotion"]["asr"]["reasons"][2]],
    }
    tests = [c for c in tiny_calls if c.split == "test"]
    assert figures["test_calls"] == len(tests) > 0 and figures["refused"] == []
    assert figures["models"]["asr"] == "models:/callqa-asr/1"  # the version served, not a temp folder
    assert figures["eval"]["calls"] == len(tiny_calls)
    scored = (tmp_path / "qs" / "serve" / "scored-test.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(scored) == len(tests)
    printed = " ".join(capsys.readouterr().out.split())
    assert f"{len(tests)} held-out test calls scored over HTTP" in printed
    assert f"mlflow ui --backend-store-uri {uri}" in printed
    # the same model again: no worse on the same calls item by item, so it becomes the champion
    again = serve_stage(tmp_path / "qs", [asr_candidate], tiny_corpus, tiny_corpus, {}, uri)
    assert again["promotion"]["asr"]["champion"] and again["models"]["asr"] == "models:/callqa-asr/2"
    assert "not worse item by item" in again["promotion"]["asr"]["reasons"][-1]
