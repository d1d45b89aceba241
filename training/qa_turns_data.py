"""The data of the neural QA model: the inspected calls of a corpus as the pipeline heard them
(``callqa score --raw`` output, never the ground-truth text), their labels (Dawid–Skene over the
pooled sheets, overturned re-checks and appeals in their place, or the first sheet alone), and the
rules' evidence for each.

Everything the model is built with comes from here and is linked into it when both are instantiated:
the vocabulary and the feature standardisation (from the training part only), the rubric's items and
the points each typically costs.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from callqa.data.corpus import Corpus
from callqa.data.rubric import rules_from
from callqa.models.qa.turn_inputs import (
    CallArrays,
    TurnEncoding,
    batch_arrays,
    build_vocabulary,
    encode_call,
    standardisation,
)
from callqa.training.qa_data import qa_data, read_heard

log = logging.getLogger(__name__)


class QaTurnsDataModule(L.LightningDataModule):
    def __init__(
        self,
        corpus: str,
        heard: str,
        rubric: str | None = None,
        split: str = "all",
        labels: str = "resolved",
        folds: int = 5,
        fold: int = 0,
        batch_size: int = 16,
        max_chars: int = 64,
        min_char_count: int = 2,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        c = Corpus(corpus)
        self.rubric = rules_from(c.rubric, rubric)
        self.corpus_fingerprint = c.fingerprint
        calls = c.calls if split == "all" else c.split_calls(split)
        data = qa_data(calls, read_heard(heard), self.rubric, labels)
        if len(data.rows) < folds:
            raise ValueError(
                f"{corpus}: {len(data.rows)} inspected {split} call(s) heard in {heard}; need {folds}+"
            )
        if not 0 <= fold < folds or folds < 2:
            raise ValueError(f"fold {fold} of {folds}: need 2+ folds and 0 <= fold < folds")
        # every fold's model shares one encoding (characters heard, feature scales: no labels in
        # them), so the folds' models can be judged together as one ensemble
        parts = np.array_split(np.random.default_rng(seed).permutation(len(data.rows)), folds)
        self.val_idx = sorted(int(k) for k in parts[fold])
        self.train_idx = sorted(int(k) for p in parts[:fold] + parts[fold + 1 :] for k in p)
        names, mean, scale = standardisation(data.rows)
        chars = build_vocabulary((t.text for v in data.views for t in v.turns), min_char_count)
        self.turn_encoding = TurnEncoding(chars, names, mean, scale, max_chars)
        self.items = self.rubric.ids
        self.calls = [
            encode_call(v, r, self.turn_encoding) for v, r in zip(data.views, data.rows, strict=True)
        ]
        self.targets = np.array([[lab.probability[i] for i in self.items] for lab in data.labels], np.float32)
        self.ids = data.ids
        # what an item's defect typically costs: the mean points deducted where it was a defect
        self.points = {}
        for item in self.rubric.items:
            lost = [lab.points[item.id] for lab in data.labels if lab.defect[item.id]]
            self.points[item.id] = round(float(np.mean(lost)), 3) if lost else float(item.points)
        log.info(
            "QA turns data: %d train and %d validation calls, %d characters, %d call features",
            len(self.train_idx),
            len(self.val_idx),
            len(self.turn_encoding.vocabulary),
            len(names),
        )

    @property
    def encoding(self) -> dict[str, Any]:
        return self.turn_encoding.to_dict()

    @property
    def rubric_ref(self) -> dict[str, Any]:
        r = self.rubric
        return {"name": r.name, "version": r.version, "ids": r.ids, "rules": r.rules_fingerprint()}

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.corpus_fingerprint.encode())
        h.update(",".join(self.ids).encode())
        h.update(self.targets.tobytes())
        return h.hexdigest()[:16]

    def _collate(self, rows: list[tuple[CallArrays, np.ndarray, str]]) -> dict[str, Any]:
        batch = {k: torch.from_numpy(v) for k, v in batch_arrays([r[0] for r in rows]).items()}
        batch["targets"] = torch.from_numpy(np.stack([r[1] for r in rows]))
        batch["ids"] = [r[2] for r in rows]
        return batch

    def _rows(self, idx: list[int]) -> list[tuple[CallArrays, np.ndarray, str]]:
        return [(self.calls[k], self.targets[k], self.ids[k]) for k in idx]

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self._rows(self.train_idx),
            batch_size=self.hparams.batch_size,
            shuffle=True,
            collate_fn=self._collate,
            generator=torch.Generator().manual_seed(self.hparams.seed),
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self._rows(self.val_idx), batch_size=self.hparams.batch_size, collate_fn=self._collate
        )
