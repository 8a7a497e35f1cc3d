"""Save the resolved CLI config, and attach it, without secrets, to the W&B run.

Secrets are scrubbed only from what goes to W&B (the config, the logged hyperparameters, the command
line): the local ``config.yaml`` stays complete, so it reruns as it is.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from argparse import Namespace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import pytorch_lightning as pl
import yaml
from pytorch_lightning.cli import SaveConfigCallback
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_warn

from medtext.core.trainer_loggers import wandb_logger, wandb_run_dir
from medtext.runtime.wandb_runs import summarize_monitored_by_best

REDACTED = "<redacted>"
SCRUBBED_WANDB_LOGGER = "medtext.ScrubbedWandbLogger"
WANDB_CONFIG_FILE = "lightning/config.yaml"  # W&B keeps its own config.yaml at the top of the run's files
SECRET_KEY_PARTS = {"token", "secret", "password", "passwd", "credential", "credentials", "apikey"}
SECRET_KEY_PAIRS = ("api_key", "access_key", "private_key", "secret_key", "auth_key")
SECRET_ENV = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD", re.IGNORECASE)
MIN_SECRET_LENGTH = 8  # shorter environment values (TOKENIZERS_PARALLELISM=false) are not secrets
LONG_SECRET_LENGTH = 16  # at least this long: removed wherever it occurs; shorter ones as whole words
# ``api_key=...``, ``"token": "..."``, ``password: ...`` inside a string (a URL, an inline JSON or YAML
# value); the key must also pass is_secret_key (``tokenizer_name=...`` stays)
KEYED_VALUE = re.compile(r"""(?P<key>[\w.-]*(?:token|secret|passw(?:or)?d|credential|api_?key|access_?key|"""
                         r"""private_?key|auth_?key)[\w.-]*)(?P<sep>["']?\s*[:=]\s*["']?)(?P<value>[^\s"'&,;}\]]+)""",
                         re.IGNORECASE)
# Hugging Face (hf_...) and GitHub tokens; a W&B API key is 40+ letters, digits or underscores (after an
# optional ``host-`` prefix), tested in _token_shaped: at least 8 digits and 8 letters, so that long
# snake_case names stay
PREFIXED_TOKEN = re.compile(r"(?<![A-Za-z0-9])(?:hf_[A-Za-z0-9]{30,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{30,})")
LONG_WORD = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z0-9_]{40,}(?![A-Za-z0-9_])")


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
    """A copy of ``value`` (nested dicts, lists, strings, anything else kept) without secrets: values
    under keys such as ``api_key``, ``token``, ``secret`` or ``password``, what :func:`scrub_text`
    removes from strings, and any value of an environment variable whose name contains KEY, TOKEN,
    SECRET or PASSWORD (8 characters or more), also inside a longer string."""
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
        return scrub_text(value, secrets)
    return value


def _token_shaped(word: str) -> bool:
    return sum(c.isdigit() for c in word) >= 8 and sum(c.isalpha() for c in word) >= 8


def scrub_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` without the values of secret keys written in it (``key=value``, ``key: value``), words
    shaped like a W&B API key or a Hugging Face or GitHub token, and ``secrets`` (at least 16
    characters: wherever they occur; 8 to 15: where they are not part of a longer word)."""
    text = KEYED_VALUE.sub(lambda m: m["key"] + m["sep"] + REDACTED if is_secret_key(m["key"]) else m[0], text)
    for secret in sorted(secrets, key=len, reverse=True):  # the longest first: one secret may hold another
        if len(secret) >= LONG_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
        elif len(secret) >= MIN_SECRET_LENGTH and secret in text:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", REDACTED, text)
    text = PREFIXED_TOKEN.sub(REDACTED, text)
    return LONG_WORD.sub(lambda m: REDACTED if _token_shaped(m[0]) else m[0], text)


