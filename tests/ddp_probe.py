"""A callback for the DDP test: each rank writes down the utterance ids of every batch it trained on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L


class SeenIds(L.Callback):
    def __init__(self, folder: str) -> None:
        self.folder, self.seen = folder, []

    def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: dict, i: int) -> None:
        self.seen.extend(batch["ids"])

    def on_train_epoch_end(self, trainer: L.Trainer, module: Any) -> None:
        out = Path(self.folder) / f"rank{trainer.global_rank}-of-{trainer.world_size}.txt"
        out.write_text("\n".join(self.seen), encoding="utf-8")
