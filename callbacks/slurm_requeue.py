"""Requeue a SLURM job before its time limit, saving at a step boundary that all ranks agree on.

``#SBATCH --signal=SIGUSR1@90`` makes SLURM send SIGUSR1 to every task 90 s before the limit.
Lightning's own handler saves the checkpoint inside the signal handler, on every rank at once,
which can hang under DDP. Here the handler only raises a flag; after each training step the ranks
agree whether any of them got the signal (one tiny all-reduce), and if so all of them save the
full training state to ``<default_root_dir>/hpc_ckpt_<n>.ckpt`` (the job's own folder, see
``medtext.slurm``), rank zero runs ``scontrol requeue``, and every rank stops at once by raising
:class:`medtext.errors.Requeued` (no validation or test in the little time left; the CLI exits 0).
The requeued job runs the same command and resumes from that file. Once the run has completed
(training ended normally), rank zero deletes the requeue checkpoints in the job's folder that the
run's ``last.ckpt`` supersedes: each is a full training state, over a GB for a BERT-base encoder.

The CLI adds this callback under SLURM and sets Lightning's ``SLURMEnvironment(auto_requeue=False)``.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_info

from medtext.errors import Requeued
from medtext.slurm import (delete_requeue_checkpoints, newest_last, newest_state, next_hpc_checkpoint, requeue,
                           slurm_job_key)


class SlurmRequeue(pl.Callback):
    """On ``requeue_signal`` (SIGUSR1): save at the next step boundary, requeue, stop at once.

    Args:
        requeue_signal: the signal ``#SBATCH --signal`` sends (a name such as ``SIGUSR1``).
    """

    def __init__(self, requeue_signal: str = "SIGUSR1"):
        self.requeue_signal = getattr(signal, requeue_signal)
        self.signalled = False
        self._previous_handler = None
        self._key: Optional[str] = None

    def _handler(self, signum, frame) -> None:
        self.signalled = True  # nothing else in a signal handler: the step boundary does the work

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._key = slurm_job_key()
        if self._key is not None and threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(self.requeue_signal, self._handler)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self._key is None or not trainer.strategy.reduce_boolean_decision(self.signalled, all=False):
            return
        path = next_hpc_checkpoint(Path(trainer.default_root_dir))
        trainer.save_checkpoint(path)  # every rank takes part; rank zero writes
        rank_zero_info(f"SLURM job {self._key}: saved {path} at step {trainer.global_step}; requeueing")
        if trainer.is_global_zero:
            requeue(self._key)
        raise Requeued(f"SLURM job {self._key} requeued; it resumes from {path}")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Delete this job's requeue checkpoints that the run's ``last.ckpt`` supersedes. Lightning calls
        this hook only when training ended normally: an error, a requeue, SIGTERM or Ctrl-C end ``fit``
        by an exception before it."""
        folder = Path(trainer.default_root_dir)
        if self._key is None or not trainer.is_global_zero or trainer.interrupted:
            return
        if folder.name != f"slurm-{self._key}":
            return  # only the folder medtext.slurm chose for this job, never another job's
        last = _run_last(trainer)
        deleted, kept = delete_requeue_checkpoints(folder, last) if last is not None else ([], [])
        if deleted:
            unless = f"; kept {', '.join(map(str, kept))} (a later state)" if kept else ""
            print(f"SLURM job {self._key} completed: deleted its requeue checkpoints {', '.join(map(str, deleted))} "
                  f"({last} holds a later state){unless}")

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._previous_handler is not None:
            signal.signal(self.requeue_signal, self._previous_handler)
            self._previous_handler = None


def _run_last(trainer: pl.Trainer) -> Optional[Path]:
    """The newest ``last*.ckpt`` in the run's checkpoint folders (``ModelCheckpoint`` dirpaths)."""
    folders = {Path(c.dirpath) for c in trainer.checkpoint_callbacks if getattr(c, "dirpath", None)}
    found = [last for last in map(newest_last, sorted(folders)) if last is not None]
    return newest_state(found) if found else None
