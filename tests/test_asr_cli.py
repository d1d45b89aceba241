"""Every ASR config builds and runs one tiny step; a short CPU run is tracked in MLflow."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import mlflow
import pytest
import yaml

from callqa.training.asr_cli import TrainCLI, train_asr

# the configs that fine-tune a pretrained folder run one step in the tests that build a tiny one
ASR_CONFIGS = sorted(
    p
    for p in Path(str(resources.files("callqa.configs") / "asr")).glob("*.yaml")
    if not p.name.startswith(("whisper", "hf-ctc"))
)


@pytest.mark.parametrize("config", ASR_CONFIGS, ids=lambda p: p.name)
def test_config_runs_one_step(config: Path, one_step_args: Callable[..., list[str]]) -> None:
    cli = train_asr(one_step_args(config))
    assert cli.trainer.global_step == 1
    assert len(cli.model.tokenizer) > 10


def _tiny_quickstart_run(corpus: Path, isolated_run: list[str], train_batches: int, *extra: str) -> TrainCLI:
    """The quickstart config shrunk to a 1-layer model and one short epoch, tracked inside tmp_path."""
    config = next(p for p in ASR_CONFIGS if p.name == "quickstart.yaml")
    return train_asr(
        [
            "--config",
            str(config),
            "--trainer.max_epochs=1",
            f"--trainer.limit_train_batches={train_batches}",
            "--trainer.limit_val_batches=1",
            "--model.model.num_layers=1",
            "--model.model.d_model=32",
            "--model.model.ffn_dim=64",
            f"--data.corpora=[{corpus}]",
            "--data.num_workers=0",
            *isolated_run,
            *extra,
        ]
    )


def test_short_run_is_tracked_in_mlflow(tiny_corpus: Path, tmp_path: Path, isolated_run: list[str]) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cli = _tiny_quickstart_run(tiny_corpus, isolated_run, train_batches=2)
    run = mlflow.MlflowClient(uri).get_run(cli.trainer.logger.run_id)
    assert {"val/cer", "val/loss", "train/loss_epoch"} <= set(run.data.metrics)
    assert run.data.params["data_fingerprint"]
    artifacts = {a.path for a in mlflow.MlflowClient(uri).list_artifacts(run.info.run_id)}
    assert {"config.yaml", "checkpoints", "sample_decodes.yaml"} <= artifacts
    samples = yaml.safe_load(
        Path(
            mlflow.MlflowClient(uri).download_artifacts(run.info.run_id, "sample_decodes.yaml", str(tmp_path))
        ).read_text(encoding="utf-8")
    )
    lengths = [len(s["ref"]) for s in samples]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]  # short to long, not the first batch


def test_export_is_stamped_and_logged_to_the_training_run(
    tiny_corpus: Path, tmp_path: Path, isolated_run: list[str]
) -> None:
    from callqa.export.asr_report import export_asr
    from callqa.serving.asr_onnx import OnnxAsr

    cli = _tiny_quickstart_run(tiny_corpus, isolated_run, train_batches=1)
    run_id = cli.trainer.logger.run_id
    report = export_asr(cli.trainer.checkpoint_callback.last_model_path, tmp_path / "onnx", int8=False)
    assert OnnxAsr(report["onnx"]).meta["callqa.run_id"] == run_id
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    assert {a.path for a in client.list_artifacts(run_id, "onnx")} >= {"onnx/asr.onnx", "onnx/export.json"}
    assert "tokenizer.json" in {a.path for a in client.list_artifacts(run_id)}


def test_resume_continues_the_steps_and_the_mlflow_run(
    tiny_corpus: Path, tmp_path: Path, isolated_run: list[str]
) -> None:
    first = _tiny_quickstart_run(tiny_corpus, isolated_run, 2)
    resumed = _tiny_quickstart_run(
        tiny_corpus,
        isolated_run,
        2,
        "--trainer.max_epochs=2",
        f"--resume={first.trainer.checkpoint_callback.last_model_path}",
    )
    assert (first.trainer.global_step, resumed.trainer.global_step) == (2, 4)
    assert resumed.trainer.logger.run_id == first.trainer.logger.run_id
    history = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_metric_history(
        first.trainer.logger.run_id, "val/cer"
    )
    assert len(history) == 2


def test_resume_with_a_changed_schedule_opens_a_new_run_tagged_with_the_old(
    tiny_corpus: Path, tmp_path: Path, isolated_run: list[str]
) -> None:
    first = _tiny_quickstart_run(tiny_corpus, isolated_run, 2)
    resumed = _tiny_quickstart_run(
        tiny_corpus,
        isolated_run,
        2,
        "--trainer.max_epochs=2",
        "--model.total_steps=40",
        f"--resume={first.trainer.checkpoint_callback.last_model_path}",
    )
    assert resumed.trainer.global_step == 4
    new_run = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(resumed.trainer.logger.run_id)
    assert new_run.info.run_id != first.trainer.logger.run_id
    assert new_run.data.tags["callqa.resumed_from"] == first.trainer.logger.run_id
    assert new_run.data.params["total_steps"] == "40"
    import torch

    from callqa.training.package import mlflow_summary

    ckpt = torch.load(resumed.trainer.checkpoint_callback.last_model_path, weights_only=True)
    summary = mlflow_summary(ckpt["hyper_parameters"])
    assert summary["resumed_from"] == first.trainer.logger.run_id


def test_packaged_checkpoint_carries_its_mlflow_run_summary(
    tiny_corpus: Path, tmp_path: Path, isolated_run: list[str]
) -> None:
    import json

    import torch

    from callqa.training.package import package_checkpoint

    cli = _tiny_quickstart_run(tiny_corpus, isolated_run, train_batches=1)
    run = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(cli.trainer.logger.run_id)
    out = package_checkpoint(cli.trainer.checkpoint_callback.last_model_path, tmp_path / "base.ckpt")
    summary = torch.load(out, weights_only=True)["provenance"]["mlflow"]
    assert summary["run_id"] == run.info.run_id
    assert summary["data_fingerprint"] == run.data.params["data_fingerprint"]
    assert summary["val_cer"] and summary["metrics"]["val/cer"] == summary["val_cer"][-1][1]
    beside = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert beside["mlflow"]["run_id"] == run.info.run_id


def test_package_summary_shows_the_metrics_of_the_packaged_step(tmp_path: Path) -> None:
    """A best-dev checkpoint from the middle of a run carries that step's figures, not the last ones."""
    from callqa.training.package import mlflow_summary

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    run = client.create_run(client.create_experiment("pkg"))
    for step, value in ((10, 0.5), (20, 0.9), (30, 0.7)):
        client.log_metric(run.info.run_id, "val/ua", value, step=step)
    client.log_metric(run.info.run_id, "train/loss", 2.0, step=25)
    hp = {"mlflow_run_id": run.info.run_id, "mlflow_tracking_uri": uri}
    at_20 = mlflow_summary(hp, step=20)
    assert at_20["metrics"] == {"val/ua": 0.9} and at_20["metrics_step"] == 20
    assert mlflow_summary(hp)["metrics"] == {"train/loss": 2.0, "val/ua": 0.7}


