"""Run the medtext CLI from tests: in this process (``run``) or as a user does, as a child process
(``run_medtext``)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from medtext.commands.cli import build_cli

ROOT = Path(__file__).resolve().parents[1]


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


def shipped_checkpoints(every_n_train_steps: int) -> list[dict]:
    """The ModelCheckpoint callbacks of the shipped task configs, saving every ``every_n_train_steps``."""
    config = yaml.safe_load((ROOT / "configs" / "base" / "fit.yaml").read_text())  # every task config's
    callbacks = [c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("Checkpoint")]
    for callback in callbacks:
        if "every_n_train_steps" in callback["init_args"]:
            callback["init_args"]["every_n_train_steps"] = every_n_train_steps
    return callbacks


def child_env(**extra: str) -> dict[str, str]:
    """A child's environment: tests/ importable for the test-only callbacks (``killer.KillAtStep`` ...)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]), **extra}


def run_medtext(*args: str, cwd: Path, check: bool = True, timeout: int = 600,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m medtext ARGS`` as a child process in ``cwd``; with ``check`` a failure shows its stderr."""
    result = subprocess.run([sys.executable, "-m", "medtext", *args], cwd=cwd, env=env or child_env(),
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"medtext {' '.join(args)} failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return result


def run(*args: str):
    """``python -m medtext ARGS`` in this process; returns the CLI object."""
    return build_cli(list(args))


@contextlib.contextmanager
def in_folder(folder: Path):
    """Run in ``folder`` with the token cache ``folder/cache``, then back: for a module-scoped fit, which
    is set up before (and outlives) the function-scoped ``isolated_cache`` fixture's folder and cache.
    Pass such a fit absolute paths (logger ``save_dir`` ...), since the tests run in their own folders."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDTEXT_CACHE_DIR", str(folder / "cache"))
        patch.chdir(folder)
        yield folder
