"""Where ``validate``/``test --ckpt_path FILE`` write their report when no logger is named: in the
checkpoint's run, ``RUN/evaluations/<command>_<checkpoint>_<data file>/version_N``, not in a new
``runs/lightning_logs/version_N`` that says nothing about which model it evaluated.

A named logger (``--trainer.logger``, a config's) or ``--trainer.default_root_dir DIR`` is where the
user asked; ``--trainer.logger false`` writes no logger folder at all.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

from jsonargparse import Namespace


def checkpoint_run_folder(ckpt_path: Path) -> Path:
    """``RUN`` for ``RUN/checkpoints/X.ckpt`` (the layout fit writes), else the checkpoint's own folder."""
    folder = ckpt_path.resolve().parent
    return folder.parent if folder.name == "checkpoints" else folder


def evaluation_name(command: str, ckpt_path: Path, data_file: Optional[str]) -> str:
    """``test_best-epoch=2-step=30_official``: what was evaluated on what, safe as a folder name."""
    parts = [command, ckpt_path.stem, Path(data_file).stem if data_file else "data"]
    return re.sub(r"[^\w.=+-]", "_", "_".join(parts))


def evaluation_logger(command: str, ckpt_path: Path, data_file: Optional[str], fallback_root: str) -> Namespace:
    """A CSV logger whose folder is the evaluation's, a new ``version_N`` each time (an earlier report is
    kept); under ``fallback_root`` when the checkpoint's run cannot be written (a shared model folder)."""
    run = checkpoint_run_folder(ckpt_path)
    root = run / "evaluations" if os.access(run, os.W_OK) else Path(fallback_root) / "evaluations"
    return Namespace(class_path="pytorch_lightning.loggers.CSVLogger",
                     init_args=Namespace(save_dir=str(root), name=evaluation_name(command, ckpt_path, data_file)))


def use_evaluation_folder(config: Namespace, command: str, ckpt_path: Path, default_root_dir: str) -> None:
    """Sets ``config.trainer.logger`` to the evaluation's folder unless a logger (or none), or a
    ``trainer.default_root_dir`` other than ``default_root_dir``, was named: that is where the user asked."""
    if config.trainer.get("logger") not in (None, True) or config.trainer.get("default_root_dir") != default_root_dir:
        return
    init_args = config.data.get("init_args") or Namespace()
    data_file = init_args.get("test_file" if command == "test" else "val_file")
    config.trainer.logger = evaluation_logger(command, ckpt_path, data_file, default_root_dir)
