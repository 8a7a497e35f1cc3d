"""``fit --ckpt_path last`` resumes this command's own run, never another job's: the run the logger
names (CSV/TensorBoard ``version``, W&B ``id``), else the one run whose config.yaml has this model and
data; W&B runs are found under the project, whatever their display name; ambiguity stops with one
line listing the candidates."""

import os
import time
from pathlib import Path

import pytest
import torch
import yaml
from jsonargparse import Namespace

from cli_helpers import run, tiny_config
from conftest import ROOT
from medtext.core.errors import MedtextError
from medtext.runtime.resume import resolve_last
from medtext.runtime.wandb_runs import RUN_ID_KEY

MODEL = {"class_path": "medtext.TextClassifier", "init_args": {"encoder_name": "tiny", "head_lr": 0.001}}
DATA = {"class_path": "data_modules.AbstractsDataModule", "init_args": {"train_file": "train.csv", "batch_size": 8}}
OTHER_MODEL = {**MODEL, "init_args": {**MODEL["init_args"], "head_lr": 0.003}}  # e.g. another sweep trial


def namespace(value):
    return Namespace(**{k: namespace(v) for k, v in value.items()}) if isinstance(value, dict) else value


def csv_logger(**init_args) -> dict:
    return {"class_path": "pytorch_lightning.loggers.CSVLogger",
            "init_args": {"save_dir": "runs", "name": "hoc", "version": None, **init_args}}


def wandb_logger(**init_args) -> dict:
    return {"class_path": "pytorch_lightning.loggers.WandbLogger",
            "init_args": {"save_dir": "runs", "project": "medtext", "name": None, "id": None, "version": None,
                          **init_args}}


def fit_config(logger: dict, model: dict = MODEL) -> Namespace:
    return namespace({"ckpt_path": "last", "trainer": {"default_root_dir": "runs", "logger": logger},
                      "model": model, "data": DATA})


def make_run(folder: Path, model: dict = MODEL, age: float = 0.0) -> Path:
    """A run folder with a config.yaml and a last.ckpt written ``age`` seconds ago."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"trainer": {}, "model": model, "data": DATA}))
    last = folder / "checkpoints" / "last.ckpt"
    last.write_bytes(b"checkpoint")
    os.utime(last, (time.time() - age, time.time() - age))
    return last


def one_line_error(config: Namespace) -> str:
    with pytest.raises(MedtextError) as error:
        resolve_last(config)
    message = str(error.value)
    assert "\n" not in message and message.startswith("--ckpt_path last")
    return message


def test_a_newer_run_of_another_config_is_not_taken(tmp_path):
    ours = make_run(Path("runs/hoc/version_0"), age=60)
    make_run(Path("runs/hoc/version_1"), OTHER_MODEL)  # a concurrent job's, written just now
    config = fit_config(csv_logger())
    resolve_last(config)
    assert config.ckpt_path == str(ours) and config.trainer.logger.init_args.version == "version_0"


def test_several_runs_of_this_config_are_ambiguous(tmp_path):
    first, second = make_run(Path("runs/hoc/version_0"), age=60), make_run(Path("runs/hoc/version_1"))
    message = one_line_error(fit_config(csv_logger()))
    assert "ambiguous" in message and f"{second}, {first}" in message and "--ckpt_path FILE" in message


def test_the_version_the_logger_names_is_the_only_candidate(tmp_path):
    named = make_run(Path("runs/hoc/version_1"), age=60)
    make_run(Path("runs/hoc/version_2"))
    config = fit_config(csv_logger(version=1))
    resolve_last(config)
    assert config.ckpt_path == str(named) and config.trainer.logger.init_args.version == 1
    assert "runs/hoc/version_5/checkpoints" in one_line_error(fit_config(csv_logger(version=5)))


def test_no_run_of_this_config_names_the_others(tmp_path):
    assert "no last.ckpt of this model and data below runs/hoc;" in one_line_error(fit_config(csv_logger()))
    other = make_run(Path("runs/hoc/version_0"), OTHER_MODEL)
    assert str(other) in one_line_error(fit_config(csv_logger()))


def test_wandb_runs_are_found_under_the_project_whatever_their_display_name(tmp_path):
    ours = make_run(Path("runs/medtext/abc123"), age=60)
    make_run(Path("runs/medtext/def456"), OTHER_MODEL)
    config = fit_config(wandb_logger(name="my-display-name"))
    resolve_last(config)
    assert config.ckpt_path == str(ours) and config.trainer.logger.init_args.version is None
    named = fit_config(wandb_logger(name="my-display-name", id="def456"))
    resolve_last(named)
    assert named.ckpt_path == "runs/medtext/def456/checkpoints/last.ckpt"


@pytest.mark.slow  # two W&B fits; the lookup itself: test_wandb_runs_are_found_under_the_project_...
def test_wandb_run_with_a_display_name_resumes_from_last(tiny_encoder, tmp_path, monkeypatch):
    import wandb

    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {"num_train": 24, "num_val": 10, "num_test": 5},
                         "data_modules.SyntheticAbstractsDataModule")
    args = ("fit", "--config", str(config), "--config", str(ROOT / "configs" / "logger" / "wandb.yaml"),
            "--trainer.logger.init_args.name=my-display-name")
    try:
        run_id = run(*args).trainer.logger.experiment.id
        wandb.finish()
        second = run(*args, "--ckpt_path", "last", "--trainer.max_epochs", "2")
        assert second.trainer.current_epoch == 2 and second.trainer.logger.experiment.id == run_id
    finally:
        wandb.finish()
        wandb.teardown()  # the W&B service resolves relative paths in its own folder: this test's
    (folder,) = Path("runs/medtext").iterdir()  # one run folder, continued
    assert folder.name == run_id
    assert torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)[RUN_ID_KEY] == run_id
