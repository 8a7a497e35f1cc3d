"""Checkpoints: one memory-mapped reader of what a checkpoint says, and a streaming writer.

``validate``/``test``/``predict --ckpt_path FILE`` need no config: :func:`checkpoint_defaults`.
"""

from __future__ import annotations

import argparse
import errno
import functools
import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from pytorch_lightning import LightningDataModule
from pytorch_lightning.plugins.io import TorchCheckpointIO

from medtext.core.atomic_files import atomic_open
from medtext.core.checkpoint_reading import load_checkpoint_file
from medtext.runtime.class_paths import check_class_paths
from medtext.core.errors import MedtextError

RUN_ID_KEY = "medtext_wandb_run_id"
EVALUATION_COMMANDS = ("validate", "test", "predict")
# set by the CLI's links (model -> data tokenizer, data -> model labels), so never given as defaults
LINK_TARGETS = {"model": ("label_names", "multi_label", "label_descriptions"), "data": ("tokenizer_name",)}
# where this machine keeps files: a later command uses its own setting, never a checkpoint's (which
# would choose where files are written, on a machine the checkpoint came from)
MACHINE_LOCAL = {"data": ("cache_dir",)}
LEGACY_DATA_KEY = "medtext_data"  # checkpoints written before the data settings came from Lightning's key


