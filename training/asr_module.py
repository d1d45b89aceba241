"""The LightningModule for CTC ASR: a thin wrapper that adds the loss, the optimiser schedule, CER on
the dev set, and a self-describing checkpoint (model config + vocabulary)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

from callqa.data.constants import SAMPLE_RATE
from callqa.evaluation.metrics import cer
from callqa.models.asr.decoding import greedy_ids
from callqa.models.checkpoint import model_state, read_checkpoint
from callqa.models.registry import build_asr_model
from callqa.models.tokenizer import CharTokenizer, normalize
from callqa.training.schedule import schedule_length, warmup_cosine

log = logging.getLogger(__name__)


class AsrModule(L.LightningModule):
    def __init__(
        self,
        model: dict[str, Any],
        tokenizer: str,
        lr: float = 1e-3,
        weight_decay: float = 1e-3,
        warmup_steps: int = 500,
        total_steps: int | None = None,
        sample_decodes: int = 4,
        init_from: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.tokenizer = CharTokenizer.from_json(tokenizer)
        self.model = build_asr_model(model, len(self.tokenizer))
        if "hf_config" in self.model.cfg.to_dict():  # so the checkpoint rebuilds without the original folder
            self.hparams["model"] = {**model, "hf_config": self.model.cfg.hf_config}
        if init_from:
            self._load_base(init_from)
        self.ctc = torch.nn.CTCLoss(blank=self.tokenizer.blank_id, zero_infinity=True)
        self._val: list[tuple[str, str, str]] = []

    def _load_base(self, path: str) -> None:
        """Start from a base checkpoint's weights; its vocabulary must be the one the data encodes with."""
        base = read_checkpoint(path)
        base_tok = base["hyper_parameters"]["tokenizer"]
        if CharTokenizer.from_json(base_tok).vocab != self.tokenizer.vocab:
            raise ValueError(
                f"{path}: vocabulary differs from the data's; set data.tokenizer_from to this checkpoint"
            )
        self.model.load_state_dict(model_state(base))
        log.info("initialised from %s", path)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(wave, lengths)

    def _loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logp, lengths = self.model(batch["wave"], batch["lengths"])
        loss = self.ctc(logp.float().transpose(0, 1), batch["targets"], lengths, batch["target_lengths"])
        return loss, logp, lengths

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._loss(batch)
        audio_s = float(batch["lengths"].sum()) / SAMPLE_RATE
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["ids"]))
        self.log("train/audio_seconds", audio_s, reduce_fx="sum", on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, logp, lengths = self._loss(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=len(batch["ids"]), sync_dist=True)
        logp = logp.float().cpu().numpy()
        for k, (uid, text) in enumerate(zip(batch["ids"], batch["texts"], strict=True)):
            hyp = self.tokenizer.decode(greedy_ids(logp[k, : int(lengths[k])]))
            self._val.append((uid, normalize(text), hyp))  # unknown characters count as errors

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        _, refs, hyps = zip(*self._val, strict=True)
        self.log("val/cer", cer(list(refs), list(hyps)), prog_bar=True, sync_dist=True)
        # batches come in duration order, so the first few are all one-word replies; spread the
        # samples over the lengths instead, short to long, so they show what the model does with sentences
        by_length = sorted(self._val, key=lambda v: (len(v[1]), v[0]))
        n = min(self.hparams.sample_decodes, len(by_length))
        self.samples = [by_length[round(i * (len(by_length) - 1) / max(1, n - 1))] for i in range(n)]
        for uid, ref, hyp in self.samples:
            log.info("%s\n  ref: %s\n  hyp: %s", uid, ref, hyp)
        self._val = []

    def configure_optimizers(self) -> dict[str, Any]:
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        return {
            "optimizer": opt,
            "lr_scheduler": warmup_cosine(
                opt, self.hparams.warmup_steps, schedule_length(self.hparams.total_steps, self.trainer)
            ),
        }
