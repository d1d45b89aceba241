"""Batches by total audio duration, from utterances of similar length.

Sorting into duration buckets keeps padding small; capping the padded seconds per batch keeps memory
flat whether a batch holds short acknowledgements or long complaints. Under DDP each rank takes every
world_size-th batch of the same shuffled list, so ranks see disjoint data in step; the batches left
over when their number does not divide by the world size are pooled and dealt out again, one more
batch a rank, so every utterance is seen once an epoch and every rank takes the same number of steps.
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
        yield from share([self.batches[k] for k in order], rank, world)

    def __len__(self) -> int:
        rank, world = self._rank()
        return len(share(self.batches, rank, world))


def share(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """Rank ``rank``'s batches of ``batches``: every ``world``-th one, then its part of the leftovers."""
    if world == 1:
        return batches
    whole = len(batches) - len(batches) % world
    mine = batches[rank:whole:world]
    rest = [i for b in batches[whole:] for i in b]
    if len(rest) >= world:
        mine = [*mine, rest[rank::world]]
    elif rest:
        if not whole:
            raise ValueError(f"{len(rest)} utterance(s) cannot be shared among {world} ranks")
        mine = [*mine[:-1], mine[-1] + rest[rank : rank + 1]]  # too few for a batch each: one more item
    return mine
