"""Calibrated probabilities: temperatures fitted on the validation logits, stored in the checkpoint,
applied by test and predict (never changing a decision), and the test's ECE/Brier report."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from cli_helpers import in_folder, run, tiny_config
from test_multilabel import write_multilabel_csv
from torchmetrics.functional.classification import (
    binary_calibration_error,
    multiclass_calibration_error,
)

from medtext.model.calibration import (
    CalibrationMetrics,
    TemperatureScaling,
    calibrated_thresholds,
    fit_temperature,
)
from medtext.runtime.checkpoint import read_checkpoint
from medtext.core.metrics import metric_label

SYNTHETIC = {"num_train": 60, "num_val": 40, "num_test": 30}
CALIBRATION_KEYS = {"test/ece", "test/ece_uncalibrated", "test/brier", "test/brier_uncalibrated"}


def synthetic(n: int, classes: int, temperature: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose labels are drawn from softmax(logits / temperature): the right temperature is known."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=generator) * 3
    targets = torch.multinomial((logits / temperature).softmax(-1), 1, generator=generator).squeeze(-1)
    return logits, targets


# ------------------------------------------------------------------ fitting, on synthetic logits
@pytest.mark.parametrize("true_temperature", [0.5, 2.0, 4.0])
def test_single_label_fit_recovers_a_known_temperature(true_temperature):
    logits, targets = synthetic(6000, 5, true_temperature, seed=1)
    fitted = fit_temperature(logits, targets, multi_label=False)
    assert fitted.shape == (1,) and float(fitted) == pytest.approx(true_temperature, rel=0.1)


def test_multi_label_fit_recovers_one_temperature_per_label():
    generator = torch.Generator().manual_seed(2)
    true = torch.tensor([0.5, 1.0, 3.0])
    logits = torch.randn(8000, 3, generator=generator) * 3
    targets = torch.bernoulli((logits / true).sigmoid(), generator=generator)
    targets[:, 1] = 0  # no positive: nothing to fit, the label keeps 1
    fitted = fit_temperature(logits, targets, multi_label=True)
    assert fitted.shape == (3,)
    assert fitted[[0, 2]].tolist() == pytest.approx(true[[0, 2]].tolist(), rel=0.1)
    assert float(fitted[1]) == 1.0


def test_fitting_on_validation_lowers_nll_and_ece_of_held_out_data():
    logits, targets = synthetic(8000, 4, 3.0, seed=3)  # overconfident: the model's logits are 3x too large
    temperature = fit_temperature(logits[:4000], targets[:4000], multi_label=False)
    held_logits, held_targets = logits[4000:], targets[4000:]
    nll = [torch.nn.functional.cross_entropy(held_logits / t, held_targets) for t in (1.0, temperature)]
    ece = [multiclass_calibration_error((held_logits / t).softmax(-1), held_targets, 4, n_bins=15, norm="l1")
           for t in (1.0, temperature)]
    assert nll[1] < nll[0] - 0.1 and ece[1] < ece[0] / 3


def test_multi_label_thresholds_map_to_the_same_decisions():
    generator = torch.Generator().manual_seed(4)
    logits = torch.randn(5000, 4, generator=generator) * 4
    thresholds = torch.tensor([0.05, 0.3, 0.5, 0.85])
    temperature = torch.tensor([0.2, 0.7, 1.0, 6.0])
    mapped = calibrated_thresholds(thresholds, temperature)
    assert torch.equal(logits.sigmoid() >= thresholds, (logits / temperature).sigmoid() >= mapped)
    assert float(mapped[2]) == pytest.approx(0.5), "0.5 stays 0.5 under any temperature"


def test_the_off_switch_and_checkpoints_without_temperatures():
    on, off = TemperatureScaling(3, True), TemperatureScaling(3, True, "none")
    on.temperature.copy_(torch.tensor([2.0, 4.0, 0.5]))
    logits = torch.tensor([[2.0, 4.0, 1.0]])
    assert torch.equal(on(logits), torch.tensor([[1.0, 1.0, 2.0]])) and torch.equal(off(logits), logits)
    off.load_state_dict({})  # a checkpoint from before calibration: no temperature, T = 1
    assert torch.equal(off.temperature, torch.ones(3))
    with pytest.raises(ValueError, match="calibration must be"):
        TemperatureScaling(3, False, "platt")


def test_calibration_metrics_match_torchmetrics_and_the_brier_score():
    logits, targets = synthetic(500, 3, 2.0, seed=5)
    metrics = CalibrationMetrics(3, multi_label=False)
    raw, calibrated = logits.softmax(-1), (logits / 2).softmax(-1)
    metrics.update(raw, calibrated, targets)
    results = metrics.compute()
    assert float(results["ece_uncalibrated"]) == pytest.approx(float(
        multiclass_calibration_error(raw, targets, 3, n_bins=15, norm="l1")))
    brier = (calibrated - torch.nn.functional.one_hot(targets, 3)).pow(2).sum(-1).mean()
    assert float(results["brier"]) == pytest.approx(float(brier), rel=1e-5)
    assert results["reliability"].shape == (2, 3, 15) and float(results["reliability"][1, 2].sum()) == 500

    labels = (torch.rand(200, 4) < 0.3).long()
    probabilities = torch.rand(200, 4)
    multi = CalibrationMetrics(4, multi_label=True)
    multi.update(probabilities, probabilities, labels)
    results = multi.compute()
    expected = binary_calibration_error(probabilities.flatten(), labels.flatten(), n_bins=15, norm="l1")
    assert float(results["ece"]) == pytest.approx(float(expected))
    assert float(results["brier"]) == pytest.approx(float((probabilities - labels).pow(2).mean()), rel=1e-5)


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


def test_the_reliability_diagram_is_logged_to_wandb_with_the_test_tables(tmp_path):
    from callbacks.metric_tables import log_to_wandb

    logits, targets = synthetic(200, 3, 2.0, seed=6)
    metrics = CalibrationMetrics(3, multi_label=False)
    metrics.update(logits.softmax(-1), (logits / 2).softmax(-1), targets)
    results = {**metrics.compute(), "precision": torch.ones(3), "recall": torch.ones(3), "f1": torch.ones(3),
               "confusion_matrix": torch.eye(3, dtype=torch.long) * 5}
    logged = {}

    class Logger:
        def log_metrics(self, payload, step):
            logged.update(payload)

    log_to_wandb(Logger(), type("Trainer", (), {"current_epoch": 1, "global_step": 10}), "test", results, list("abc"))
    assert type(logged["test/reliability"]).__name__ == "Image"
    assert {"test/per_class", "test/confusion_matrix"} <= set(logged)


def test_too_few_validation_abstracts_fit_no_temperature_and_say_so(tiny_encoder, tmp_path):
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {"num_train": 24, "num_val": 6, "num_test": 4},
                         "data_modules.SyntheticAbstractsDataModule", max_epochs=1)
    with pytest.warns(UserWarning, match="6 validation abstracts are too few to fit a temperature"):
        fitted = run("fit", "--config", str(config))
    assert torch.equal(fitted.model.calibrator.temperature, torch.ones(1))
