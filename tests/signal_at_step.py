"""A test-only callback: the given rank sends itself a signal (SIGUSR1, as SLURM does before the
time limit) when training reaches ``step``."""

import os
import signal

import pytorch_lightning as pl


class SignalAtStep(pl.Callback):
    def __init__(self, step: int, rank: int = 0, signal_name: str = "SIGUSR1"):
        self.step, self.rank, self.signum = step, rank, getattr(signal, signal_name)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step and trainer.global_rank == self.rank:
            os.kill(os.getpid(), self.signum)
