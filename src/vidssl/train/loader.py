"""Resumable training data: a seeded, rank-sharded sampler and a restartable DataLoader.

`ResumableLoader` restarts at the batch where a checkpoint was taken (see `vidssl.train.engine`).
Every sample is produced with the python/numpy/torch RNGs seeded from ``(seed, epoch, position
in the global permutation)``, so its augmentation does not depend on which worker, how many
workers or how many ranks loaded it. A dataset must therefore draw its randomness from
``random``, ``np.random`` or ``torch``'s global generators (or a generator seeded from them,
e.g. ``np.random.default_rng(np.random.randint(2**63 - 1))``) inside ``__getitem__``.
"""

from __future__ import annotations

import functools
import logging
import math
import random
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, get_worker_info

from vidssl.config.schema import Config

log = logging.getLogger(__name__)


def _derive_seed(*entropy: int) -> int:
    return int(
        np.random.SeedSequence([int(e) for e in entropy]).generate_state(1, np.uint64)[0] >> 1
    )


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(seed)


class EpochSampler(DistributedSampler):
    """Per-epoch seeded permutation, sharded by rank, that can start at a given batch.

    Yields ``(dataset_index, sample_seed)`` pairs; ``sample_seed`` depends on ``(seed, epoch,
    position in the global permutation)`` only. ``len`` is always the full epoch of this rank, so
    Lightning's batch counting stays right when an epoch is resumed part-way. Subclassing
    `DistributedSampler` tells Lightning not to wrap it in another distributed sampler.
    """

    def __init__(
        self, dataset: Dataset, batch_size: int, seed: int, shuffle: bool, drop_last: bool
    ):
        super().__init__(
            dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        self.batch_size = batch_size
        self.start_batch = 0

    def set_distributed(self, rank: int, world_size: int) -> None:
        """Shards over ``world_size`` ranks (DistributedSampler padding / dropping rules)."""
        self.rank, self.num_replicas = rank, world_size
        n = len(self.dataset)  # type: ignore[arg-type]
        self.num_samples = n // world_size if self.drop_last else math.ceil(n / world_size)
        self.total_size = self.num_samples * world_size

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at each epoch start; a new epoch starts at batch 0."""
        if epoch != self.epoch:
            self.epoch, self.start_batch = epoch, 0

    def batches_per_epoch(self) -> int:
        """Batches this rank yields in a full epoch."""
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __len__(self) -> int:
        return min(self.num_samples, self.batches_per_epoch() * self.batch_size)

    def __iter__(self):
        n = len(self.dataset)  # type: ignore[arg-type]
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        seeds = rng.integers(0, 2**62, size=self.total_size)
        if self.total_size > n:  # pad by repeating the start, like DistributedSampler
            order = np.resize(order, self.total_size)
        positions = np.arange(self.rank, self.total_size, self.num_replicas)[: len(self)]
        for position in positions[self.start_batch * self.batch_size :]:
            yield int(order[position]), int(seeds[position])


class SeededItems(Dataset):
    """Wraps a dataset: item ``(index, seed)`` is ``dataset[index]`` produced under ``seed``.

    A plain integer key ``index`` uses the seed derived from ``(base_seed, index)``, so any
    sampler (e.g. Lightning's distributed one for validation) gives the same item every epoch.
    In the main process (``num_workers=0``) the caller's RNG states are restored afterwards, so
    data loading never changes the training step's random numbers.
    """

    def __init__(self, dataset: Dataset, base_seed: int = 0) -> None:
        self.dataset = dataset
        self.base_seed = base_seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def _load(self, key: tuple[int, int] | int) -> Any:
        index, seed = key if isinstance(key, tuple) else (key, _derive_seed(self.base_seed, key))
        _seed_all(seed)
        return self.dataset[index]

    def __getitems__(self, keys: list[tuple[int, int] | int]) -> list[Any]:
        """A batch of items (the DataLoader's batched fetch; RNGs saved/restored once)."""
        if get_worker_info() is not None:
            return [self._load(key) for key in keys]
        saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        try:
            return [self._load(key) for key in keys]
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])

    def __getitem__(self, key: tuple[int, int] | int) -> Any:
        return self.__getitems__([key])[0]

    def __getattr__(self, name: str) -> Any:  # e.g. dataset.failures()
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _seed_worker(seed: int, epoch: int, rank: int, worker_id: int) -> None:
    _seed_all(_derive_seed(seed, epoch, rank, worker_id))


class ResumableLoader(DataLoader):
    """A training `DataLoader` whose position survives checkpoints (see the module docstring).

    Lightning saves ``state_dict()`` in every checkpoint and calls ``load_state_dict`` before it
    creates the iterator of a resumed run. ``batches_done`` is updated after every training batch
    by the callback `fit` installs.
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = True, num_workers: int = 0, pin_memory: bool = False,
                 persistent_workers: bool = False, prefetch_factor: int = 2,
                 collate_fn: Any = None) -> None:  # fmt: skip
        sampler = EpochSampler(dataset, batch_size, seed, shuffle, drop_last)
        workers = num_workers > 0
        super().__init__(
            SeededItems(dataset, seed), batch_size=batch_size, sampler=sampler, drop_last=drop_last,
            num_workers=num_workers, pin_memory=pin_memory, collate_fn=collate_fn,
            persistent_workers=persistent_workers and workers,
            prefetch_factor=prefetch_factor if workers else None, generator=torch.Generator(),
        )  # fmt: skip
        self.epoch_sampler = sampler
        self.batches_done = 0

    def set_distributed(self, rank: int, world_size: int) -> None:
        """Shards the epochs over ranks; call before training starts."""
        self.epoch_sampler.set_distributed(rank, world_size)

    def __iter__(self):
        sampler = self.epoch_sampler
        if sampler.start_batch == 0:
            self.batches_done = 0
        self.generator.manual_seed(_derive_seed(sampler.seed, sampler.epoch, sampler.rank))
        self.worker_init_fn = functools.partial(
            _seed_worker, sampler.seed, sampler.epoch, sampler.rank
        )
        return super().__iter__()

    def state_dict(self) -> dict[str, int]:
        """Epoch, batches consumed in it, and the layout they refer to."""
        sampler = self.epoch_sampler
        return {"epoch": sampler.epoch, "batches_done": self.batches_done,
                "world_size": sampler.num_replicas, "batch_size": sampler.batch_size}  # fmt: skip

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Positions the next iterator right after the last consumed batch."""
        sampler = self.epoch_sampler
        done = state["batches_done"]
        if (state["world_size"], state["batch_size"]) != (sampler.num_replicas, sampler.batch_size):
            consumed = done * state["batch_size"] * state["world_size"]
            done = consumed // (sampler.batch_size * sampler.num_replicas)
            log.warning("world or batch size changed since the checkpoint: resume is not exact")
        epoch = state["epoch"]
        if done >= sampler.batches_per_epoch():
            epoch, done = epoch + 1, 0
        sampler.epoch, sampler.start_batch, self.batches_done = epoch, done, done


def build_train_loader(dataset: Dataset, cfg: Config, collate_fn: Any = None) -> ResumableLoader:
    """A `ResumableLoader` with the batch size, workers and seed of ``cfg``."""
    d = cfg.data
    return ResumableLoader(
        dataset,
        d.batch_size,
        seed=cfg.trainer.seed,
        drop_last=d.drop_last,
        num_workers=d.workers,
        pin_memory=d.pin_memory and torch.cuda.is_available(),
        persistent_workers=d.persistent_workers,
        prefetch_factor=d.prefetch_factor,
        collate_fn=collate_fn,
    )


def build_eval_loader(dataset: Dataset, cfg: Config, collate_fn: Any = None) -> DataLoader:
    """An in-order loader whose items are seeded by index (same augmentation every epoch)."""
    d = cfg.data
    return DataLoader(
        SeededItems(dataset, cfg.trainer.seed),
        batch_size=d.batch_size,
        shuffle=False,
        num_workers=d.workers,
        pin_memory=d.pin_memory and torch.cuda.is_available(),
        collate_fn=collate_fn,
    )
