"""Find a trainer's Weights & Biases logger and the local folders of a run; continue a W&B run when
its checkpoint is resumed, and requeue a sweep trial instead of finishing it.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_info

from medtext.runtime.checkpoint import RUN_ID_KEY, import_class, read_checkpoint
from medtext.core.errors import MedtextError
from medtext.core.trainer_loggers import mark_sweep_trial_preempting, wandb_logger


def monitored_metrics(trainer: pl.Trainer) -> dict[str, str]:
    """``{metric: "max" or "min"}`` for the ``monitor`` of every ModelCheckpoint and EarlyStopping
    (one that follows the model's selection metric, not set up yet, monitors that one)."""
    modes: dict[str, str] = {}
    selection = getattr(getattr(trainer, "lightning_module", None), "selection_metric", None)
    for callback in trainer.callbacks:
        if not isinstance(callback, (ModelCheckpoint, EarlyStopping)):
            continue
        monitor = callback.monitor or (selection if getattr(callback, "follows_model", False) else None)
        if monitor:
            modes.setdefault(monitor, "max" if callback.mode == "max" else "min")
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


class WandbRunId(pl.Callback):
    """Adds the W&B run id to every checkpoint written while a ``WandbLogger`` is in use
    (``checkpoint["medtext_wandb_run_id"]``), for :func:`resume_wandb_run`."""

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        logger = wandb_logger(trainer)
        if logger is not None and trainer.is_global_zero:  # rank zero writes the file
            checkpoint[RUN_ID_KEY] = logger.experiment.id


def stored_run_id(ckpt_path: str) -> Optional[str]:
    """The W&B run id saved in a checkpoint file, or ``None``."""
    try:
        return read_checkpoint(ckpt_path).wandb_run_id
    except MedtextError as err:  # the run id is optional; Lightning reports a bad checkpoint
        warnings.warn(f"{err}; a new W&B run is started", stacklevel=2)
        return None


def _is_wandb_logger(class_path: Any) -> bool:
    if not isinstance(class_path, str) or "." not in class_path:
        return False
    try:
        return issubclass(import_class(class_path), WandbLogger)
    except MedtextError:
        return False


def resume_wandb_run(config: Any) -> Optional[str]:
    """Point the ``WandbLogger`` of a parsed ``fit`` config at the run stored in its ``ckpt_path``.

    ``config`` is the subcommand's namespace (``cli.config["fit"]``). Returns the run id it set.
    Called before the classes are instantiated, for ``--ckpt_path <file>`` and a ``WandbLogger``
    without an explicit ``id``/``version``: the id is set with ``resume="allow"``, so the resumed
    training logs into the same run. Under a sweep, W&B ignores the id (the agent decides which run a
    process belongs to): a requeued trial is preempted instead (:func:`preempt_sweep_trial`).
    """
    ckpt_path = config.get("ckpt_path")
    if not isinstance(ckpt_path, (str, Path)) or not Path(ckpt_path).is_file():
        return None  # no checkpoint, or "last"/"best", resolved by Lightning later
    loggers = config.get("trainer.logger")
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        if not hasattr(logger, "get") or not _is_wandb_logger(logger.get("class_path")):
            continue
        init_args = logger.get("init_args")
        if init_args is None or init_args.get("id") or init_args.get("version"):
            return None  # an explicit id wins
        run_id = stored_run_id(str(ckpt_path))
        if run_id:
            init_args["id"] = run_id
            init_args["resume"] = "allow"
            rank_zero_info(f"resuming W&B run {run_id} from {ckpt_path}")
        return run_id
    return None


def preempt_sweep_trial(exit_code: int) -> bool:
    """Inside a W&B sweep, finish this process's W&B run, marked preempting, with ``exit_code``;
    returns whether the process is a sweep trial. W&B's rule: a preempting run that ends with a
    non-zero status is requeued by the sweep; status 0 means finished. The mark is sent again in
    case the requeue did not come through :class:`callbacks.SlurmRequeue` (W&B keeps one state)."""
    if not mark_sweep_trial_preempting():
        return False
    run = getattr(sys.modules.get("wandb"), "run", None)
    if run is not None:
        try:
            run.finish(exit_code=exit_code)  # the run's status, whichever way the process then exits
        except Exception as err:  # noqa: BLE001 - the exit status alone still makes the agent see a failure
            warnings.warn(f"could not finish W&B run {run.id}: {err}", stacklevel=2)
    return True
