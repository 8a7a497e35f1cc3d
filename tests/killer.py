"""A test-only callback that kills its own process with SIGKILL at a given training step."""

import os
import signal

import pytorch_lightning as pl


class KillAtStep(pl.Callback):
    """SIGKILL (no cleanup, no final checkpoint) when ``global_step`` reaches ``step``."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class KillAfterChunks(pl.Callback):
    """SIGKILL during ``predict`` once ``chunks`` chunk files are in the output's ``.parts`` folder."""

    def __init__(self, folder: str, chunks: int):
        self.folder, self.chunks = folder, chunks

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        from pathlib import Path

        if len(list(Path(self.folder).glob("chunk-*"))) >= self.chunks:
            os.kill(os.getpid(), signal.SIGKILL)
