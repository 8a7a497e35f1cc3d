"""Requeue a SLURM job before its time limit: ``fit`` saves at a point that all ranks agree on, ``predict``
stops after its last written chunk; ``validate`` and ``test`` alone finish (SIGUSR1 no longer kills them).

The CLI adds :class:`SlurmRequeue` under SLURM and sets Lightning's ``SLURMEnvironment(auto_requeue=False)``.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_info

from medtext.core.errors import Requeued
from medtext.core.requeue_files import saved_step
from medtext.core.slurm_jobs import job_folder, requeue, slurm_job_key
from medtext.core.requeue_files import delete_requeue_checkpoints, newest_last, newest_state, next_hpc_checkpoint
from medtext.core.trainer_loggers import mark_sweep_trial_preempting


class SlurmRequeue(pl.Callback):
    """On ``requeue_signal`` (SIGUSR1): save at the next safe point, requeue, stop at once.

    ``#SBATCH --signal=SIGUSR1@90`` makes SLURM send SIGUSR1 to every task 90 s before the limit.
    Lightning's own handler saves inside the signal handler, on every rank at once, which can hang
    under DDP. Here the handler only raises a flag; the ranks agree whether any of them got it (one
    tiny all-reduce) at each safe point. If so, all of them save the full training state to
    ``<default_root_dir>/hpc_ckpt_<n>.ckpt`` (the job's folder, see ``medtext.runtime.slurm``), rank zero runs
    ``scontrol requeue``, and every rank raises :class:`medtext.core.errors.Requeued` (a requeue, not an
    error, for the CLI). The requeued job runs the same command and resumes from that file.

    Args:
        requeue_signal: the signal ``#SBATCH --signal`` sends (a name such as ``SIGUSR1``).
    """

    def __init__(self, requeue_signal: str = "SIGUSR1"):
        self.requeue_signal = getattr(signal, requeue_signal)
        self.signalled = False
        # True: the handler outlives fit's teardown, until release(). The CLI sets it so that a signal
        # after training (during the test after fit) is absorbed: the short test finishes, no requeue.
        self.hold_handler = False
        self._training_ended = False
        self._absorbing: Optional[str] = None  # "validate" or "test" alone: a signal is absorbed, the run finishes
        self._previous_handler = None
        self._key: Optional[str] = None

    def _handler(self, signum, frame) -> None:
        self.signalled = True  # nothing else in a signal handler: the safe points do the work

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage in ("fit", "predict"):
            # Run after the ModelCheckpoints (Lightning puts them last): at a validation's end they have
            # recorded its score (and saved), so the requeue checkpoint carries their state after it.
            # In predict, after the PredictionWriter: the chunk a batch completes is written before a stop.
            trainer.callbacks = [c for c in trainer.callbacks if c is not self] + [self]

    def _catch_signal(self) -> None:
        self._key = slurm_job_key()
        if (self._key is not None and self._previous_handler is None
                and threading.current_thread() is threading.main_thread()):
            self._previous_handler = signal.signal(self.requeue_signal, self._handler)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._training_ended = False
        self._catch_signal()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:  # validate alone; fit's validations are fit's
            self._absorb("validate")

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.TESTING and self._previous_handler is None:  # not fit's test after fit
            self._absorb("test")

    def _absorb(self, command: str) -> None:
        """An evaluation is short and not resumable part-way: finishing it before the limit beats a requeue."""
        self._absorbing = command
        self._catch_signal()

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._catch_signal()

    def on_predict_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int,
                             dataloader_idx: int = 0) -> None:
        """A safe point: every chunk completed so far is written. Each rank stops at its own (ranks predict
        different numbers of batches, so they cannot meet at a collective); rank zero requeues. The
        requeued job runs the same command, which predicts only the missing chunks."""
        if self._key is None or not self.signalled:
            return
        if trainer.is_global_zero:
            requeue(self._key)
        raise Requeued(f"SLURM job {self._key} requeued on rank {trainer.global_rank}: its predict continues "
                       "with the chunks not yet written")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """Rank zero waiting for the others at predict's end when the signal came: they stopped, its wait
        failed. The job is requeued all the same (the error stands; the written chunks are kept)."""
        if (self._key is not None and self.signalled and trainer.is_global_zero
                and trainer.state.fn == TrainerFn.PREDICTING and not isinstance(exception, Requeued)):
            requeue(self._key)
            rank_zero_info(f"SLURM job {self._key}: requeued after the error below; its predict continues")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._requeue_if_signalled(trainer)  # a safe point: after a training step

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Only a validation inside an epoch: after the epoch's last one, ModelCheckpoint saves at the
        # epoch's end (after this hook); the next step or on_train_end is then the safe point.
        # is_last_batch is the same on every rank (equal shards), so all of them reduce here or none.
        if (trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking
                and not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch):
            self._requeue_if_signalled(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The last check: a signal during the final validation requeues here, with the finished
        # training state (the requeued job's fit trains nothing and goes on to the test).
        self._requeue_if_signalled(trainer)
        self._training_ended = True

    def _requeue_if_signalled(self, trainer: pl.Trainer) -> None:
        if self._key is None or not trainer.strategy.reduce_boolean_decision(self.signalled, all=False):
            return
        path = next_hpc_checkpoint(Path(trainer.default_root_dir))
        trainer.save_checkpoint(path)  # every rank takes part; rank zero writes
        rank_zero_info(f"SLURM job {self._key}: saved {path} at step {trainer.global_step}; requeueing")
        if trainer.is_global_zero:
            # Mark a sweep trial first: after ``scontrol requeue`` SLURM may stop the job at any moment
            mark_sweep_trial_preempting()
            requeue(self._key)
        raise Requeued(f"SLURM job {self._key} requeued; it resumes from {path}")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Delete this job's requeue checkpoints that the run's ``last.ckpt`` supersedes (rank zero; each
        is a full training state, over a GB for a BERT-base encoder). Lightning calls this hook only when
        training ended normally: an error, a requeue, SIGTERM or Ctrl-C end ``fit`` by an exception before it."""
        folder = Path(trainer.default_root_dir)
        if self._key is None or not trainer.is_global_zero or trainer.interrupted:
            return
        if folder.name != job_folder(self._key, os.environ):
            return  # only the folder medtext.runtime.slurm chose for this job, never another job's
        last = _run_last(trainer)
        deleted, kept = delete_requeue_checkpoints(folder, last) if last is not None else ([], [])
        if kept:
            # A job requeued once training had ended resumes and trains nothing: its requeue checkpoint
            # holds last.ckpt's step but was written after it. The run has completed: superseded too.
            done = [path for path in kept if saved_step(path) == saved_step(last)]
            for path in done:
                path.unlink(missing_ok=True)
            deleted, kept = deleted + done, [path for path in kept if path not in done]
        if deleted:
            unless = f"; kept {', '.join(map(str, kept))} (a later state)" if kept else ""
            print(f"SLURM job {self._key} completed: deleted its requeue checkpoints {', '.join(map(str, deleted))} "
                  f"({last} holds a later state){unless}")

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not self.hold_handler:
            self.release()

    def release(self) -> None:
        """Put back the signal handler that was there before ``fit``; the CLI calls it when the command ends."""
        if self._previous_handler is None:
            return
        signal.signal(self.requeue_signal, self._previous_handler)
        self._previous_handler = None
        if self.signalled and self._training_ended:
            rank_zero_info(f"SLURM job {self._key}: the signal came after training; finished without a requeue")
        elif self.signalled and self._absorbing:
            rank_zero_info(f"SLURM job {self._key}: the signal came during {self._absorbing}; finished without a requeue")
        self.signalled, self._absorbing = False, None


def _run_last(trainer: pl.Trainer) -> Optional[Path]:
    """The newest ``last*.ckpt`` in the run's checkpoint folders (``ModelCheckpoint`` dirpaths)."""
    folders = {Path(c.dirpath) for c in trainer.checkpoint_callbacks if getattr(c, "dirpath", None)}
    found = [last for last in map(newest_last, sorted(folders)) if last is not None]
    return newest_state(found) if found else None