def test_schedule_sized_in_epochs_ends_at_its_floor(
    tiny_corpus: Path, tmp_path: Path, isolated_run: list[str]
) -> None:
    """quickstart.yaml leaves total_steps to the trainer: after its last step the rate is at the floor."""
    cli = _tiny_quickstart_run(
        tiny_corpus, isolated_run, 2, "--trainer.max_epochs=2", "--model.warmup_steps=1"
    )
    assert cli.model.hparams.total_steps is None and cli.trainer.global_step == 4
    assert cli.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.05 * cli.model.hparams.lr)


def test_two_cpu_processes_train_an_epoch_seeing_every_utterance_once(
    tiny_corpus: Path, tmp_path: Path, isolated_run: list[str]
) -> None:
    """Lightning DDP on gloo, two spawned CPU processes: the ranks split the epoch between them."""
    seen = tmp_path / "seen"
    seen.mkdir()
    probe = {"class_path": "tests.ddp_probe.SeenIds", "init_args": {"folder": str(seen)}}
    cli = _tiny_quickstart_run(
        tiny_corpus,
        isolated_run,
        1.0,
        "--trainer.strategy=ddp_spawn",
        "--trainer.devices=2",
        "--trainer.accelerator=cpu",
        f"--trainer.callbacks+={json.dumps(probe)}",
    )
    ranks = [p.read_text(encoding="utf-8").split("\n") for p in sorted(seen.glob("rank*-of-2.txt"))]
    assert len(ranks) == 2 and all(ranks)
    ids = [i for r in ranks for i in r]
    expected = cli.datamodule.train_dataloader().batch_sampler.durations.size
    assert len(ids) == len(set(ids)) == expected
