"""Batches by total audio duration, from utterances of similar length.

Sorting into duration buckets keeps padding small; capping the padded seconds per batch keeps memory
flat whether a batch holds short acknowledgements or long complaints. Under DDP each rank takes every
world_size-th batch of the same shuffled list, so ranks see disjoint data in step.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler


class DurationBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        durations: Sequence[float],
        max_seconds: float,
        shuffle: bool = True,
        seed: int = 0,
        max_items: int = 256,
    ):
        self.durations = np.asarray(durations, dtype=np.float64)
        self.max_seconds, self.shuffle, self.seed, self.max_items = max_seconds, shuffle, seed, max_items
        self.epoch = 0
        self.batches = self._make_batches()

    def _make_batches(self) -> list[list[int]]:
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0.0
        for i in np.argsort(self.durations, kind="stable"):
            d = float(self.durations[i])
            if current and (
                max(longest, d) * (len(current) + 1) > self.max_seconds or len(current) >= self.max_items
            ):
                batches.append(current)
                current, longest = [], 0.0
            current.append(int(i))
            longest = max(longest, d)
        if current:
            batches.append(current)
        return batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rank(self) -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __iter__(self) -> Iterator[list[int]]:
        order = np.arange(len(self.batches))
        if self.shuffle:
            np.random.default_rng((self.seed, self.epoch)).shuffle(order)
        rank, world = self._rank()
        usable = len(order) - len(order) % world if world > 1 else len(order)
        for k in order[rank:usable:world]:
            yield self.batches[k]

    def __len__(self) -> int:
        _, world = self._rank()
        return len(self.batches) // world if world > 1 else len(self.batches)
