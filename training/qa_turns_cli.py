"""``callqa train qa-turns``: the neural QA model, cross-fitted.

One LightningCLI run per fold (each holds another fold out, tracked in MLflow as the other models
are); then the fold models become one ensemble checkpoint, calibrated on the logits each gave for the
calls it never saw. A few hundred inspected calls leave a single held-out fifth too few positives
per item to place a threshold (on qa-eval a single split's thresholds cost 0.03 QWK against the
transparent model, at the same AUC); cross-fitting calibrates on every call and averages away much
of one training's luck.

The data decides the vocabulary, the feature standardisation, the items and their points, so those
are linked into the model when both are instantiated.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.cli import LightningArgumentParser

from callqa.data.files import atomic_path
from callqa.models.qa.turn_inputs import INPUT_NAMES
from callqa.training.asr_cli import TrainCLI, best_checkpoint, fit_and_record, make_cli
from callqa.training.qa_turns_data import QaTurnsDataModule
from callqa.training.qa_turns_module import QaTurnsModule, calibrate

log = logging.getLogger(__name__)


class QaTurnsCLI(TrainCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.link_arguments("data.encoding", "model.encoding", apply_on="instantiate")
        parser.link_arguments("data.items", "model.items", apply_on="instantiate")
        parser.link_arguments("data.rubric_ref", "model.rubric_ref", apply_on="instantiate")
        parser.link_arguments("data.points", "model.points", apply_on="instantiate")


def train_fold(args: list[str]) -> QaTurnsCLI:
    """One fold: parse ``args`` (``--config FILE`` plus ``--section.key=value`` overrides), fit, record."""
    cli = make_cli(QaTurnsCLI, QaTurnsModule, QaTurnsDataModule, args, "callqa train qa-turns")
    fit_and_record(cli)
    return cli


def _held_out_logits(cli: QaTurnsCLI) -> tuple[torch.nn.Module, dict[str, Any], np.ndarray, np.ndarray]:
    """The fold's best model and its logits and targets on the calls it held out."""
    from callqa.export.qa import load_qa_checkpoint

    model, hp = load_qa_checkpoint(best_checkpoint(cli))
    logits, targets = [], []
    with torch.no_grad():
        for batch in cli.datamodule.val_dataloader():
            logits.append(model(*(batch[k] for k in INPUT_NAMES))[0].numpy())
            targets.append(batch["targets"].numpy())
    return model, hp, np.concatenate(logits), np.concatenate(targets)


def train_qa_turns(args: list[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Train every fold the data config names, then write the calibrated ensemble to ``out``; returns
    the ensemble checkpoint's hyper-parameters (``calibration`` holds each item's out-of-fold fit)."""
    out = Path(out)

    def fold_args(k: int) -> list[str]:
        where = out.parent / f"fold{k}"
        return [
            *args,
            f"--data.fold={k}",
            f"--trainer.default_root_dir={where}",
            f"--trainer.callbacks.init_args.dirpath={where / 'checkpoints'}",
        ]

    first = train_fold(fold_args(0))
    folds = int(first.datamodule.hparams.folds)
    states: dict[str, torch.Tensor] = {}
    members, logits, targets = [], [], []
    for k in range(folds):
        cli = first if k == 0 else train_fold(fold_args(k))
        model, hp, fold_logits, fold_targets = _held_out_logits(cli)
        if hp["encoding"] != first.model.hparams["encoding"] or hp["items"] != first.model.hparams["items"]:
            raise ValueError(
                f"fold {k} was built with other data than fold 0 (did the corpus or rubric change?)"
            )
        members.append(hp["model"])
        states.update({f"model.members.{k}.{n}": v for n, v in model.state_dict().items()})
        logits.append(fold_logits)
        targets.append(fold_targets)
        log.info("fold %d/%d: %d held-out calls", k + 1, folds, len(fold_logits))
    items = list(hp["items"])
    hparams = {
        **{key: hp[key] for key in ("encoding", "items", "points", "rubric_ref")},
        "model": {"type": "ensemble", "members": members},
        "calibration": calibrate(np.concatenate(logits), np.concatenate(targets), items),
        "folds": folds,
        "calls": int(sum(len(x) for x in logits)),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save({"hyper_parameters": hparams, "state_dict": states}, tmp)
    log.info("QA turn ensemble of %d folds (%d calls) saved to %s", folds, hparams["calls"], out)
    return hparams
