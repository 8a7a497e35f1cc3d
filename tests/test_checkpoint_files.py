"""Checkpoint files with the shipped configs' callbacks: the best holds the weights (and what test,
validate and predict need), ``last.ckpt`` the full training state; a dry run writes none."""

import csv
import json
from pathlib import Path

import pytest
import torch

from cli_helpers import run, shipped_checkpoints, tiny_config
from medtext.runtime.checkpoint import StreamingCheckpointIO

SYNTHETIC = {"num_train": 48, "num_val": 16, "num_test": 12}  # batch size 8: 6 steps per epoch
DEMO = "data_modules.SyntheticAbstractsDataModule"
TRAINING_STATE = {"optimizer_states", "lr_schedulers", "callbacks"}


def fit_config(tmp_path: Path, encoder: str) -> Path:
    return tiny_config(tmp_path / "fit.yaml", encoder, SYNTHETIC, DEMO, callbacks=shipped_checkpoints(5))


@pytest.fixture
def saves(monkeypatch) -> list[tuple[str, int, bool]]:
    """(file name, global step, holds the optimizer state) of every checkpoint written."""
    written, save = [], StreamingCheckpointIO.save_checkpoint

    def recording_save(self, checkpoint, path, storage_options=None):
        written.append((Path(path).name, checkpoint["global_step"], "optimizer_states" in checkpoint))
        return save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(StreamingCheckpointIO, "save_checkpoint", recording_save)
    return written


def test_fast_dev_run_writes_no_checkpoint(tiny_encoder, tmp_path, saves):
    cli = run("fit", "--config", str(fit_config(tmp_path, tiny_encoder)), "--trainer.fast_dev_run", "true",
              "--test_after_fit", "true")
    assert cli.trainer.state.finished and cli.trainer.global_step == 1
    assert saves == [] and sorted(tmp_path.rglob("*.ckpt")) == []


def test_best_is_weights_only_and_last_the_training_state(tiny_encoder, tmp_path, saves):
    config = fit_config(tmp_path, tiny_encoder)
    fitted = run("fit", "--config", str(config), "--trainer.max_epochs", "2", "--test_after_fit", "true")
    folder = Path(fitted.trainer.log_dir)
    best_path = Path(fitted.trainer.checkpoint_callback.best_model_path)
    # beside the two checkpoints only the record that this fit (and its test) completed
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == sorted([best_path.name, "last.ckpt", "fit_completed.json"])
    completed = json.loads((folder / "checkpoints" / "fit_completed.json").read_text())
    assert completed["global_step"] == 12 and completed["tested"] is True
    # last.ckpt: full state every 5 steps and after each validation (steps 6 and 12); the best: weights
    assert {step for name, step, _ in saves if name == "last.ckpt"} == {5, 6, 10, 12}
    assert all(full == (name == "last.ckpt") for name, _, full in saves)

    best, last = (torch.load(p, map_location="cpu", weights_only=True) for p in (best_path, folder / "checkpoints" / "last.ckpt"))
    assert TRAINING_STATE <= last.keys() and not TRAINING_STATE & best.keys()
    assert best["state_dict"].keys() == last["state_dict"].keys() and "thresholds" in best["state_dict"]
    assert best["hyper_parameters"]["label_names"] == fitted.datamodule.label_names
    assert best["datamodule_hyper_parameters"]["label_map"] == fitted.datamodule.label_map
    recorded = best[type(fitted.datamodule).__qualname__]["tokenization"]  # the resolved TokenizationSpec
    assert recorded == fitted.datamodule.tokenization.settings() and recorded["budget"] > 0
    sizes = {p.name: p.stat().st_size for p in (best_path, folder / "checkpoints" / "last.ckpt")}
    print(f"checkpoint sizes: {sizes}")
    assert sizes[best_path.name] < 0.5 * sizes["last.ckpt"]  # AdamW keeps two moments per weight

    # test (also test_after_fit's ckpt "best"), validate and predict run from the weights-only file
    after_fit = json.loads((folder / "test_metrics.json").read_text())
    tested = run("test", "--ckpt_path", str(best_path))
    assert json.loads((Path(tested.trainer.log_dir) / "test_metrics.json").read_text()) == pytest.approx(after_fit)
    best_score = float(fitted.trainer.checkpoint_callback.best_model_score)
    validated = run("validate", "--ckpt_path", str(best_path))
    assert float(validated.trainer.callback_metrics["val/macro_f1"]) == pytest.approx(best_score, abs=1e-6)
    out = tmp_path / "predictions.csv"
    run("predict", "--ckpt_path", str(best_path), "--data.predict_file", fitted.datamodule.resolve_files()["test"],
        "--predictions.output_file", str(out))
    assert len(list(csv.DictReader(open(out)))) == SYNTHETIC["num_test"]

    # fit --ckpt_path last resumes from the full state
    resumed = run("fit", "--config", str(config), "--trainer.max_epochs", "3", "--ckpt_path", "last")
    assert resumed.trainer.global_step == 18 and Path(resumed.trainer.log_dir) == folder


def test_checkpoints_are_read_in_one_place():
    """Only medtext's checkpoint reader calls torch.load (the embedding baseline's cache is not a checkpoint)."""
    root = Path(__file__).resolve().parents[1]
    callers = sorted(str(p.relative_to(root)) for package in ("medtext", "data_modules", "callbacks", "scripts")
                     for p in (root / package).rglob("*.py") if "torch.load(" in p.read_text())
    assert sorted(Path(p).name for p in callers) == ["checkpoint_reading.py", "embeddings.py"], callers
