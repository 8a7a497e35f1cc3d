"""Data loaders over encoded abstracts, the part of :class:`AbstractsDataModule` that batches.

Training: a seeded order (length buckets optional), sharded over DDP ranks, whose position is
saved in checkpoints so that a resumed fit continues mid-epoch exactly. Validation, test and
predict: longest abstracts first (little padding), each abstract on exactly one rank.
"""

from __future__ import annotations

from typing import Optional

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from .dataset import EncodedAbstracts, PadCollator
from .sampling import LengthSortedSampler, TrainingSampler
from .token_cache import default_cache_dir


class AbstractsLoaders(pl.LightningDataModule):
    """Needs ``datasets`` (split -> :class:`EncodedAbstracts`), ``tokenizer``, ``batch_size``,
    ``eval_batch_size``, ``bucket_by_length``, ``pad_to_multiple_of`` and ``num_workers``."""

    datasets: dict[str, EncodedAbstracts]
    train_sampler: Optional[TrainingSampler] = None  # set by train_dataloader
    _resume_position: Optional[tuple[int, int]] = None  # set by load_state_dict, used by train_dataloader

    def set_loading(self, batch_size: int, eval_batch_size: Optional[int], bucket_by_length: bool,
                    pad_to_multiple_of: Optional[int], num_workers: int, cache_dir: Optional[str]) -> None:
        """The batching settings every subclass takes (``eval_batch_size`` defaults to ``batch_size``)."""
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.bucket_by_length, self.pad_to_multiple_of = bucket_by_length, pad_to_multiple_of
        self.num_workers = num_workers
        self.cache_dir = cache_dir or default_cache_dir()

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def _batches_done(self) -> int:
        """Training batches finished in the current epoch (saved with checkpoints for exact resume).
        Lightning has no public counter for it: tests/test_lightning_internals.py checks this one."""
        trainer = self.trainer
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed if trainer is not None else 0

    def _loader(self, split: str, batch_size: int) -> DataLoader:
        """Longest abstracts first (little padding); under DDP each abstract goes to exactly one rank."""
        dataset = self.datasets[split]
        world_size, rank = self._world()
        sampler = LengthSortedSampler(dataset.lengths, world_size, rank)
        # an own generator: creating the iterator must not draw from the global RNG (exact resume)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=self._collate(),
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          generator=torch.Generator().manual_seed(0))

    def _collate(self) -> PadCollator:
        return PadCollator(self.tokenizer.pad_token_id, self.pad_to_multiple_of)

    def train_dataloader(self) -> DataLoader:
        dataset = self.datasets["train"]
        world_size, rank = self._world()
        seed = torch.initial_seed() % 2**32  # set by seed_everything, identical on every rank
        self.train_sampler = TrainingSampler(dataset.lengths, self.batch_size, self.bucket_by_length, seed,
                                             world_size, rank)
        if self._resume_position is not None:
            epoch, batches_done = self._resume_position
            self.train_sampler.skip_on_resume(epoch, batches_done * self.batch_size)
            self._resume_position = None
        return DataLoader(dataset, batch_size=self.batch_size, sampler=self.train_sampler,
                          collate_fn=self._collate(), num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, generator=torch.Generator().manual_seed(seed))

    def state_dict(self) -> dict:
        """The training position, saved in checkpoints: a resumed fit continues mid-epoch exactly."""
        if self.train_sampler is None:
            return {}
        return {"train_epoch": self.train_sampler.epoch, "train_batches_done": self._batches_done()}

    def load_state_dict(self, state: dict) -> None:
        # Lightning restores the data module before it builds the train loader, which applies this
        if "train_epoch" in state:
            self._resume_position = (int(state["train_epoch"]), int(state["train_batches_done"]))

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", self.eval_batch_size)
