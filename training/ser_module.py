"""The LightningModule for speech emotion: class-weighted cross-entropy, UA on dev, and a
self-describing checkpoint (model config with its stats normalisation, feature settings, labels)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch

from callqa.data.constants import EMOTIONS
from callqa.evaluation.ser_metrics import classification_metrics
from callqa.models.checkpoint import model_state
from callqa.models.registry import build_ser_model, ser_input_names
from callqa.models.ser.checkpoint import read_ser_checkpoint
from callqa.models.ser.features import FeatureConfig
from callqa.training.schedule import schedule_length, warmup_cosine

log = logging.getLogger(__name__)


def model_inputs(model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, ...]:
    """The batch tensors a model takes: features for the from-scratch encoder, waves for an SSL one,
    and the call context for a model with one."""
    return tuple(batch[name] for name in ser_input_names(model))


def _normalised(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The models that hold their own stats normalisation: an ensemble's members, or the model."""
    return list(getattr(model, "members", [model]))


def _kept(cfg: dict[str, Any]) -> dict[str, Any]:
    """The parts of a model's config that come from the data or the pretrained folder."""
    return {k: cfg[k] for k in ("stats_norm", "pair_scale", "hf_config") if cfg.get(k)}


def _read_base(path: str, features: dict[str, Any] | None) -> dict[str, Any]:
    """A SER checkpoint to start from, refused when its features are not the data's."""
    base = read_ser_checkpoint(path)
    made_with = FeatureConfig.from_dict(base["hyper_parameters"]["features"], path)
    if features is not None and FeatureConfig.from_dict(features) != made_with:
        raise ValueError(f"{path}: made with other feature settings than the data's: {made_with.to_dict()}")
    return base


class SerModule(L.LightningModule):
    def __init__(
        self,
        model: dict[str, Any],
        features: dict[str, Any] | None = None,
        class_weights: list[float] | None = None,
        stats_norm: list[list[float]] | None = None,
        pair_scale: list[float] | None = None,
        lr: float = 2e-3,
        weight_decay: float = 1e-2,
        warmup_steps: int = 100,
        total_steps: int | None = None,
        label_smoothing: float = 0.05,
        init_from: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.labels = EMOTIONS
        base = _read_base(init_from, features) if init_from else None
        if base is not None:  # the base decides the architecture and its stats normalisation
            model = base["hyper_parameters"]["model"]
        elif features is not None:  # the data's feature settings decide the input sizes
            dims = FeatureConfig.from_dict(features, "SER checkpoint")
            model = {**model, "stats_dim": dims.stats_dim}
            if model.get("type", "encoder") == "encoder":
                model["frame_dim"] = dims.frame_dim
        self.model = build_ser_model(model)
        for m in _normalised(self.model):  # the train set's figures, where the base brought none
            if stats_norm and not m.cfg.stats_norm:
                m.set_stats_norm(stats_norm)
            if pair_scale and getattr(m.cfg, "context_rounds", 0) > 0 and not m.cfg.pair_scale:
                m.set_pair_scale(pair_scale)
        if base is not None:
            self.model.load_state_dict(model_state(base))
            log.info("initialised from %s", init_from)
        self.hparams["model"] = {**model, **self._saved_config()}
        weight = torch.tensor(class_weights) if class_weights else None
        self.loss = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
        self._val: list[tuple[np.ndarray, np.ndarray]] = []

    def _saved_config(self) -> dict[str, Any]:
        """What the checkpoint needs to rebuild without the data or the pretrained folder."""
        if hasattr(self.model, "members"):  # each member's config with its own normalisation
            members = zip(self.model.cfg.members, self.model.members, strict=True)
            return {"members": [{**c, **_kept(m.cfg.to_dict())} for c, m in members]}
        return _kept(self.model.cfg.to_dict())

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(*inputs)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.loss(self.model(*model_inputs(self.model, batch)), batch["labels"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["ids"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self.model(*model_inputs(self.model, batch))
        self.log("val/loss", self.loss(logits, batch["labels"]), batch_size=len(batch["ids"]))
        self._val.append((logits.float().cpu().numpy(), batch["labels"].cpu().numpy()))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        logits, labels = (np.concatenate(x) for x in zip(*self._val, strict=True))
        m = classification_metrics(labels, logits.argmax(-1), len(self.labels))
        self.log("val/ua", m["ua"], prog_bar=True)
        self.log("val/wa", m["wa"])
        self.log("val/macro_f1", m["macro_f1"])
        self._val = []

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        steps = schedule_length(self.hparams.total_steps, self.trainer)
        return {
            "optimizer": opt,
            "lr_scheduler": warmup_cosine(opt, self.hparams.warmup_steps, steps),
        }
