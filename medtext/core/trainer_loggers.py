"""A trainer's loggers and the local folders of its runs, and whether this process is a W&B sweep trial."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from pytorch_lightning.loggers.logger import DummyLogger


def wandb_logger(trainer: pl.Trainer) -> Optional[WandbLogger]:
    """The first ``WandbLogger`` of ``trainer``, if any."""
    return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)


def wandb_run_dir(trainer: pl.Trainer, logger: WandbLogger) -> Path:
    """``<save_dir>/<project>/<run id>``, the folder that also holds the run's checkpoints
    (``trainer.log_dir`` is the logger's ``save_dir``, which every W&B run shares).

    Creates the W&B run if it does not exist yet: call it on global rank zero only.
    """
    root = logger.save_dir if logger.save_dir is not None else trainer.default_root_dir
    return Path(root) / str(logger.name) / str(logger.experiment.id)


def file_loggers(trainer: pl.Trainer) -> list[Logger]:
    """Loggers that are neither W&B nor the ``DummyLogger`` of ``fast_dev_run``: they get files."""
    return [lg for lg in trainer.loggers if not isinstance(lg, (WandbLogger, DummyLogger))]


def logger_dir(trainer: pl.Trainer, logger: Logger) -> Path:
    """The log directory of one file logger (``version_<n>`` for CSV and TensorBoard)."""
    if isinstance(logger, (CSVLogger, TensorBoardLogger)):
        return Path(logger.log_dir)
    return Path(logger.save_dir or trainer.default_root_dir)


def run_folder(trainer: pl.Trainer, logger: Logger) -> Optional[Path]:
    """``<save_dir>/<name>/<version>``, where ModelCheckpoint puts the first logger's checkpoints: a CSV or
    TensorBoard version folder, a W&B run's folder (:func:`wandb_run_dir`); ``None`` for a W&B run
    that has neither started nor been given an id."""
    version = logger.version
    if version is None and isinstance(logger, WandbLogger):
        return None
    version = version if isinstance(version, str) else f"version_{version}"
    return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name or "") / version


def run_folders(trainer: pl.Trainer) -> list[Path]:
    """The run folders of a ``fit`` known so far (:func:`run_folder` of the first logger, of W&B, CSV
    and TensorBoard loggers); without a logger, ``default_root_dir`` (which holds ``checkpoints/``)."""
    if not trainer.loggers:
        return [Path(trainer.default_root_dir)]
    folders = (run_folder(trainer, logger) for index, logger in enumerate(trainer.loggers)
               if index == 0 or isinstance(logger, (WandbLogger, CSVLogger, TensorBoardLogger)))
    return list(dict.fromkeys(folder for folder in folders if folder is not None))


def in_sweep(run: Any = None) -> bool:
    """Whether this process is a W&B sweep trial: the agent sets ``WANDB_SWEEP_ID`` for the command it
    starts (DDP ranks inherit it), and a run of a sweep knows its sweep."""
    return bool(os.environ.get("WANDB_SWEEP_ID") or getattr(run, "sweep_id", None))


def mark_sweep_trial_preempting() -> bool:
    """Inside a W&B sweep, mark this process's W&B run preempting; returns whether the process is a
    sweep trial. Called before ``scontrol requeue``: once the job is requeued SLURM may stop it at
    any moment, and the mark is what makes the sweep hand the trial out again."""
    module = sys.modules.get("wandb")  # no run unless wandb was imported; importing it here costs seconds
    run = getattr(module, "run", None)  # only global rank zero has one
    if not in_sweep(run):
        return False
    if run is not None:
        try:
            run.mark_preempting()  # reported to the server at once
        except Exception as err:  # noqa: BLE001 - the exit status alone still makes the agent see a failure
            warnings.warn(f"could not mark W&B run {run.id} preempting: {err}", stacklevel=2)
    return True
