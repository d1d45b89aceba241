"""``callqa train asr`` / ``callqa train whisper``: LightningCLI over the ASR modules and AsrDataModule,
tracked in MLflow.

The vocabulary comes from the data (or a base checkpoint), so it is linked into the model when the
DataModule is instantiated. Each run logs its resolved config, the data fingerprint, per-epoch loss and
CER, sample decodes and the final checkpoint to MLflow (a SQLite store under runs/ by default).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import MLFlowLogger

from callqa.models.checkpoint import hyper_parameters
from callqa.training.asr_data import AsrDataModule
from callqa.training.asr_module import AsrModule

log = logging.getLogger(__name__)


class TrainCLI(LightningCLI):
    """LightningCLI with ``--resume CKPT``; a resumed run goes on logging into its own MLflow run."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--resume", type=str | None, default=None, help="Checkpoint to resume training from."
        )

    def before_instantiate_classes(self) -> None:
        """Point the MLflow logger at the resumed checkpoint's run, so one training is one run with
        one loss curve (a fresh run per resume would scatter it), when it logs to the same store.
        MLflow params are immutable, so a resume that changes a hyper-parameter (a longer schedule,
        say) opens a new run instead, tagged with the run it goes on from."""
        resume, logger = self.config.get("resume"), self.config.get("trainer.logger")
        if not resume or not hasattr(logger, "class_path") or not logger.class_path.endswith("MLFlowLogger"):
            return
        hparams = hyper_parameters(resume)
        run_id, uri = hparams.get("mlflow_run_id"), hparams.get("mlflow_tracking_uri")
        same_store = uri == logger.init_args.get("tracking_uri")
        if not run_id or logger.init_args.get("run_id") is not None or not same_store:
            return
        changed = _changed_params(hparams, self.config.get("model").as_dict())
        if changed:
            logger.init_args.tags = {**(logger.init_args.get("tags") or {}), "callqa.resumed_from": run_id}
            log.warning("resume changes %s: new MLflow run (from %s)", ", ".join(changed), run_id)
            return
        logger.init_args.run_id = run_id
        log.info("resuming into MLflow run %s", run_id)


def _changed_params(saved: dict, config: dict, prefix: str = "") -> list[str]:
    """Keys (dotted) whose configured value differs from the checkpoint's, compared as MLflow logs
    them (strings); values the config leaves unset, such as linked ones, do not count."""
    changed = []
    for key, value in config.items():
        if value is None or key not in saved:
            continue
        old = saved[key]
        old = vars(old) if hasattr(old, "__dataclass_fields__") else old
        if isinstance(value, dict) and isinstance(old, dict):
            changed += _changed_params(old, value, f"{prefix}{key}.")
        elif str(value) != str(old):
            changed.append(f"{prefix}{key}")
    return changed


class AsrCLI(TrainCLI):
    """The CTC model is built with the vocabulary of the data it trains on."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.link_arguments("data.vocabulary", "model.tokenizer", apply_on="instantiate")


def make_cli(
    cli_class: type[TrainCLI],
    module: type[L.LightningModule],
    datamodule: type[L.LightningDataModule],
    args: list[str],
    prog: str,
) -> TrainCLI:
    """Parse ``args`` (``--config FILE`` plus any ``--section.key=value`` overrides) and build the model
    and data; ``prog`` is the command its help and errors name."""
    with warnings.catch_warnings():  # the callqa command line passes its own arguments on by design
        warnings.filterwarnings("ignore", "LightningCLI's args parameter", UserWarning)
        return cli_class(
            module,
            datamodule,
            run=False,
            args=args,
            parser_kwargs={"prog": prog},
            save_config_callback=None,
            trainer_defaults={"use_distributed_sampler": False},
        )


def _train(
    cli_class: type[TrainCLI], module: type[L.LightningModule], args: list[str], prog: str
) -> TrainCLI:
    cli = make_cli(cli_class, module, AsrDataModule, args, prog)
    fit_and_record(cli)
    return cli


def train_asr(args: list[str]) -> TrainCLI:
    return _train(AsrCLI, AsrModule, args, "callqa train asr")


def train_whisper(args: list[str]) -> TrainCLI:
    """Fine-tune Whisper from a local folder on the same corpora and data pipeline as the CTC models."""
    from callqa.training.whisper_module import WhisperModule

    return _train(TrainCLI, WhisperModule, args, "callqa train whisper")


def fit_and_record(cli: LightningCLI) -> None:
    """Fit, with the resolved config, data fingerprint, checkpoint and sample decodes in MLflow."""
    config_text = cli.parser.dump(cli.config, skip_none=False)
    mlf = next((lg for lg in cli.trainer.loggers if isinstance(lg, MLFlowLogger)), None)
    if mlf is not None:
        # checkpoints remember their run, so export can stamp the run id into the ONNX file and log it there
        cli.model.hparams["mlflow_run_id"] = mlf.run_id
        cli.model.hparams["mlflow_tracking_uri"] = mlf._tracking_uri
        mlf.experiment.log_text(mlf.run_id, config_text, "config.yaml")
        if "tokenizer" in cli.model.hparams:
            mlf.experiment.log_text(mlf.run_id, cli.model.hparams["tokenizer"], "tokenizer.json")
        params = sum(p.numel() for p in cli.model.parameters())
        mlf.log_hyperparams({"data_fingerprint": cli.datamodule.fingerprint(), "parameters": params})
    cli.trainer.fit(cli.model, cli.datamodule, ckpt_path=cli.config.get("resume"))
    if mlf is not None:
        ckpt = cli.trainer.checkpoint_callback.best_model_path if cli.trainer.checkpoint_callback else ""
        if ckpt and Path(ckpt).exists():
            mlf.experiment.log_artifact(mlf.run_id, ckpt, "checkpoints")
        samples = getattr(cli.model, "samples", [])
        if samples:
            mlf.experiment.log_text(
                mlf.run_id,
                yaml.safe_dump([{"id": i, "ref": r, "hyp": h} for i, r, h in samples], allow_unicode=True),
                "sample_decodes.yaml",
            )


def best_checkpoint(cli: LightningCLI) -> Path:
    cb = cli.trainer.checkpoint_callback
    path = (cb.best_model_path or cb.last_model_path) if cb else ""
    if not path:
        raise FileNotFoundError("training wrote no checkpoint (is a ModelCheckpoint callback configured?)")
    return Path(path)
