"""Save the resolved CLI config, and attach it, without secrets, to the W&B run.

:class:`WandbSaveConfigCallback` is Lightning's ``SaveConfigCallback`` (``config.yaml`` in the log
directory) with, when a ``WandbLogger`` is in use:

- the local ``config.yaml`` written to the run's own folder, ``<save_dir>/<project>/<run id>/``
  beside its checkpoints (``trainer.log_dir`` is the ``save_dir`` that every W&B run shares);
- the fully resolved config set as the W&B run config (top-level keys ``trainer``, ``model``,
  ``data``, ...) and saved as the run file ``lightning/config.yaml`` (W&B keeps its own
  ``config.yaml`` at the top of the run's files);
- secrets scrubbed from what goes to W&B, including the model and data hyperparameters that
  Lightning logs: values under keys such as ``api_key``, ``token``, ``secret`` or ``password``, and
  any value of an environment variable whose name contains KEY, TOKEN, SECRET or PASSWORD;
- the run's summary holding the best value of each monitored metric, not the last epoch's
  (:func:`medtext.wandb_runs.summarize_monitored_by_best`).

The local ``config.yaml`` stays complete, so it reruns as it is.
"""

from __future__ import annotations

import os
import re
from argparse import Namespace
from pathlib import Path
from typing import Any, Mapping, Optional

import pytorch_lightning as pl
import yaml
from pytorch_lightning.cli import SaveConfigCallback
from pytorch_lightning.loggers import WandbLogger

from .wandb_runs import summarize_monitored_by_best, wandb_logger, wandb_run_dir

REDACTED = "<redacted>"
WANDB_CONFIG_FILE = "lightning/config.yaml"
SECRET_KEY_PARTS = {"token", "secret", "password", "passwd", "credential", "credentials", "apikey"}
SECRET_KEY_PAIRS = ("api_key", "access_key", "private_key", "secret_key", "auth_key")
SECRET_ENV = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD", re.IGNORECASE)
MIN_SECRET_LENGTH = 8  # shorter environment values (TOKENIZERS_PARALLELISM=false) are not secrets
LONG_SECRET_LENGTH = 16  # at least this long: also removed from inside longer strings (URLs ...)


def is_secret_key(key: Any) -> bool:
    """``api_key``, ``hf_token``, ``db-password``, ``AWS_SECRET_ACCESS_KEY`` ... but not ``tokenizer_name``."""
    parts = [p for p in re.split(r"[^a-z0-9]+", str(key).lower()) if p]
    joined = "_".join(parts)
    return bool(SECRET_KEY_PARTS.intersection(parts)) or any(pair in joined for pair in SECRET_KEY_PAIRS)


def environment_secrets(environ: Optional[Mapping[str, str]] = None) -> set[str]:
    """Values of environment variables whose names contain KEY, TOKEN, SECRET or PASSWORD."""
    environ = os.environ if environ is None else environ
    return {value for name, value in environ.items()
            if SECRET_ENV.search(name) and len(value.strip()) >= MIN_SECRET_LENGTH}


def scrub(value: Any, secrets: Optional[set[str]] = None, key: Any = None) -> Any:
    """A copy of ``value`` (nested dicts, lists, strings, anything else kept) without secrets."""
    secrets = environment_secrets() if secrets is None else secrets
    if isinstance(value, Namespace):
        value = vars(value)
    if isinstance(value, Mapping):
        return {k: scrub(v, secrets, k) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets, key) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub(v, secrets, key) for v in value)
    if isinstance(value, str) and value:
        if (key is not None and is_secret_key(key)) or value in secrets:
            return REDACTED
        for secret in secrets:
            if len(secret) >= LONG_SECRET_LENGTH and secret in value:
                value = value.replace(secret, REDACTED)
    return value


def scrub_logged_hyperparameters(logger: WandbLogger) -> None:
    """Make ``logger.log_hyperparams`` (Lightning's model and data hyperparameters) scrub first."""
    original = logger.log_hyperparams
    if getattr(original, "scrubs_secrets", False):
        return

    def log_hyperparams(params: Any, *args: Any, **kwargs: Any) -> Any:
        return original(scrub(params if isinstance(params, (Mapping, Namespace)) else dict(params)),
                        *args, **kwargs)

    log_hyperparams.scrubs_secrets = True
    logger.log_hyperparams = log_hyperparams


class WandbSaveConfigCallback(SaveConfigCallback):
    """``SaveConfigCallback`` that also attaches the scrubbed resolved config to the W&B run."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        logger = wandb_logger(trainer)
        if logger is not None:
            scrub_logged_hyperparameters(logger)
            # trainer.log_dir is the save_dir that every W&B run shares: save_config writes the
            # local config.yaml into the run's own folder instead
            self.save_to_log_dir = self.save_to_log_dir and trainer.loggers[0] is not logger
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Rank zero: the local ``config.yaml`` in the W&B run's folder (when W&B is the first
        logger); the scrubbed config becomes the W&B run config and ``lightning/config.yaml``;
        monitored metrics are summarized by their best value."""
        logger = wandb_logger(trainer)
        if logger is None:
            return
        if trainer.loggers[0] is logger:
            path = wandb_run_dir(trainer, logger) / self.config_filename
            path.parent.mkdir(parents=True, exist_ok=True)
            self.parser.save(self.config, str(path), skip_none=False, overwrite=self.overwrite, multifile=self.multifile)
        summarize_monitored_by_best(trainer, logger)
        config = scrub(yaml.safe_load(self.parser.dump(self.config, skip_none=False)))
        run = logger.experiment
        run.config.update(config, allow_val_change=True)
        path = Path(run.dir) / WANDB_CONFIG_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        run.save(str(path), base_path=run.dir, policy="now")
