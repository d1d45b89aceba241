"""SER training data: the call turns of corpus folders, featurised once and cached, normalised per speaker.

Features are computed in NumPy by :mod:`callqa.models.ser.features` (the runtime's own code) and
cached per corpus, since the corpus is small and CPUs are few. Utterances are grouped by call and
speaker, and each is normalised against its own group, exactly as the runtime normalises the segments
of one speaker in one call. Coverage sentences are not used: they have no call and no speaker to be
judged against. Splits come from the corpus, which holds out voices: train, tune on dev, report on test.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from callqa.data.constants import EMOTIONS, SAMPLE_RATE
from callqa.data.corpus import Corpus
from callqa.data.schema import Utterance
from callqa.data.segments import load_utterance
from callqa.models.ser.features import (
    FEATURE_VERSION,
    FeatureConfig,
    FeatureExtractor,
    RawFeatures,
    SerInput,
    context_window,
    pad_batch,
    speaker_normalise,
)
from callqa.paths import runs_dir

log = logging.getLogger(__name__)


@dataclass
class SerItem:
    utt: Utterance
    root: Path
    x: SerInput
    label: int
    group: int  # one speaker in one call: the turns a model judges together


def call_turns(corpus: Corpus) -> list[Utterance]:
    """Labelled turns that belong to a call and a speaker (the unit SER is judged on)."""
    return [u for u in corpus.utterances if u.call_id and u.speaker and u.emotion in EMOTIONS]


def group_key(u: Utterance) -> tuple[str, str]:
    return (str(u.call_id), str(u.speaker))


def _cache_path(corpus: Corpus, cfg: FeatureConfig, cache_dir: Path) -> Path:
    key = json.dumps([corpus.fingerprint, str(corpus.dir.resolve()), cfg.raw_dict()], sort_keys=True)
    return cache_dir / f"{corpus.dir.name}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"


def raw_features(
    corpus: Corpus, cfg: FeatureConfig, cache_dir: str | os.PathLike[str] | None = None
) -> dict[str, RawFeatures]:
    """Every call turn's features before normalisation, from the cache when it has them."""
    cache_dir = Path(cache_dir) if cache_dir else runs_dir() / "ser" / "cache"
    path = _cache_path(corpus, cfg, cache_dir)
    turns = call_turns(corpus)
    if path.is_file():
        with np.load(path) as z:
            ids, offsets = list(z["ids"]), z["offsets"]
            frames, active, stats = z["frames"], z["active"], z["stats"]
        if set(ids) >= {u.id for u in turns}:
            log.info("SER features of %s from %s", corpus.dir, path)
            return {
                str(i): RawFeatures(frames[a:b], active[a:b], stats[k])
                for k, (i, a, b) in enumerate(zip(ids, offsets[:-1], offsets[1:], strict=True))
            }
    extractor = FeatureExtractor(cfg)
    out = {}
    for u in tqdm(turns, desc=f"SER features {corpus.dir.name}", unit="utt", mininterval=2.0):
        out[u.id] = extractor.raw(load_utterance(u, corpus.dir, cfg.sample_rate))
    ids = list(out)
    offsets = np.cumsum([0] + [len(out[i].frames) for i in ids])
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        ids=np.array(ids),
        offsets=offsets,
        frames=np.concatenate([out[i].frames for i in ids]) if ids else np.zeros((0, cfg.frame_dim - 1)),
        active=np.concatenate([out[i].active for i in ids]) if ids else np.zeros(0, bool),
        stats=np.stack([out[i].stats for i in ids]) if ids else np.zeros((0, 0)),
    )
    tmp.replace(path)
    log.info("cached SER features of %d turns in %s", len(ids), path)
    return out


def load_items(
    corpora: list[str | os.PathLike[str]],
    cfg: FeatureConfig,
    cache_dir: str | os.PathLike[str] | None = None,
) -> dict[str, list[SerItem]]:
    """Items by split; each normalised against every turn of its speaker in its call."""
    items: dict[str, list[SerItem]] = defaultdict(list)
    for root in corpora:
        corpus = Corpus(root)
        raws = raw_features(corpus, cfg, cache_dir)
        groups: dict[tuple[str, str], list[Utterance]] = defaultdict(list)
        for u in call_turns(corpus):
            groups[group_key(u)].append(u)
        for utts in groups.values():
            group = sum(len(v) for v in items.values())  # unique: the index of the group's first turn
            for u, x in zip(utts, speaker_normalise([raws[u.id] for u in utts], cfg), strict=True):
                items[str(u.split)].append(SerItem(u, corpus.dir, x, EMOTIONS.index(str(u.emotion)), group))
    return dict(items)


class GroupBatchSampler(Sampler[list[int]]):
    """Batches of whole groups (each speaker's turns of a call, kept together and in order) of about
    ``batch_size`` turns, so a model can judge each turn among its speaker's others."""

    def __init__(self, items: list[SerItem], batch_size: int, shuffle: bool):
        self.batch_size, self.shuffle = batch_size, shuffle
        groups: dict[int, list[int]] = defaultdict(list)
        for k, item in enumerate(items):
            groups[item.group].append(k)
        self.groups = list(groups.values())
        self.epoch = 0

    def _batches(self) -> list[list[int]]:
        order = np.arange(len(self.groups))
        if self.shuffle:
            order = np.random.default_rng((torch.initial_seed(), self.epoch)).permutation(order)
        batches, current = [], []
        for g in order:
            current += self.groups[g]
            if len(current) >= self.batch_size:
                batches.append(current)
                current = []
        return [*batches, current] if current else batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches()
        self.epoch += 1
        return iter(batches)

    def __len__(self) -> int:
        return len(self._batches())


