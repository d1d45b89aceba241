"""The learning-rate schedule every trainer here uses: linear warmup, then cosine decay to a floor."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, floor: float = 0.05
) -> dict[str, Any]:
    """A Lightning ``lr_scheduler`` entry stepping every batch. Warmup keeps early large gradients from
    wrecking attention layers; the floor keeps fine-tuning moving at the end of a short run."""
    total = max(total_steps, warmup_steps + 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / (total - warmup_steps))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "interval": "step"}


def schedule_length(total_steps: int | None, trainer: L.Trainer) -> int:
    """``total_steps``, or when it is None the optimiser steps the trainer will take (max_steps, or
    epochs x batches), so that a run sized in epochs still ends with its learning rate at the floor."""
    return int(total_steps) if total_steps else int(trainer.estimated_stepping_batches)
