"""LightningModule for fine-tuning Whisper on Chinese call audio (teacher-forced cross-entropy; greedy
decoding for the dev CER)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from callqa.evaluation.metrics import cer
from callqa.models.asr.whisper import WhisperASR, WhisperASRConfig
from callqa.models.tokenizer import normalize
from callqa.training.schedule import schedule_length, warmup_cosine


class WhisperModule(L.LightningModule):
    def __init__(
        self,
        model: dict[str, Any],
        lr: float = 1e-5,
        warmup_steps: int = 100,
        total_steps: int | None = None,
        val_batches: int = 4,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.asr = WhisperASR(WhisperASRConfig(**model))
        self.hparams["model"] = self.asr.cfg.to_dict()  # with tokenizer and config: rebuilds offline
        self._val: list[tuple[str, str]] = []

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.asr.loss(batch["wave"], batch["texts"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["ids"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.log("val/loss", self.asr.loss(batch["wave"], batch["texts"]), batch_size=len(batch["ids"]))
        if batch_idx < self.hparams.val_batches:  # greedy decoding is slow: CER on the first batches only
            self._val += list(
                zip([normalize(t) for t in batch["texts"]], self.asr.transcribe(batch["wave"]), strict=True)
            )

    def on_validation_epoch_end(self) -> None:
        if self._val:
            refs, hyps = zip(*self._val, strict=True)
            self.log("val/cer", cer(list(refs), list(hyps)), prog_bar=True)
        self._val = []

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=0.01)
        return {
            "optimizer": opt,
            "lr_scheduler": warmup_cosine(
                opt,
                self.hparams.warmup_steps,
                schedule_length(self.hparams.total_steps, self.trainer),
                floor=0.0,
            ),
        }
