"""Rebuild ``--model`` and ``--data`` from a checkpoint, so ``predict``/``test`` need no config.

>>> with_checkpoint_config(["predict", "--ckpt_path", "best.ckpt"])  # doctest: +SKIP
['predict', '--model={...}', '--data={...}', '--ckpt_path', 'best.ckpt']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch

from .errors import MedtextError

CHECKPOINT_KEY = "medtext_data"
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


def with_checkpoint_config(args: list[str]) -> list[str]:
    """If an evaluation command has ``--ckpt_path`` but no ``--config``, prepend the checkpoint's
    model and data settings; options given on the command line still override them."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command not in EVALUATION_COMMANDS or _has_option(args, "--config") or _has_option(args, "-c"):
        return args
    ckpt_path = _option_value(args, "--ckpt_path")
    if not ckpt_path or not Path(ckpt_path).is_file():
        return args
    try:
        # mmap: only the hyperparameters are read, not the weights and optimizer state
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - any unreadable checkpoint is one clear error
        raise MedtextError(f"{ckpt_path}: cannot read checkpoint: {err}") from None
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    data = checkpoint.get(CHECKPOINT_KEY)
    injected = []
    if "_class_path" in hparams and not _has_option(args, "--model"):
        class_path = hparams["_class_path"]
        init_args = {k: v for k, v in hparams.items() if not k.startswith("_") and k not in LINK_TARGETS["model"]}
        injected.append("--model=" + json.dumps({"class_path": class_path, "init_args": init_args}))
    if data and not _has_option(args, "--data"):
        injected.append("--data=" + json.dumps(data))
    position = args.index(command) + 1
    return args[:position] + injected + args[position:]
