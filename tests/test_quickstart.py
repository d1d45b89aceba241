"""The quickstart's ASR stage: fine-tune a base, export with parity, report held-out CER."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import torch
import yaml

from callqa.data.schema import Utterance
from callqa.models.tokenizer import CharTokenizer
from callqa.quickstart import BASE_ASR, asr_stage
from callqa.training.asr_module import AsrModule


def test_asr_stage_is_skipped_without_a_base(tmp_path: Path, tiny_corpus: Path) -> None:
    assert asr_stage(tiny_corpus, tmp_path, base=tmp_path / "missing.ckpt") is None


@pytest.mark.slow  # its parts (train, export, evaluate, n-gram) each have a default test
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
    assert report["with_lm"]["utterances"] == report["utterances"]
    assert report["with_lm"]["decoding"].startswith("beam 8, lm.json")
    assert (tmp_path / "mlflow.db").exists()  # the overrides reached the trainer
    export = json.loads((tmp_path / "qs" / "export" / "asr" / "export.json").read_text(encoding="utf-8"))
    assert export["parity"]["passed"] and "cer_change" in export["int8"]
    tuned = torch.load(tmp_path / "qs" / "asr" / "asr-finetuned.ckpt", weights_only=True)
    assert tuned["provenance"]["interpolated"] == {"base": str(path), "base_weight": 0.5}


@pytest.mark.skipif(not BASE_ASR.exists(), reason="no base checkpoint shipped yet")
def test_shipped_base_knows_the_characters_and_transcribes_held_out_speech(
    tiny_corpus: Path, tiny_utterances: list[Utterance]
) -> None:
    """The committed base, before any fine-tuning, on a corpus it never saw (other seed, test voices and
    templates): its vocabulary covers the text and it already gets most characters right."""
    from callqa.data.segments import load_utterance
    from callqa.evaluation.metrics import cer
    from callqa.models.asr.checkpoint import load_asr_checkpoint
    from callqa.models.asr.decoding import greedy_ids
    from callqa.models.tokenizer import normalize

    model, tok, _ = load_asr_checkpoint(BASE_ASR)
    provenance = torch.load(BASE_ASR, weights_only=True)["provenance"]
    recipe = Path(str(resources.files("callqa.configs"))) / provenance["recipe"].removeprefix("configs/")
    assert recipe.is_file() and provenance["init_from"]["provenance"]["recipe"]  # its lineage is recorded
    text = "".join(normalize(u.text) for u in tiny_utterances)
    assert sum(c not in tok.index for c in text) / len(text) < 0.005
    test = [u for u in tiny_utterances if u.split == "test" and u.text][:40]
    refs, hyps = [], []
    with torch.inference_mode():
        for u in test:
            wave = torch.from_numpy(load_utterance(u, tiny_corpus))[None]
            logp, n = model.eval()(wave, torch.tensor([wave.shape[1]]))
            refs.append(normalize(u.text))
            hyps.append(tok.decode(greedy_ids(logp[0, : n[0]].numpy())))
    assert len(test) >= 20 and cer(refs, hyps) < 0.5
