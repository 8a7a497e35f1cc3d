"""Run the medtext CLI in-process from tests."""

from __future__ import annotations

from pathlib import Path

import yaml

from medtext.cli import build_cli


def tiny_config(path: Path, encoder: str, data_init_args: dict, data_class: str = "data_modules.AbstractsDataModule",
                **trainer) -> Path:
    """A fit config with a tiny encoder, CSV logging under ``runs/`` and a best/last checkpoint."""
    config = {
        "seed_everything": 7,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 1, "enable_progress_bar": False,
                    "enable_model_summary": False, "log_every_n_steps": 1,
                    "logger": {"class_path": "pytorch_lightning.loggers.CSVLogger",
                               "init_args": {"save_dir": "runs", "name": "tiny"}},
                    "callbacks": [{"class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                                   "init_args": {"monitor": "val/macro_f1", "mode": "max", "save_last": True,
                                                 "filename": "best"}}],
                    **trainer},
        "model": {"class_path": "medtext.TextClassifier",
                  "init_args": {"encoder_name": encoder, "head_lr": 1e-2, "encoder_lr": 1e-3}},
        "data": {"class_path": data_class, "init_args": {"batch_size": 8, "max_length": 64, **data_init_args}},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def run(*args: str):
    """``python -m medtext ARGS`` in this process; returns the CLI object."""
    return build_cli(list(args))
