"""Calibrated probabilities on synthetic logits: a temperature fitted on validation logits recovers the
known one, lowers held-out NLL and ECE, maps multi-label thresholds to the same decisions; the ECE and
Brier metrics agree with torchmetrics; the reliability diagram goes to W&B. End to end: test_calibration_cli.py."""

import pytest
import torch
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
