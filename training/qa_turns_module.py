"""The LightningModule of the neural QA model: binary cross-entropy on each item's soft label (the
rater model's P(defect), so a call the inspectors split on pulls both ways), and at the end of each
validation pass the item's calibration (Platt scaling of its logit) and decision threshold (best F1),
fitted on the validation calls and stored in the checkpoint with everything else the model needs:
its config, the input encoding, the items, their typical points and the rubric it was trained on."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from callqa.models.qa.features import item_feature_names
from callqa.models.qa.turn_inputs import INPUT_NAMES
from callqa.models.registry import build_qa_model
from callqa.training.qa_linear import MIN_POSITIVES, best_threshold, platt_scaling, sigmoid
from callqa.training.schedule import schedule_length, warmup_cosine

log = logging.getLogger(__name__)


class QaTurnsModule(L.LightningModule):
    def __init__(
        self,
        model: dict[str, Any],
        encoding: dict[str, Any] | None = None,
        items: list[str] | None = None,
        rubric_ref: dict[str, Any] | None = None,
        points: dict[str, float] | None = None,
        lr: float = 2e-3,
        weight_decay: float = 1e-2,
        warmup_steps: int = 20,
        total_steps: int | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        items = list(items or [])
        features = len((encoding or {}).get("features", []))
        vocab = len((encoding or {}).get("vocabulary", [])) or model.get("vocab_size", 4000)
        model = {**model, "vocab_size": vocab, "items": len(items) or model.get("items", 1)}
        model["call_features"] = features
        names = (encoding or {}).get("features", [])
        if names and items:
            model["item_features"] = [[names.index(n) for n in item_feature_names(i, names)] for i in items]
        self.hparams["model"] = model
        self.model = build_qa_model(model)
        self.loss = torch.nn.BCEWithLogitsLoss()
        self._val: list[tuple[np.ndarray, np.ndarray]] = []

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(*inputs)

    def _logits(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.model(*(batch[k] for k in INPUT_NAMES))[0]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.loss(self._logits(batch), batch["targets"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["ids"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self._logits(batch)
        self.log("val/loss", self.loss(logits, batch["targets"]), prog_bar=True, batch_size=len(batch["ids"]))
        self._val.append((logits.float().cpu().numpy(), batch["targets"].cpu().numpy()))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        logits, targets = (np.concatenate(x) for x in zip(*self._val, strict=True))
        self._val = []
        self.hparams["calibration"] = calibrate(logits, targets, list(self.hparams["items"] or []))
        aucs = [a for a in (_auc(logits[:, k], targets[:, k] >= 0.5) for k in range(logits.shape[1])) if a]
        if aucs:
            self.log("val/mean_auc", float(np.mean(aucs)))

    def configure_optimizers(self) -> dict[str, Any]:
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        steps = schedule_length(self.hparams.total_steps, self.trainer)
        return {"optimizer": opt, "lr_scheduler": warmup_cosine(opt, self.hparams.warmup_steps, steps)}


def _auc(score: np.ndarray, y: np.ndarray) -> float | None:
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else None


def calibrate(logits: np.ndarray, targets: np.ndarray, items: list[str]) -> dict[str, dict[str, Any]]:
    """Per item: Platt scaling of the logit and the F1-best threshold on the calibrated probability,
    both from the validation calls; too few positives there to fit either, the raw sigmoid at 0.5."""
    out = {}
    for k, item in enumerate(items):
        y = targets[:, k] >= 0.5
        if min(y.sum(), (~y).sum()) < MIN_POSITIVES:
            out[item] = {"platt": [1.0, 0.0], "threshold": 0.5, "positives": int(y.sum())}
            continue
        a, b = platt_scaling(logits[:, k], y)
        p = sigmoid(a * logits[:, k] + b)
        out[item] = {"platt": [a, b], "threshold": best_threshold(p, y), "positives": int(y.sum())}
    return out
