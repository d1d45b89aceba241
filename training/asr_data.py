"""ASR training data: utterances cut from call corpora (both channels) plus coverage sentences."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
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
from callqa.training.transforms import augment, edge_context

log = logging.getLogger(__name__)


@dataclass
class Item:
    utt: Utterance
    root: Path
    #: seconds of the same channel free of other speech before and after the utterance
    room: tuple[float, float] = (0.0, 0.0)


def quiet_room(utts: list[Utterance], tail: float = 0.5) -> dict[str, tuple[float, float]]:
    """For each call turn, the gap to the previous and next utterance on its channel of its call (the
    first turn's gap reaches back to the start of the file; the last's is ``tail``)."""
    by_line: dict[tuple[str, int | None], list[Utterance]] = defaultdict(list)
    for u in utts:
        if u.call_id:
            by_line[(u.call_id, u.channel)].append(u)
    room = {}
    for line in by_line.values():
        line.sort(key=lambda u: u.offset)
        ends = [0.0] + [u.offset + u.duration for u in line[:-1]]
        starts = [u.offset for u in line[1:]] + [line[-1].offset + line[-1].duration + tail]
        for u, prev_end, next_start in zip(line, ends, starts, strict=True):
            room[u.id] = (max(0.0, u.offset - prev_end), max(0.0, next_start - u.offset - u.duration))
    return room


def load_items(corpora: list[str | os.PathLike[str]], split: str, coverage: bool) -> list[Item]:
    """Utterances of ``split`` from each corpus folder, plus its coverage sentences when training."""
    items: list[Item] = []
    for root in corpora:
        corpus = Corpus(root)
        utts = corpus.split_utterances(split)
        room = quiet_room(utts)
        items += [Item(u, corpus.dir, room.get(u.id, (0.0, 0.0))) for u in utts]
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
        utt = item.utt
        rng = np.random.default_rng((torch.initial_seed(), i))
        if self.train and item.room != (0.0, 0.0):
            offset, duration = edge_context(utt.offset, utt.duration, item.room, rng)
            utt = utt.model_copy(update={"offset": offset, "duration": duration})
        wave = load_utterance(utt, item.root, SAMPLE_RATE)
        if self.train:
            wave = augment(wave, rng, SAMPLE_RATE)
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
