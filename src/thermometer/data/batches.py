"""Batches of readings as whole tensors: a slice or an index tensor a batch, never the per-row collate."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import distributed
from torch.utils.data import Dataset, Sampler

FULL_BATCH_ROWS = 1_000_000
"""Up to this many training rows, a step takes them all by default, as the book does; and they are reshuffled."""


def batch_sizes(rows: int, batch_size: int | None) -> set[int]:
    """The sizes of the batches `RowBatches` takes `rows` rows in: a full batch and the last (none of no rows)."""
    size = min(batch_size or rows, rows)
    return {size, rows % size or size} if rows else set()


class Readings(Dataset):
    """Readings held as tensors (inputs, and targets unless predicting) and fetched a batch at a time.

    Indexing with a slice or a tensor of row numbers (see `RowBatches`) takes a whole batch in one operation, so a
    batch never goes through the per-row default collate.
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> None:
        self.tensors = (inputs,) if targets is None else (inputs, targets)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, rows: slice | torch.Tensor) -> tuple[torch.Tensor, ...]:
        if isinstance(rows, slice):
            return tuple(tensor[rows] for tensor in self.tensors)
        # index_select, not tensor[rows]: several times faster for batches of thousands of rows
        return tuple(tensor.index_select(0, rows) for tensor in self.tensors)


class RowBatches(Sampler):
    """Batches of rows, as slices in order, or shuffled each epoch from the run's seed (a resumed run sees the same).

    Up to `FULL_BATCH_ROWS` rows, the rows are reshuffled each epoch (batches of index tensors). Beyond, a new
    permutation of millions of rows would cost more than the epoch's steps: the rows were shuffled once when loaded
    (`TemperatureDataModule.split`) and each epoch takes the batches, as slices, in a new order. With several
    processes (DDP), process `r` takes batches `r, r + processes, ...`; as in Lightning's `DistributedSampler`, the
    first batches are taken again where the count does not divide, so that every process makes as many steps.
    """

    def __init__(self, rows: int, batch_size: int, shuffle: bool) -> None:
        self.rows, self.batch_size, self.shuffle = rows, batch_size, shuffle
        self.seed, self.epoch = torch.initial_seed(), 0
        self.rank, self.processes = 0, 1
        if distributed.is_available() and distributed.is_initialized():
            self.rank, self.processes = distributed.get_rank(), distributed.get_world_size()

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of each epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(math.ceil(self.rows / self.batch_size) / self.processes)

    def __iter__(self) -> Iterator[slice | torch.Tensor]:
        starts = torch.arange(0, self.rows, self.batch_size)
        rows = None
        if self.shuffle and len(starts) > 1:
            seeded = torch.Generator().manual_seed(self.seed + self.epoch)
            if self.rows <= FULL_BATCH_ROWS:
                rows = torch.randperm(self.rows, generator=seeded, dtype=torch.int32)
            else:
                starts = starts[torch.randperm(len(starts), generator=seeded)]
        for i in range(len(self)):
            start = int(starts[(self.rank + i * self.processes) % len(starts)])
            stop = min(start + self.batch_size, self.rows)
            yield slice(start, stop) if rows is None else rows[start:stop]
