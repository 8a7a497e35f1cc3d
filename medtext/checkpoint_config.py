"""What a checkpoint says of its model and data, read once; ``--model``/``--data`` rebuilt from it,
so ``predict``/``test`` need no config.

>>> read_checkpoint("best.ckpt").label_names  # doctest: +SKIP
['neoplasms', 'digestive system diseases', ...]
>>> with_checkpoint_config(["predict", "--ckpt_path", "best.ckpt"])  # doctest: +SKIP
['predict', '--model={...}', '--data={...}', '--ckpt_path', 'best.ckpt']
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from .errors import MedtextError

CHECKPOINT_KEY = "medtext_data"
RUN_ID_KEY = "medtext_wandb_run_id"
EVALUATION_COMMANDS = ("validate", "test", "predict")
LINK_TARGETS = {"model": ("label_names", "multi_label", "label_descriptions"), "data": ("tokenizer_name",)}


def data_config_for_checkpoint(datamodule) -> dict:
    """The data module's class path and init args, with its resolved label map, for the checkpoint."""
    hparams = dict(datamodule.hparams)
    cls = type(datamodule)
    class_path = hparams.get("_class_path", f"{cls.__module__}.{cls.__qualname__}")
    init_args = {k: v for k, v in hparams.items() if not k.startswith("_") and k not in LINK_TARGETS["data"]}
    if "label_map" in init_args:
        init_args["label_map"] = dict(datamodule.label_map)
    return {"class_path": class_path, "init_args": init_args}


def _option_value(args: list[str], name: str) -> Optional[str]:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _has_option(args: list[str], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in args)


@dataclass(frozen=True)
class CheckpointSettings:
    """The settings a checkpoint holds: the model's hyperparameters and the data module's config.

    ``label_map`` (``{label value: class name}``) is in the model's class order, which is the truth
    for every later command."""

    hyper_parameters: dict
    data: Optional[dict]
    wandb_run_id: Optional[str]

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
    def label_map(self) -> dict[str, str]:
        data_map = ((self.data or {}).get("init_args") or {}).get("label_map") or {}
        if list(data_map.values()) == self.label_names:
            return dict(data_map)
        return {name: name for name in self.label_names}  # no label values saved: the names are


def read_checkpoint(ckpt_path: str | Path) -> CheckpointSettings:
    """The settings of a checkpoint file: one memory-mapped read (not its weights), memoised."""
    path = Path(ckpt_path)
    try:
        return _read_checkpoint(str(path.resolve()), path.stat().st_mtime_ns)
    except MedtextError:
        raise
    except Exception as err:  # noqa: BLE001 - any unreadable checkpoint is one clear error
        raise MedtextError(f"{ckpt_path}: cannot read checkpoint: {' '.join(str(err).split())}") from None


@functools.lru_cache(maxsize=8)
def _read_checkpoint(path: str, mtime_ns: int) -> CheckpointSettings:
    checkpoint: Any = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(checkpoint, dict):
        raise MedtextError(f"{path}: not a Lightning checkpoint")
    run_id = checkpoint.get(RUN_ID_KEY)
    return CheckpointSettings(dict(checkpoint.get("hyper_parameters", {})), checkpoint.get(CHECKPOINT_KEY),
                              str(run_id) if run_id else None)


def with_checkpoint_config(args: list[str]) -> list[str]:
    """If an evaluation command has ``--ckpt_path`` but no ``--config``, prepend the checkpoint's
    model and data settings; options given on the command line still override them (``--data
    OtherClass`` keeps the settings that class also takes)."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command not in EVALUATION_COMMANDS or _has_option(args, "--config") or _has_option(args, "-c"):
        return args
    ckpt_path = _option_value(args, "--ckpt_path")
    if not ckpt_path or not Path(ckpt_path).is_file():
        return args
    settings = read_checkpoint(ckpt_path)
    hparams = settings.hyper_parameters
    injected = []
    if "_class_path" in hparams:
        init_args = {k: v for k, v in hparams.items() if not k.startswith("_") and k not in LINK_TARGETS["model"]}
        injected.append("--model=" + json.dumps({"class_path": hparams["_class_path"], "init_args": init_args}))
    if settings.data:
        injected.append("--data=" + json.dumps(settings.data))
    position = args.index(command) + 1
    return args[:position] + injected + args[position:]
