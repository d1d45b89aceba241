"""ASR training data: utterances cut from call corpora (both channels) plus coverage sentences."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from callqa.data.constants import SAMPLE_RATE
from callqa.data.corpus import Corpus
from callqa.data.schema import Utterance
from callqa.data.segments import load_utterance
from callqa.models.asr.checkpoint import read_tokenizer
from callqa.models.tokenizer import CharTokenizer
from callqa.training.sampler import DurationBatchSampler
from callqa.training.transforms import augment

log = logging.getLogger(__name__)


@dataclass
class Item:
    utt: Utterance
    root: Path


def load_items(corpora: list[str | os.PathLike[str]], split: str, coverage: bool) -> list[Item]:
    """Utterances of ``split`` from each corpus folder, plus its coverage sentences when training."""
    items: list[Item] = []
    for root in corpora:
        corpus = Corpus(root)
        items += [Item(u, corpus.dir) for u in corpus.split_utterances(split)]
        if coverage:
            items += [Item(u, corpus.dir) for u in corpus.coverage if u.split == split]
    return items


class AsrDataset(Dataset):
    """(waveform, token ids, id) per utterance, augmented when training.

    Augmentation draws from torch's per-worker seed, which the DataLoader renews every epoch and
    ``lightning.seed_everything`` makes reproducible, so each epoch hears new perturbations.
    """

    def __init__(self, items: list[Item], tokenizer: CharTokenizer, train: bool):
        self.items, self.tokenizer, self.train = items, tokenizer, train

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, str, str]:
        item = self.items[i]
        wave = load_utterance(item.utt, item.root, SAMPLE_RATE)
        if self.train:
            wave = augment(wave, np.random.default_rng((torch.initial_seed(), i)), SAMPLE_RATE)
        tokens = torch.tensor(self.tokenizer.encode(item.utt.text), dtype=torch.long)
        return (
            torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)),
            tokens,
            item.utt.id,
            item.utt.text,
        )


def collate(batch: list[tuple[torch.Tensor, torch.Tensor, str, str]]) -> dict[str, torch.Tensor | list[str]]:
    """Pad waveforms; concatenate CTC targets; keep ids and raw text (models with their own tokenizer)."""
    waves, tokens, ids, texts = zip(*batch, strict=True)
    lengths = torch.tensor([len(w) for w in waves])
    wave = torch.zeros(len(waves), max(int(lengths.max()), 400))
    for k, w in enumerate(waves):
        wave[k, : len(w)] = w
    return {
        "wave": wave,
        "lengths": lengths,
        "targets": torch.cat(tokens),
        "target_lengths": torch.tensor([len(t) for t in tokens]),
        "ids": list(ids),
        "texts": list(texts),
    }


class AsrDataModule(L.LightningDataModule):
    """Train on the ``train`` split (plus coverage sentences), validate on ``dev``; the vocabulary is built
    from the training text unless a tokenizer (e.g. a base checkpoint's) is given."""

    def __init__(
        self,
        corpora: list[str],
        coverage: bool = True,
        batch_seconds: float = 120.0,
        num_workers: int = 2,
        max_train_items: int | None = None,
        max_val_items: int | None = 200,
        tokenizer: str | None = None,
        tokenizer_from: str | None = None,
    ):
        super().__init__()
        if not corpora:
            raise ValueError("no corpora given: set data.corpora to one or more corpus folders")
        self.corpora, self.coverage, self.batch_seconds = corpora, coverage, batch_seconds
        self.num_workers, self.max_train_items, self.max_val_items = (
            num_workers,
            max_train_items,
            max_val_items,
        )
        if tokenizer_from:  # fine-tuning keeps the base model's vocabulary
            self.tokenizer: CharTokenizer | None = read_tokenizer(tokenizer_from)
        else:
            self.tokenizer = CharTokenizer.from_json(tokenizer) if tokenizer else None
        self.train_items: list[Item] = []
        self.val_items: list[Item] = []

    def setup(self, stage: str | None = None) -> None:
        if self.train_items:
            return
        self.train_items = load_items(self.corpora, "train", self.coverage)[: self.max_train_items]
        self.val_items = load_items(self.corpora, "dev", False)[: self.max_val_items]
        if not self.train_items:
            raise ValueError(f"no training utterances in {self.corpora}")
        if self.tokenizer is None:
            self.tokenizer = CharTokenizer.build(i.utt.text for i in self.train_items)
        log.info(
            "ASR data: %d train, %d dev utterances; vocabulary %d",
            len(self.train_items),
            len(self.val_items),
            len(self.tokenizer),
        )

    @property
    def vocabulary(self) -> str:
        """The tokenizer JSON the model must be built with (reads the manifests on first use)."""
        self.setup()
        return self.tokenizer.to_json()

    def fingerprint(self) -> str:
        """Which data trained the model: each corpus's own fingerprint from its corpus.json."""
        return "+".join(Corpus(c).fingerprint for c in self.corpora)

    def _loader(self, items: list[Item], train: bool) -> DataLoader:
        sampler = DurationBatchSampler([i.utt.duration for i in items], self.batch_seconds, shuffle=train)
        return DataLoader(
            AsrDataset(items, self.tokenizer, train),
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_items, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_items, train=False)
