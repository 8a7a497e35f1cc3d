"""A test-only callback: the given rank sends itself a signal (SIGUSR1, as SLURM does before the
time limit) when training reaches ``step``: before that training step (``during="train"``), at the
first batch of the validation that runs at that step (``"validation"``), at the first batch of a
test (``"test"``, any step), or at predict batch number ``step`` (``"predict"``). With ``seed``, only in
the fit of that seed (a seed loop in one job)."""

import os
import signal

import pytorch_lightning as pl


class SignalAtStep(pl.Callback):
    def __init__(self, step: int, rank: int = 0, signal_name: str = "SIGUSR1", during: str = "train",
                 seed: int | None = None):
        self.step, self.rank, self.signum, self.during = step, rank, getattr(signal, signal_name), during
        self.seed = seed

    def _send(self, trainer, during: str) -> None:
        at_step = during == "test" or (self._predict_batch if during == "predict" else trainer.global_step) == self.step
        our_seed = self.seed is None or os.environ.get("PL_GLOBAL_SEED") == str(self.seed)  # seed_everything sets it
        if during == self.during and at_step and our_seed and trainer.global_rank == self.rank:
            os.kill(os.getpid(), self.signum)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._send(trainer, "train")

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0 and not trainer.sanity_checking:
            self._send(trainer, "validation")

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0:
            self._send(trainer, "test")

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._predict_batch = batch_idx
        self._send(trainer, "predict")