def import_class(class_path: str, default_module: str = "") -> type:
    """The class a config's or checkpoint's ``class_path`` names (a bare name: from ``default_module``).

    >>> import_class("Linear", default_module="torch.nn")
    <class 'torch.nn.modules.linear.Linear'>
    """
    module, _, name = str(class_path).rpartition(".")
    try:
        found = getattr(importlib.import_module(module or default_module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise MedtextError(f"class_path {class_path!r} does not import: {error}") from None
    if not isinstance(found, type):
        raise MedtextError(f"class_path {class_path!r} names {type(found).__name__}, not a class")
    return found


def load_model(ckpt_path: str | Path):
    """A checkpoint's :class:`~medtext.model.classifier.TextClassifier` on the CPU, in eval mode, its weights
    only (``weights_only=True``); a diverged one (non-finite weights) is refused in one line."""
    from medtext.model.classifier import TextClassifier  # the model imports Lightning and transformers: only when loaded
    from medtext.core.divergence import check_weights

    model = TextClassifier.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True).eval()
    check_weights(model, str(ckpt_path))
    return model


def class_config(hparams: Optional[dict], section: str) -> Optional[dict]:
    """``{"class_path", "init_args"}`` of hyperparameters saved by a class the CLI instantiated
    (``_class_path`` plus init args), without the CLI's link targets; ``None`` if not known."""
    if not hparams or "_class_path" not in hparams:
        return None
    init_args = {k: v for k, v in hparams.items() if not k.startswith("_") and k not in LINK_TARGETS[section]}
    return {"class_path": hparams["_class_path"], "init_args": init_args}


@dataclass(frozen=True)
class CheckpointSettings:
    """What a checkpoint says of its model and data. ``label_map`` (``{label value: class name}``)
    is in the model's class order, the truth for every later command."""

    hyper_parameters: dict
    data: Optional[dict]  # the data module's {"class_path", "init_args"}
    thresholds: Optional[list[float]]  # per-label decision thresholds (multi-label; on calibrated probabilities)
    wandb_run_id: Optional[str]
    # fitted temperatures (medtext/model/calibration.py): [T] or one per label; None if the checkpoint predates them
    temperature: Optional[list[float]] = None

    @property
    def model(self) -> Optional[dict]:
        return class_config(self.hyper_parameters, "model")

    @property
    def label_names(self) -> list[str]:
        return list(self.hyper_parameters.get("label_names") or [])

    @property
    def multi_label(self) -> bool:
        return bool(self.hyper_parameters.get("multi_label"))

    @property
    def label_descriptions(self) -> Optional[list[str]]:
        return self.hyper_parameters.get("label_descriptions")

    @property
    def head_class(self) -> type:
        """The head's class, known before the weights load (``head``'s ``class_path``; default MLPHead)."""
        from medtext.heads import MLPHead

        head = self.hyper_parameters.get("head")
        path = head.get("class_path") if isinstance(head, dict) else None
        if not path:
            return head if isinstance(head, type) else MLPHead
        return import_class(path, default_module="medtext.heads")

    @property
    def label_map(self) -> dict[str, str]:
        data_map = ((self.data or {}).get("init_args") or {}).get("label_map") or {}
        if list(data_map.values()) == self.label_names:
            return dict(data_map)
        return {name: name for name in self.label_names}  # no label values saved: the names are


def read_checkpoint(ckpt_path: str | Path) -> CheckpointSettings:
    """The settings of a checkpoint file: one memory-mapped read (not its weights), memoised.

    The only place a command opens a checkpoint for its settings: the model's hyperparameters (label names
    and order: the truth for every later command), the data module's (Lightning's ``datamodule_hyper_parameters``,
    with the resolved label map), the multi-label thresholds, the calibration temperatures and the W&B run id.

    >>> settings = read_checkpoint("best.ckpt")  # doctest: +SKIP
    >>> settings.label_names, settings.data["class_path"]  # doctest: +SKIP
    (['neoplasms', 'digestive system diseases', ...], 'data_modules.MedicalAbstractsDataModule')
    """
    path = Path(ckpt_path)
    try:
        settings = _read_checkpoint(str(path.resolve()), path.stat().st_mtime_ns)
    except MedtextError:
        raise
    except Exception as err:  # noqa: BLE001 - any unreadable checkpoint is one clear error
        raise MedtextError(f"{ckpt_path}: cannot read checkpoint: {' '.join(str(err).split())}") from None
    # before anything imports them (the CLI's defaults, load_from_checkpoint, head_class); checked on
    # every read, not memoised, since what the user trusts is the current command's
    check_class_paths({"hyper_parameters": settings.hyper_parameters, "data": settings.data}, str(ckpt_path))
    return settings


@functools.lru_cache(maxsize=8)
def _read_checkpoint(path: str, mtime_ns: int) -> CheckpointSettings:
    checkpoint: Any = load_checkpoint_file(path)
    if not isinstance(checkpoint, dict):
        raise MedtextError(f"{path}: not a Lightning checkpoint")
    data = class_config(checkpoint.get(LightningDataModule.CHECKPOINT_HYPER_PARAMS_KEY), "data")
    state = checkpoint.get("state_dict") or {}
    thresholds, temperature = state.get("thresholds"), state.get("calibrator.temperature")
    run_id = checkpoint.get(RUN_ID_KEY)
    return CheckpointSettings(dict(checkpoint.get("hyper_parameters") or {}), data or checkpoint.get(LEGACY_DATA_KEY),
                              None if thresholds is None else thresholds.float().tolist(),
                              str(run_id) if run_id else None,
                              None if temperature is None else temperature.float().tolist())


def peek_ckpt_path(args: list[str]) -> Optional[str]:
    """The ``--ckpt_path`` of a command line, read before the command's parser exists (whose defaults
    come from that checkpoint), or ``None``."""
    reader = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    reader.add_argument("--ckpt_path")
    return reader.parse_known_args(list(args))[0].ckpt_path


def checkpoint_defaults(args: list[str]) -> dict[str, dict]:
    """Parser defaults for ``validate``/``test``/``predict --ckpt_path FILE``: the checkpoint's
    model and data (``{"predict.model": ..., "predict.data": ...}``). A config file or a
    command-line option still overrides them; ``--data OtherClass`` keeps what that class also takes."""
    subcommand, ckpt_path = (args[0] if args else None), peek_ckpt_path(args[1:])
    if subcommand not in EVALUATION_COMMANDS or not ckpt_path or not Path(ckpt_path).is_file():
        return {}
    settings = read_checkpoint(ckpt_path)
    sections = {"model": settings.model, "data": settings.data}
    for name, keys in MACHINE_LOCAL.items():
        if sections[name]:
            init_args = {k: v for k, v in (sections[name].get("init_args") or {}).items() if k not in keys}
            sections[name] = {**sections[name], "init_args": init_args}
    return {f"{subcommand}.{name}": config for name, config in sections.items() if config}


def tensor_bytes(value: Any) -> int:
    """The bytes of every tensor in a nested checkpoint: about what ``torch.save`` writes."""
    if isinstance(value, torch.Tensor):
        return value.nelement() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(item) for item in value)
    return 0


class StreamingCheckpointIO(TorchCheckpointIO):
    """Saves with ``torch.save`` straight into a temporary file renamed into place (atomic; no in-memory copy,
    which costs Lightning's default the checkpoint's size in RAM); loads local files memory-mapped (copy-on-write:
    ``validate``/``test``/``predict`` never read the optimizer state into RAM). Remote paths: Lightning's default."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        try:
            with atomic_open(path, "wb") as stream:
                torch.save(checkpoint, stream)
        except RuntimeError as err:
            # torch's zip writer reports a full disk as "unexpected pos ..." (no errno): tell by the free space
            # left once the partial file is gone
            if shutil.disk_usage(Path(path).parent).free < tensor_bytes(checkpoint):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from err
            raise

    def load_checkpoint(self, path, map_location: Optional[Any] = None, weights_only: Optional[bool] = None) -> dict:
        if "://" in str(path):
            return super().load_checkpoint(path, map_location, weights_only)
        if not Path(path).is_file():
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        # weights_only=False only when the user asks for it (fit/validate/test/predict --weights_only false)
        return load_checkpoint_file(path, map_location, weights_only=weights_only is not False)
