"""Every SER config builds and runs one tiny training step on the tiny corpus (tracked inside tmp_path)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import torch

from callqa.training.ser_cli import train_ser

CONFIGS = sorted((Path(str(resources.files("callqa.configs"))) / "ser").glob("*.yaml"))


def test_there_are_ser_configs() -> None:
    assert {p.name for p in CONFIGS} >= {"quickstart.yaml", "hf-ssl.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_ser_config_runs_one_step(
    path: Path, tmp_path: Path, tiny_corpus: Path, isolated_run: list[str]
) -> None:
    extra = []
    if "type: hf" in path.read_text(encoding="utf-8"):
        from transformers import Wav2Vec2Config, Wav2Vec2Model

        from tests.test_asr_hf import TINY_ENCODER

        torch.manual_seed(0)
        Wav2Vec2Model(Wav2Vec2Config(**TINY_ENCODER)).save_pretrained(tmp_path / "w2v")
        extra = [f"--model.model.path={tmp_path / 'w2v'}"]
    cli = train_ser(
        [
            "--config",
            str(path),
            "--trainer.fast_dev_run=1",
            "--trainer.accelerator=cpu",
            "--trainer.precision=32-true",
            f"--data.corpora=[{tiny_corpus}]",
            f"--data.cache_dir={tmp_path / 'cache'}",
            "--data.num_workers=0",
            "--data.batch_size=4",
            *extra,
            *isolated_run,
        ]
    )
    assert cli.trainer.global_step == 1
    weights = cli.model.hparams["class_weights"]
    assert len(weights) == 5 and cli.model.hparams["features"]["sample_rate"] == 8000
    members = getattr(cli.model.model, "members", [cli.model.model])  # the shipped base is an ensemble
    assert all(m.stats_std.shape == (m.cfg.stats_dim,) for m in members)
