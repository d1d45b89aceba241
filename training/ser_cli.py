"""``callqa train ser``: LightningCLI over SerModule and SerDataModule, tracked in MLflow as ASR is;
and :func:`ser_stage`, the quickstart's whole SER step (train, export with its gates, evaluate).

The data decides what the model is built with (feature settings, class weights, the stats
normalisation), so those are linked from the DataModule into the model when both are instantiated.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser

from callqa.training.asr_cli import TrainCLI, _fit_and_record
from callqa.training.ser_data import SerDataModule
from callqa.training.ser_module import SerModule

log = logging.getLogger(__name__)


class SerCLI(TrainCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.link_arguments("data.features", "model.features", apply_on="instantiate")
        parser.link_arguments("data.class_weights", "model.class_weights", apply_on="instantiate")
        parser.link_arguments("data.stats_normalisation", "model.stats_norm", apply_on="instantiate")


def train_ser(args: list[str]) -> SerCLI:
    """Parse ``args`` (``--config FILE`` plus ``--section.key=value`` overrides), fit, and record."""
    cli = SerCLI(
        SerModule,
        SerDataModule,
        run=False,
        args=args,
        save_config_callback=None,
        trainer_defaults={"use_distributed_sampler": False},
    )
    _fit_and_record(cli)
    return cli


def best_checkpoint(cli: SerCLI) -> Path:
    cb = cli.trainer.checkpoint_callback
    path = (cb.best_model_path or cb.last_model_path) if cb else ""
    if not path:
        raise FileNotFoundError("training wrote no checkpoint (is a ModelCheckpoint callback configured?)")
    return Path(path)


def ser_stage(
    corpus: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: str | os.PathLike[str] | None = None,
    eval_corpus: str | os.PathLike[str] | None = None,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    """Train SER on ``corpus`` (configs/ser/quickstart.yaml unless ``config``), export it with the parity
    gate and int8, evaluate it on the test split (held-out voices) of ``eval_corpus`` or ``corpus``;
    returns the evaluation report (``report["metrics"]["ua"]`` is the held-out UA)."""
    from importlib import resources

    from callqa.evaluation.ser_eval import evaluate_ser
    from callqa.serving.ser_export import export_ser

    out = Path(out)
    config = config or Path(str(resources.files("callqa.configs") / "ser" / "quickstart.yaml"))
    t0 = time.perf_counter()
    cli = train_ser(
        [
            "--config",
            str(config),
            f"--data.corpora=[{corpus}]",
            f"--trainer.default_root_dir={out}",
            f"--trainer.callbacks.init_args.dirpath={out / 'checkpoints'}",
            *(extra or []),
        ]
    )
    train_s = time.perf_counter() - t0
    ckpt = best_checkpoint(cli)
    export = export_ser(ckpt, out / "export", corpus=corpus)
    if not export["parity"]["passed"]:
        raise RuntimeError(f"SER export failed its parity gate: {export['parity']}")
    report = evaluate_ser(out / "export" / "ser.onnx", eval_corpus or corpus, out / "eval", split="test")
    report["train_seconds"] = round(train_s, 1)
    report["export"] = export
    log.info(
        "SER: UA %.3f, WA %.3f, macro-F1 %.3f on held-out voices (trained in %.0f s)",
        report["metrics"]["ua"],
        report["metrics"]["wa"],
        report["metrics"]["macro_f1"],
        train_s,
    )
    return report
