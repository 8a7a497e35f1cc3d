"""Calibration end to end with a tiny encoder: the test's ECE/Brier report and reliability diagram, the
temperature each checkpoint carries, predict applying it (never changing a decision), and the off switch."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from cli_helpers import in_folder, run, tiny_config
from test_multilabel import write_multilabel_csv

from medtext.model.calibration import fit_temperature
from medtext.runtime.checkpoint import read_checkpoint
from medtext.core.metrics import metric_label

SYNTHETIC = {"num_train": 60, "num_val": 40, "num_test": 30}
CALIBRATION_KEYS = {"test/ece", "test/ece_uncalibrated", "test/brier", "test/brier_uncalibrated"}


# ------------------------------------------------------------------ end to end, with a tiny encoder
def rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def predict(checkpoint: Path, predict_file: Path, out: Path, *options: str) -> list[dict]:
    run("predict", "--ckpt_path", str(checkpoint), "--data.predict_file", str(predict_file),
        "--predictions.output_file", str(out), *options)
    return rows(out)


def probabilities(predictions: list[dict]) -> torch.Tensor:
    return torch.tensor([[float(v) for k, v in row.items() if k.startswith("prob_")] for row in predictions])


@pytest.fixture(scope="module")
def single_label(tiny_encoder, tmp_path_factory):
    """A two-epoch fit with ``--test_after_fit``: its cli and folder (data in ``folder/data``)."""
    with in_folder(tmp_path_factory.mktemp("calibration")) as folder:
        config = tiny_config(folder / "fit.yaml", tiny_encoder, {**SYNTHETIC, "data_dir": str(folder / "data")},
                             "data_modules.SyntheticAbstractsDataModule", max_epochs=2, default_root_dir=str(folder))
        cli = run("fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={folder / 'runs'}",
                  "--test_after_fit", "true")
    return cli, folder


@pytest.mark.slow
def test_test_reports_ece_and_brier_and_writes_the_reliability_diagram(single_label):
    cli, _ = single_label
    log_dir = Path(cli.trainer.log_dir)
    metrics = json.loads((log_dir / "test_metrics.json").read_text())
    assert CALIBRATION_KEYS <= set(metrics) and all(math.isfinite(metrics[k]) for k in CALIBRATION_KEYS)
    assert (log_dir / "reliability.png").stat().st_size > 1000 and (log_dir / "test_confusion_matrix.png").exists()
    with open(log_dir / "metrics.csv", newline="") as handle:
        logged = next(csv.reader(handle))
    assert CALIBRATION_KEYS <= set(logged)


@pytest.mark.slow
def test_best_checkpoint_carries_the_temperature_of_its_own_validation_epoch(single_label, tmp_path):
    cli, folder = single_label
    best = Path(cli.trainer.checkpoint_callback.best_model_path)
    last = best.with_name("last.ckpt")
    settings = read_checkpoint(best)
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    assert settings.temperature == state["calibrator.temperature"].tolist() and len(settings.temperature) == 1
    assert read_checkpoint(last).temperature is not None and settings.temperature != [1.0]
    # the best weights' uncalibrated validation logits give the stored temperature back
    val = folder / "data" / "val.csv"
    raw = probabilities(predict(best, val, tmp_path / "raw.csv", "--model.init_args.calibration", "none"))
    names = cli.model.label_names
    targets = torch.tensor([names.index(row["label"]) for row in rows(val)])
    refitted = fit_temperature(raw.clamp_min(1e-6).log(), targets, multi_label=False)
    assert float(refitted) == pytest.approx(settings.temperature[0], rel=0.02)


@pytest.mark.slow
def test_predict_applies_the_temperature_and_the_off_switch_changes_no_decision(single_label, tmp_path):
    cli, folder = single_label
    best = Path(cli.trainer.checkpoint_callback.best_model_path)
    temperature = read_checkpoint(best).temperature[0]
    test_file = folder / "data" / "test.csv"
    on = predict(best, test_file, tmp_path / "on.csv")
    off = predict(best, test_file, tmp_path / "off.csv", "--model.init_args.calibration", "none")
    assert [row["label"] for row in on] == [row["label"] for row in off]
    expected = (probabilities(off).clamp_min(1e-6).log() / temperature).softmax(-1)
    assert torch.allclose(probabilities(on), expected, atol=2e-5)
    # test with calibration off: the same decisions and metrics, uncalibrated probabilities scored
    run("test", "--ckpt_path", str(best), "--data.test_file", str(test_file), "--model.init_args.calibration",
        "none", "--trainer.default_root_dir", str(tmp_path / "off"), "--trainer.logger", "false")
    run("test", "--ckpt_path", str(best), "--data.test_file", str(test_file),
        "--trainer.default_root_dir", str(tmp_path / "on"), "--trainer.logger", "false")
    tested_off, tested_on = (json.loads(next((tmp_path / name).glob("**/test_metrics.json")).read_text())
                             for name in ("off", "on"))
    assert tested_off["test/ece"] == tested_off["test/ece_uncalibrated"]
    assert tested_off["test/ece_uncalibrated"] == pytest.approx(tested_on["test/ece_uncalibrated"])
    assert {k: v for k, v in tested_off.items() if "f1" in k or "accuracy" in k} == \
        {k: v for k, v in tested_on.items() if "f1" in k or "accuracy" in k}


@pytest.mark.slow
def test_fit_with_calibration_none_fits_no_temperature(tiny_encoder, tmp_path):
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {**SYNTHETIC, "data_dir": str(tmp_path / "data")},
                         "data_modules.SyntheticAbstractsDataModule")
    cli = run("fit", "--config", str(config), "--model.init_args.calibration", "none")
    best = cli.trainer.checkpoint_callback.best_model_path
    assert read_checkpoint(best).temperature == [1.0]
    assert read_checkpoint(best).hyper_parameters["calibration"] == "none"


@pytest.mark.slow
def test_multi_label_decisions_are_identical_with_calibration_on_and_off(tiny_encoder, tmp_path):
    for split, n, seed in (("train", 60, 1), ("val", 40, 2), ("test", 30, 3)):
        write_multilabel_csv(tmp_path / f"{split}.csv", n, seed)
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {
        "train_file": "train.csv", "val_file": "val.csv", "test_file": "test.csv",
        "label_column": "labels", "label_delimiter": ";"}, max_epochs=2)
    cli = run("fit", "--config", str(config), "--trainer.callbacks.init_args.monitor", "val/micro_f1",
              "--test_after_fit", "true")
    best = Path(cli.trainer.checkpoint_callback.best_model_path)
    settings = read_checkpoint(best)
    names = settings.label_names
    temperature = torch.tensor(settings.temperature)
    assert temperature.shape == (len(names),) and not torch.equal(temperature, torch.ones(len(names)))
    metrics = json.loads((Path(cli.trainer.log_dir) / "test_metrics.json").read_text())
    assert CALIBRATION_KEYS <= set(metrics) and (Path(cli.trainer.log_dir) / "reliability.png").exists()

    on = predict(best, tmp_path / "test.csv", tmp_path / "on.csv")
    off = predict(best, tmp_path / "test.csv", tmp_path / "off.csv", "--model.init_args.calibration", "none")
    assert [row["label"] for row in on] == [row["label"] for row in off]
    # the checkpoint's thresholds are on the calibrated probabilities that predict writes
    thresholds = settings.thresholds
    for row in on:
        chosen = [n for n, t in zip(names, thresholds) if float(row[f"prob_{metric_label(n)}"]) >= t]
        assert row["label"] == ";".join(chosen)
    raw = probabilities(off).clamp(1e-6, 1 - 1e-6)
    assert torch.allclose(probabilities(on), (torch.logit(raw) / temperature).sigmoid(), atol=5e-5)


def test_too_few_validation_abstracts_fit_no_temperature_and_say_so(tiny_encoder, tmp_path):
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {"num_train": 24, "num_val": 6, "num_test": 4},
                         "data_modules.SyntheticAbstractsDataModule", max_epochs=1)
    with pytest.warns(UserWarning, match="6 validation abstracts are too few to fit a temperature"):
        fitted = run("fit", "--config", str(config))
    assert torch.equal(fitted.model.calibrator.temperature, torch.ones(1))
