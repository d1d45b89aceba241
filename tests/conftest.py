"""Shared fixtures: one tiny synthetic corpus per test session, built from the tiny preset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from callqa.data.schema import CallRecord, Utterance, read_calls, read_utterances
from callqa.data.synth.config import load_synth_config, preset_path
from callqa.data.synth.generate import generate_corpus


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "tiny"
    generate_corpus(load_synth_config(preset_path("tiny")), out, seed=0, workers=2)
    return out


@pytest.fixture(scope="session")
def tiny_calls(tiny_corpus: Path) -> list[CallRecord]:
    return read_calls(tiny_corpus / "calls.jsonl")


@pytest.fixture(scope="session")
def tiny_utterances(tiny_corpus: Path) -> list[Utterance]:
    return read_utterances(tiny_corpus / "utterances.jsonl")


@pytest.fixture
def isolated_run(tmp_path: Path) -> list[str]:
    """Training overrides that keep the MLflow store, its artifacts and checkpoints inside tmp_path."""
    return [
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
        f"--trainer.logger.init_args.artifact_location={tmp_path}/mlartifacts",
        f"--trainer.callbacks.init_args.dirpath={tmp_path}/ckpt",
    ]


@pytest.fixture
def one_step_args(tiny_corpus: Path, isolated_run: list[str]) -> Callable[..., list[str]]:
    """Training arguments for one CPU step of a config on the tiny corpus, tracked inside tmp_path."""

    def args(config: Path, *extra: str) -> list[str]:
        return [
            "--config",
            str(config),
            "--trainer.fast_dev_run=1",
            "--trainer.accelerator=cpu",
            "--trainer.precision=32-true",
            "--trainer.devices=1",
            f"--data.corpora=[{tiny_corpus}]",
            "--data.num_workers=0",
            "--data.batch_seconds=20",
            *extra,
            *isolated_run,
        ]

    return args
