"""Find a trainer's Weights & Biases logger and the local folders of a run.

With a ``WandbLogger``, ``trainer.log_dir`` is the logger's ``save_dir``, which every W&B run
shares; the folder of one run is ``<save_dir>/<project>/<run id>/``, where Lightning also puts the
checkpoints (``.../checkpoints/``). :func:`summarize_monitored_by_best` makes a run's summary hold
the best value of each monitored metric (a sweep's metric is its checkpoint's monitor).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from pytorch_lightning.loggers.logger import DummyLogger


def wandb_logger(trainer: pl.Trainer) -> Optional[WandbLogger]:
    """The first ``WandbLogger`` of ``trainer``, if any."""
    return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)


def wandb_run_dir(trainer: pl.Trainer, logger: WandbLogger) -> Path:
    """``<save_dir>/<project>/<run id>``, the folder that also holds the run's checkpoints.

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


def monitored_metrics(trainer: pl.Trainer) -> dict[str, str]:
    """``{metric: "max" or "min"}`` for the ``monitor`` of every ModelCheckpoint and EarlyStopping."""
    modes: dict[str, str] = {}
    for callback in trainer.callbacks:
        if isinstance(callback, (ModelCheckpoint, EarlyStopping)) and callback.monitor:
            modes.setdefault(callback.monitor, "max" if callback.mode == "max" else "min")
    return modes


def summarize_monitored_by_best(trainer: pl.Trainer, logger: WandbLogger) -> dict[str, str]:
    """Rank zero: the W&B summary of each monitored metric becomes its best value over the run
    (``summary[name] == {"max": ...}``, or ``"min"``), not the last epoch's. Returns the metrics.

    Charts keep Lightning's x-axis, ``trainer/global_step``. A sweep's metric is its base config's
    checkpoint monitor, so each run's summary holds the best epoch's value of the sweep metric.
    """
    modes = monitored_metrics(trainer)
    synced = bool(getattr(logger, "_wandb_init", {}).get("sync_tensorboard"))  # WandbLogger's own x-axis choice
    step = "global_step" if synced else "trainer/global_step"
    for name, mode in modes.items():
        logger.experiment.define_metric(name, step_metric=step, step_sync=True, summary=mode)
    return modes
