"""Sharded, resumable data order: one seeded shuffle per epoch, split across ranks, restartable mid-epoch.

Rank ``r`` of ``W`` takes positions ``r, r + W, r + 2W, ...`` of the epoch's permutation, so the samples of
one global step (all ranks together) are exactly the samples a single process with a ``W`` times larger
batch would see at that step: changing the number of processes does not change what is learnt.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class ShardedSampler(Sampler[int]):
    """Indices of one rank for one epoch, starting after ``start`` already-consumed samples of that rank."""

    def __init__(self, size: int, rank: int, world_size: int, seed: int, shuffle: bool = True) -> None:
        if size < world_size:
            raise ValueError(f"dataset has {size} samples; need at least one per rank ({world_size} ranks)")
        self.size, self.rank, self.world_size = size, rank, world_size
        self.seed, self.shuffle = seed, shuffle
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def per_rank(self) -> int:
        """Samples per rank and epoch (the tail that does not divide among ranks is dropped)."""
        return self.size // self.world_size

    def epoch_indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        return order[: self.per_rank() * self.world_size][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices()[self.start :])

    def __len__(self) -> int:
        return self.per_rank() - self.start


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; numpy and random follow from that seed.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class BatchStream:
    """Endless batches of one rank, with a position (epoch, batches consumed) that a checkpoint can store."""

    def __init__(
        self,
        dataset: Dataset[Any],
        batch_size: int,
        rank: int,
        world_size: int,
        seed: int,
        shuffle: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        self.sampler = ShardedSampler(len(dataset), rank, world_size, seed, shuffle)  # type: ignore[arg-type]
        if self.sampler.per_rank() < batch_size:
            raise ValueError(
                f"dataset of {len(dataset)} samples gives {self.sampler.per_rank()} per rank; "  # type: ignore[arg-type]
                f"batch_size {batch_size} needs more"
            )
        self.dataset, self.batch_size, self.rank, self.seed = dataset, batch_size, rank, seed
        self.num_workers, self.pin_memory, self.collate_fn = num_workers, pin_memory, collate_fn
        self.epoch, self.batch = 0, 0
        self._iter: Iterator[Any] | None = None

    def batches_per_epoch(self) -> int:
        return self.sampler.per_rank() // self.batch_size

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self._iter = None

    def _open(self) -> Iterator[Any]:
        self.sampler.set_epoch(self.epoch, start=self.batch * self.batch_size)
        # One generator per (seed, rank, epoch): worker seeds, and so worker-side augmentation, repeat per epoch.
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.rank) * 10_007 + self.epoch)
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=self.collate_fn,
            worker_init_fn=_seed_worker if self.num_workers else None,
            generator=g,
        )
        return iter(loader)

    def __next__(self) -> Any:
        if self.batch >= self.batches_per_epoch():
            self.epoch, self.batch, self._iter = self.epoch + 1, 0, None
        if self._iter is None:
            self._iter = self._open()
        item = next(self._iter)
        self.batch += 1
        return item

    def __iter__(self) -> BatchStream:
        return self
