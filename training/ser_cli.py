"""``callqa train ser``: LightningCLI over SerModule and SerDataModule, tracked in MLflow as ASR is;
and :func:`ser_stage`, the quickstart's whole SER step (train, export with its gates, evaluate).

The data decides what the model is built with (feature settings, class weights, the stats
normalisation), so those are linked from the DataModule into the model when both are instantiated.
"""

from __future__ import annotations

import logging
import os
import time
from importlib import resources
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser

from callqa.training.asr_cli import TrainCLI, best_checkpoint, fit_and_record, make_cli
from callqa.training.ser_data import SerDataModule
from callqa.training.ser_module import SerModule

log = logging.getLogger(__name__)

BASE_SER = Path(str(resources.files("callqa.models") / "ser" / "base" / "ser-base.ckpt"))


def _config(name: str) -> Path:
    return Path(str(resources.files("callqa.configs") / "ser" / name))


class SerCLI(TrainCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.link_arguments("data.features", "model.features", apply_on="instantiate")
        parser.link_arguments("data.class_weights", "model.class_weights", apply_on="instantiate")
        parser.link_arguments("data.stats_normalisation", "model.stats_norm", apply_on="instantiate")
        parser.link_arguments("data.pair_scale", "model.pair_scale", apply_on="instantiate")


def train_ser(args: list[str]) -> SerCLI:
    """Parse ``args`` (``--config FILE`` plus ``--section.key=value`` overrides), fit, and record."""
    cli = make_cli(SerCLI, SerModule, SerDataModule, args, "callqa train ser")
    fit_and_record(cli)
    return cli


def ser_stage(
    corpus: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: str | os.PathLike[str] | None = None,
    eval_corpus: str | os.PathLike[str] | None = None,
    extra: list[str] | None = None,
    base: Path | None = BASE_SER,
) -> dict[str, Any]:
    """Train SER on ``corpus``, export it with the parity gate and int8, evaluate it on the test split
    (held-out voices) of ``eval_corpus`` or ``corpus``; returns the evaluation report
    (``report["metrics"]["ua"]`` is the held-out UA).

    Without ``config``: fine-tune ``base`` (configs/ser/finetune.yaml) where that file exists, else train
    from scratch (configs/ser/quickstart.yaml). A corpus whose callers keep one mood per call, as the
    small one's do, gives a from-scratch model little contrast within a speaker to learn from."""
    from callqa.evaluation.ser_eval import evaluate_ser
    from callqa.export.ser import export_ser

    out = Path(out)
    extra = list(extra or [])
    if config is None and base is not None and base.is_file():
        config = _config("finetune.yaml")
        extra.insert(0, f"--model.init_from={base}")
        log.info("fine-tuning the SER base %s", base)
    elif config is None:
        config = _config("quickstart.yaml")
        log.warning("no SER base at %s: training from scratch (configs/ser/base.yaml makes one)", base)
    t0 = time.perf_counter()
    cli = train_ser(
        [
            "--config",
            str(config),
            f"--data.corpora=[{corpus}]",
            f"--trainer.default_root_dir={out}",
            f"--trainer.callbacks.init_args.dirpath={out / 'checkpoints'}",
            *extra,
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
