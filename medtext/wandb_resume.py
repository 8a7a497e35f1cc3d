"""Resuming from a checkpoint continues the same W&B run.

:class:`WandbRunId` stores the W&B run id in every checkpoint (``checkpoint["medtext_wandb_run_id"]``).
Before the classes are instantiated, :func:`resume_wandb_run` reads it back when ``fit`` is given
``--ckpt_path <file>`` and the logger is a ``WandbLogger`` without an explicit ``id``/``version``,
and sets that id with ``resume="allow"``, so the resumed training logs into the same run.
Under a sweep, W&B ignores the id: the agent decides which run a process belongs to.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_info

from .checkpoint_config import RUN_ID_KEY, read_checkpoint
from .errors import MedtextError
from .wandb_runs import wandb_logger



class WandbRunId(pl.Callback):
    """Adds the W&B run id to every checkpoint written while a ``WandbLogger`` is in use."""

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
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(cls, type) and issubclass(cls, WandbLogger)


def resume_wandb_run(config: Any) -> Optional[str]:
    """Point the ``WandbLogger`` of a parsed ``fit`` config at the run stored in its ``ckpt_path``.

    ``config`` is the subcommand's namespace (``cli.config["fit"]``). Returns the run id it set.
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
