"""Whisper fine-tuning from a tiny random local checkpoint: features, a training step, ONNX export."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor
from typer.testing import CliRunner

from callqa.cli import app
from callqa.data.schema import Utterance
from callqa.export.whisper import export_whisper_onnx
from callqa.models.asr.whisper import WhisperASR, WhisperASRConfig
from callqa.models.tokenizer import CharTokenizer
from callqa.serving.whisper_onnx import OnnxWhisper
from callqa.training.asr_cli import train_whisper
from callqa.training.asr_data import AsrDataset, Item, collate
from callqa.training.whisper_module import WhisperModule
from tests.whisper_tiny import make_tiny_whisper


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny")


def test_frontend_matches_the_feature_extractor(whisper_dir: Path) -> None:
    asr = WhisperASR(WhisperASRConfig(path=str(whisper_dir)))
    wave = (np.random.default_rng(0).standard_normal(24000) * 0.1).astype(np.float32)
    ours = asr.frontend(torch.from_numpy(wave)[None])[0].numpy()
    at16k = asr.frontend.upsample(torch.from_numpy(wave)[None])[0].numpy()
    ref = WhisperFeatureExtractor.from_pretrained(whisper_dir)(
        at16k, sampling_rate=16000, return_tensors="np"
    )
    assert ours.shape == ref.input_features[0].shape == (80, 3000)
    assert np.abs(ours - ref.input_features[0]).max() < 2e-3


def test_trains_a_step_and_exports(
    whisper_dir: Path, tmp_path: Path, tiny_corpus: Path, tiny_utterances: list[Utterance]
) -> None:
    module = WhisperModule({"path": str(whisper_dir), "max_new_tokens": 8})
    chosen = [u for u in tiny_utterances if u.duration < 3.0][:2]
    ds = AsrDataset(
        [Item(u, tiny_corpus) for u in chosen], CharTokenizer.build(u.text for u in chosen), train=False
    )
    batch = collate([ds[i] for i in range(2)])
    loss = module.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss)
    assert module.asr.model.proj_out.weight.grad is not None
    module.eval()
    texts = module.asr.transcribe(batch["wave"])
    assert len(texts) == 2

    rebuilt = WhisperASR(WhisperASRConfig(**module.hparams["model"]), load_weights=False)
    rebuilt.load_state_dict(module.asr.state_dict())
    enc, _ = export_whisper_onnx(rebuilt.eval(), tmp_path / "onnx")
    onnx_texts = OnnxWhisper(enc).transcribe(
        [w[: int(n)].numpy() for w, n in zip(batch["wave"], batch["lengths"], strict=True)]
    )
    assert [t.text for t in onnx_texts] == texts
    result = CliRunner().invoke(
        app, ["transcribe", str(next((tiny_corpus / "audio").glob("*.wav"))), "-m", str(enc)]
    )
    assert result.exit_code == 0 and result.stdout.startswith("== "), result.output


def test_whisper_config_runs_one_step(whisper_dir: Path, one_step_args: Callable[..., list[str]]) -> None:
    config = Path(str(resources.files("callqa.configs") / "asr" / "whisper-finetune.yaml"))
    cli = train_whisper(
        one_step_args(config, f"--model.model.path={whisper_dir}", "--model.model.max_new_tokens=4")
    )
    assert cli.trainer.global_step == 1