def scrub_argv(argv: Sequence[str], secrets: Optional[set[str]] = None) -> list[str]:
    """Command-line arguments without secrets: the value of an option named like a secret
    (``--x.api_key=VALUE``, or ``--x.api_key VALUE``), and in every argument what :func:`scrub_text` removes."""
    secrets = environment_secrets() if secrets is None else secrets
    scrubbed: list[str] = []
    hide_next = False
    for arg in argv:
        option, equals, _ = arg.partition("=")
        secret_option = arg.startswith("-") and is_secret_key(option)
        if hide_next:
            scrubbed.append(REDACTED)
        elif secret_option and equals:
            scrubbed.append(f"{option}={REDACTED}")
        else:
            scrubbed.append(scrub_text(arg, secrets))
        hide_next = secret_option and not equals and not hide_next
    return scrubbed


@contextlib.contextmanager
def scrubbed_sys_argv() -> Iterator[None]:
    """``sys.argv`` scrubbed (:func:`scrub_argv`) inside the block, then restored: W&B records it
    as the run's ``args`` when the run starts; DDP launches its other processes with the real one."""
    original = sys.argv
    sys.argv = [*original[:1], *scrub_argv(original[1:])]
    try:
        yield
    finally:
        sys.argv = original


def start_wandb_run(trainer: pl.Trainer) -> None:
    """Create the trainer's W&B run now (global rank zero), recording the scrubbed command line;
    Lightning would create it later with the real one. Call before anything else uses the run."""
    logger = wandb_logger(trainer)
    if logger is not None and trainer.is_global_zero:
        with scrubbed_sys_argv():
            _ = logger.experiment


class ScrubbedWandbLogger(WandbLogger):
    """Lightning's ``WandbLogger`` whose logged hyperparameters (the model's and the data's, which
    Lightning logs at the start of a fit) are scrubbed of secrets first."""

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        super().log_hyperparams(scrub(params if isinstance(params, (Mapping, Namespace)) else dict(params)),
                                *args, **kwargs)


def use_scrubbed_wandb_loggers(trainer_config: Any) -> None:
    """In a parsed ``trainer`` config, Lightning's own ``WandbLogger`` becomes :class:`ScrubbedWandbLogger`
    (same arguments), before the loggers are built."""
    loggers = trainer_config.get("logger")
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        class_path = logger.get("class_path") if hasattr(logger, "get") else None
        if class_path and _names_lightnings_wandb_logger(str(class_path)):
            logger.class_path = SCRUBBED_WANDB_LOGGER


def _names_lightnings_wandb_logger(class_path: str) -> bool:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module or "pytorch_lightning.loggers"), name) is WandbLogger
    except (ImportError, AttributeError, ValueError):
        return False  # not importable: Lightning's own error follows when it is built


class WandbSaveConfigCallback(SaveConfigCallback):
    """``SaveConfigCallback`` (``config.yaml`` in the log directory) that also attaches the scrubbed
    resolved config to the W&B run, when a ``WandbLogger`` is in use."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "predict":  # predict writes its output file and nothing else
            return
        logger = wandb_logger(trainer)
        if logger is not None:
            if not isinstance(logger, ScrubbedWandbLogger):  # a WandbLogger subclass of the user's own
                rank_zero_warn(f"{type(logger).__name__} is not a {SCRUBBED_WANDB_LOGGER}: the hyperparameters "
                               "Lightning logs to W&B through it are not scrubbed of secrets")
            # trainer.log_dir is the save_dir that every W&B run shares: save_config writes the
            # local config.yaml into the run's own folder instead
            self.save_to_log_dir = self.save_to_log_dir and trainer.loggers[0] is not logger
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Rank zero: the local ``config.yaml`` in the W&B run's folder, ``<save_dir>/<project>/<run id>/``
        beside its checkpoints (when W&B is the first logger); the scrubbed config becomes the W&B run
        config (top-level keys ``trainer``, ``model``, ``data``, ...) and the run file
        ``lightning/config.yaml``; the run's summary holds the best value of each monitored metric, not
        the last epoch's (:func:`medtext.runtime.wandb_runs.summarize_monitored_by_best`)."""
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