class SerDataset(Dataset):
    """Features, label and id per turn; the waveform too for models that take raw audio."""

    def __init__(self, items: list[SerItem], waves: bool = False, max_frames: int | None = None):
        self.items, self.waves, self.max_frames = items, waves, max_frames

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        item = self.items[i]
        x = item.x
        if (
            self.max_frames and len(x.frames) > self.max_frames
        ):  # a random stretch: cheaper, and new each epoch
            start = np.random.default_rng((torch.initial_seed(), i)).integers(len(x.frames) - self.max_frames)
            x = replace(x, frames=x.frames[start : start + self.max_frames])
        out = {"x": x, "label": item.label, "id": item.utt.id, "group": item.group}
        if self.waves:
            out["wave"] = load_utterance(item.utt, item.root, SAMPLE_RATE)
        return out


def collate(batch: list[dict]) -> dict:
    """Padded features and labels; with the call context of the batch's groups, which must come whole
    and in order (:class:`GroupBatchSampler`)."""
    xs = [b["x"] for b in batch]
    frames, lengths, stats = pad_batch(xs)
    starts = [k for k in range(len(batch)) if k == 0 or batch[k]["group"] != batch[k - 1]["group"]]
    ends = [*starts[1:], len(batch)]
    groups = [(xs[a:b], 0, b - a) for a, b in zip(starts, ends, strict=True)]
    if any(len(x.peers) != len(g) for g, _, _ in groups for x in g):
        raise ValueError("a batch holds part of a speaker's turns: draw batches with GroupBatchSampler")
    peer_stats, peer_pairs, peer_mask = context_window(groups)
    out = {
        "frames": torch.from_numpy(frames),
        "lengths": torch.from_numpy(lengths),
        "stats": torch.from_numpy(stats),
        "peer_stats": torch.from_numpy(peer_stats),
        "peer_pairs": torch.from_numpy(peer_pairs),
        "peer_mask": torch.from_numpy(peer_mask),
        "index": torch.arange(len(batch)),
        "labels": torch.tensor([b["label"] for b in batch]),
        "ids": [b["id"] for b in batch],
    }
    if "wave" in batch[0]:
        n = torch.tensor([len(b["wave"]) for b in batch])
        wave = torch.zeros(len(batch), int(n.max()))
        for k, b in enumerate(batch):
            wave[k, : len(b["wave"])] = torch.from_numpy(np.asarray(b["wave"], dtype=np.float32))
        out["wave"], out["wave_lengths"] = wave, n
    return out


class SerDataModule(L.LightningDataModule):
    """Turns of one or more corpora; train/dev/test from each corpus's own (voice-disjoint) splits.

    Batches are drawn in random order; ``class_weights`` (inverse frequency on train, mean 1) let the
    module weight its loss so that rare emotions count as much as the common neutral.
    """

    def __init__(
        self,
        corpora: list[str],
        batch_size: int = 64,
        num_workers: int = 0,
        cache_dir: str | None = None,
        waves: bool = False,
        features: dict | None = None,
        max_frames: int | None = 300,
    ):
        super().__init__()
        self.corpora, self.batch_size, self.num_workers = corpora, batch_size, num_workers
        self.cache_dir, self.waves, self.max_frames = cache_dir, waves, max_frames
        # settings left out are this version's; an explicit other version is refused
        self.feature_config = FeatureConfig.from_dict(
            {"version": FEATURE_VERSION, **(features or {})}, "data.features"
        )
        self._items: dict[str, list[SerItem]] | None = None

    @property
    def items(self) -> dict[str, list[SerItem]]:
        if self._items is None:
            self._items = load_items(self.corpora, self.feature_config, self.cache_dir)
            counts = {s: len(v) for s, v in self._items.items()}
            log.info("SER turns per split: %s", counts)
        return self._items

    @property
    def features(self) -> dict:
        """Linked into the model, so a checkpoint knows how its inputs were made."""
        return self.feature_config.to_dict()

    @property
    def class_weights(self) -> list[float]:
        counts = np.bincount([i.label for i in self.items.get("train", [])], minlength=len(EMOTIONS))
        w = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
        return [float(v) for v in w * (counts > 0).sum() / max(w.sum(), 1e-12)]

    @property
    def stats_normalisation(self) -> list[list[float]]:
        """Mean and standard deviation of the stats vector over train, stored in the model."""
        s = np.stack([i.x.stats for i in self.items["train"]]).astype(np.float64)
        return [s.mean(axis=0).tolist(), np.maximum(s.std(axis=0), 1e-3).tolist()]

    @property
    def pair_scale(self) -> list[float]:
        """Standard deviation of each pair offset between train turns and their peers, stored in the model."""
        rows = [i.x.pairs[i.x.peers] for i in self.items["train"]]
        p = np.concatenate(rows).astype(np.float64) if rows else np.zeros((0, 1))
        return np.maximum(p.std(axis=0), 1e-3).tolist() if len(p) else []

    def fingerprint(self) -> str:
        return ",".join(Corpus(c).fingerprint for c in self.corpora)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        items = self.items.get(split, [])
        if not items:
            raise ValueError(f"no {split} turns in {self.corpora}")
        return DataLoader(
            SerDataset(items, self.waves, self.max_frames if shuffle and not self.waves else None),
            batch_sampler=GroupBatchSampler(items, self.batch_size, shuffle),
            num_workers=self.num_workers,
            collate_fn=collate,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("dev", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)
