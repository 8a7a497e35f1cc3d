"""Which abstracts go where: the validation split held out of train; the training order, seeded,
optionally length-bucketed, sharded across DDP ranks and resumable mid-epoch; and an evaluation
sampler that visits each abstract once, longest first.
"""

from __future__ import annotations

import math
from typing import Iterator, Optional

import numpy as np
from torch.utils.data import DistributedSampler

from medtext.core.errors import DataError


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices so every class keeps about ``val_fraction`` of its rows in validation.

    Multi-label rows (2-D ``labels``) are stratified by their label combination. Every class with
    at least two rows keeps one in each part.

    >>> train, val = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1]), 0.5, seed=0)
    >>> sorted(np.bincount(np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])[val]).tolist())
    [2, 3]
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    keys = labels if labels.ndim == 1 else np.unique(labels, axis=0, return_inverse=True)[1].reshape(-1)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for key in np.unique(keys):
        rows = rng.permutation(np.flatnonzero(keys == key))
        n_val = int(round(len(rows) * val_fraction))
        if len(rows) >= 2:
            n_val = min(max(n_val, 1), len(rows) - 1)
        val.append(rows[:n_val])
        train.append(rows[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def bucketed_order(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, bucket_factor: int = 50) -> np.ndarray:
    """Shuffle, sort windows of ``batch_size * bucket_factor`` by length, shuffle the batches."""
    order = rng.permutation(len(lengths))
    window = max(1, batch_size * bucket_factor)
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return np.concatenate([batches[i] for i in rng.permutation(len(batches))]) if batches else order


class TrainingSampler(DistributedSampler):
    """Seeded training order (random, or length-bucketed with ``bucket_by_length``), this rank's share.

    Being a ``DistributedSampler``, Lightning uses it as it is under DDP instead of wrapping it.
    Each rank takes every ``num_replicas``-th index of one global order (padded by repetition to
    divide evenly), so consecutive indices of a rank still come from the same length bucket.

    Lightning calls ``set_epoch`` at every epoch start; the order of epoch ``e`` depends only on
    ``(seed, e)``. A checkpoint taken after ``k`` training batches stores ``(e, k)`` (the data module's
    state); the resumed run skips those ``k`` batches (:meth:`skip_on_resume`) and continues with
    exactly the batches the interrupted run would have seen.

    >>> sampler = TrainingSampler(np.array([5, 1, 4, 2, 3, 6]), batch_size=2, seed=0)
    >>> sorted(sampler)
    [0, 1, 2, 3, 4, 5]
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, bucket_by_length: bool = False, seed: int = 0,
                 num_replicas: int = 1, rank: int = 0, bucket_factor: int = 50):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.bucket_by_length, self.bucket_factor = batch_size, bucket_by_length, bucket_factor
        self.seed, self.num_replicas, self.rank = seed, num_replicas, rank
        self.epoch = 0
        self.num_samples = math.ceil(len(self.lengths) / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self._resume: Optional[tuple[int, int]] = None  # (epoch, samples of this rank to skip)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, epoch))
        if self.bucket_by_length:
            order = bucketed_order(self.lengths, self.batch_size * self.num_replicas, rng, self.bucket_factor)
        else:
            order = rng.permutation(len(self.lengths))
        if self.total_size > len(order):
            order = np.concatenate([order, order[:self.total_size - len(order)]])
        return order

    def skip_on_resume(self, epoch: int, samples: int) -> None:
        """Make the next pass over ``epoch`` start after this rank's first ``samples`` indices."""
        self._resume = (epoch, samples)

    def __iter__(self) -> Iterator[int]:
        own = self.global_order(self.epoch)[self.rank::self.num_replicas]
        if self._resume is not None:
            epoch, skip = self._resume
            self._resume = None
            if epoch == self.epoch:
                own = own[skip:]
        return iter(own.tolist())


class LengthSortedSampler(DistributedSampler):
    """Evaluation order: this rank's abstracts (each exactly once across ranks), longest first.

    Batches of similar length pad little, and the longest batch comes first, so an out-of-memory
    error shows at once. Predictions carry their row index, so the written order is the file's.
    Unlike ``DistributedSampler`` no abstract is repeated to even out the ranks' shares.

    >>> list(LengthSortedSampler(np.array([3, 9, 1, 9])))
    [1, 3, 0, 2]
    """

    def __init__(self, lengths: np.ndarray, num_replicas: int = 1, rank: int = 0):
        self.lengths = np.asarray(lengths)
        super().__init__(range(len(self.lengths)), num_replicas=num_replicas, rank=rank, shuffle=False)
        self.total_size = len(self.lengths)
        self.num_samples = len(range(rank, self.total_size, num_replicas))
        if self.num_samples == 0 and self.total_size:  # a rank without a batch would stall the others
            raise DataError(f"{self.total_size} abstracts cannot be shared by {num_replicas} processes")

    def __iter__(self) -> Iterator[int]:
        own = np.arange(self.rank, self.total_size, self.num_replicas)
        return iter(own[np.argsort(-self.lengths[own], kind="stable")].tolist())
