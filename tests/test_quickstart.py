"""The quickstart's ASR stage: fine-tune a base, export with parity, report held-out CER."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch
import yaml

from callqa.data.schema import Utterance
from callqa.models.tokenizer import CharTokenizer
from callqa.quickstart import asr_stage
from callqa.training.asr_module import AsrModule


def test_asr_stage_is_skipped_without_a_base(tmp_path: Path, tiny_corpus: Path) -> None:
    assert asr_stage(tiny_corpus, tmp_path, base=tmp_path / "missing.ckpt") is None


def test_asr_stage_end_to_end(
    tmp_path: Path, tiny_corpus: Path, tiny_utterances: list[Utterance], isolated_run: list[str]
) -> None:
    finetune = yaml.safe_load((resources.files("callqa.configs") / "asr" / "finetune.yaml").read_text())
    tok = CharTokenizer.build(u.text for u in tiny_utterances)
    base = AsrModule(finetune["model"]["model"], tok.to_json())
    path = tmp_path / "base.ckpt"
    torch.save({"hyper_parameters": dict(base.hparams), "state_dict": base.state_dict()}, path)
    report = asr_stage(
        tiny_corpus,
        tmp_path / "qs",
        base=path,
        overrides=(
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1",
            "--data.num_workers=0",
            *isolated_run,
        ),
    )
    assert report is not None and report["split"] == "test" and report["utterances"] > 0
    assert (tmp_path / "mlflow.db").exists()  # the overrides reached the trainer
    export = json.loads((tmp_path / "qs" / "export" / "asr" / "export.json").read_text(encoding="utf-8"))
    assert export["parity"]["passed"] and "cer_change" in export["int8"]
