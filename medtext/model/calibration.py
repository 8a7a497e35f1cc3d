"""Calibrated probabilities: temperatures fitted on the validation logits, applied by test and predict.

The test also reports the calibration metrics (ECE, Brier score, reliability bins) before and after.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_warn
from torch import nn
from torchmetrics import MeanMetric, Metric
from torchmetrics.classification import (
    BinaryCalibrationError,
    MulticlassCalibrationError,
)

from medtext.core.divergence import check_outputs

CalibrationMode = Literal["temperature", "none"]
N_BINS = 15
MIN_CALIBRATION_ROWS = 30  # validation abstracts (all ranks) below which no temperature is fitted
MIN_LOG_T, MAX_LOG_T = math.log(0.05), math.log(20.0)  # fitting keeps T in [0.05, 20]


class Logits(NamedTuple):
    """A batch's logits and their temperature-scaled twin (an ensemble's: the mean of its members' own
    calibrated probabilities, as logits)."""

    raw: torch.Tensor
    scaled: torch.Tensor

    def calibrated(self, enabled: bool) -> torch.Tensor:
        """The logits a model with calibration ``enabled`` (or not) reports probabilities of."""
        return self.scaled if enabled else self.raw


class TemperatureScaling(nn.Module):
    """The temperatures (buffer ``temperature``, shape ``(1,)`` or ``(labels,)``, 1 until fitted) and
    whether they are applied."""

    def __init__(self, num_labels: int, multi_label: bool, mode: CalibrationMode = "temperature"):
        super().__init__()
        if mode not in ("temperature", "none"):
            raise ValueError(f"calibration must be 'temperature' or 'none', not {mode!r}")
        self.enabled = mode == "temperature"
        self.register_buffer("temperature", torch.ones(num_labels if multi_label else 1))
        self.register_load_state_dict_pre_hook(_default_temperature)

    def forward(self, logits: torch.Tensor, enabled: bool | None = None) -> torch.Tensor:
        """``logits / T`` if applied (``enabled``, default: the model's ``calibration``), else ``logits``."""
        if not (self.enabled if enabled is None else enabled):
            return logits
        return logits.float() / self.temperature.to(logits.device)


def _default_temperature(module, state_dict, prefix, *args) -> None:
    """Checkpoints written before calibration existed load with T = 1 (no change)."""
    state_dict.setdefault(prefix + "temperature", torch.ones_like(module.temperature))


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, multi_label: bool,
                    max_iter: int = 100) -> torch.Tensor:
    """The temperature(s) minimising the validation NLL: shape ``(1,)``, or ``(labels,)`` multi-label.

    Single-label: one T for ``softmax(logits / T)``; multi-label: one per label for ``sigmoid(logits / T_j)``
    (a label without both a positive and a negative example keeps 1). LBFGS on log T; a temperature
    changes no argmax. Runs with gradients on even inside Lightning's inference mode; returns ones if
    nothing fits.

    >>> generator = torch.Generator().manual_seed(0)
    >>> logits = torch.randn(2000, 4, generator=generator) * 3
    >>> targets = torch.multinomial((logits / 2).softmax(-1), 1, generator=generator).squeeze(-1)  # true temperature 2
    >>> 1.7 < float(fit_temperature(logits, targets, multi_label=False)) < 2.3
    True
    """
    width = logits.shape[-1] if multi_label else 1
    ones = torch.ones(width)
    if logits.numel() == 0:
        return ones
    with torch.inference_mode(False), torch.enable_grad():
        z = logits.detach().to("cpu", torch.float64).clone()
        y = targets.detach().to("cpu").clone()
        if multi_label:
            y = y.to(torch.float64)
            informative = ((y > 0.5).any(0) & (y < 0.5).any(0)).to(torch.float64)
        else:
            y = y.long()
            informative = torch.ones(1, dtype=torch.float64)
        log_t = torch.zeros(width, dtype=torch.float64, requires_grad=True)

        def nll(log_t: torch.Tensor) -> torch.Tensor:
            scaled = z / log_t.clamp(MIN_LOG_T, MAX_LOG_T).exp()
            if multi_label:
                per_label = F.binary_cross_entropy_with_logits(scaled, y, reduction="none").mean(0)
                return (per_label * informative).sum()
            return F.cross_entropy(scaled, y)

        optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = nll(log_t)
            loss.backward()
            return loss

        start = float(nll(torch.zeros_like(log_t)))
        optimizer.step(closure)
        fitted = log_t.detach().clamp(MIN_LOG_T, MAX_LOG_T)
        end = float(nll(fitted))
    if not math.isfinite(end) or end > start:
        return ones
    temperature = fitted.exp().float()
    return torch.where(informative > 0, temperature, ones)


def calibrated_thresholds(thresholds: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """Thresholds ``t`` on ``sigmoid(z)`` as thresholds on ``sigmoid(z / T)``: ``t' = sigmoid(logit(t) / T)``,
    exactly the same decisions (``z >= logit(t)``)."""
    t = thresholds.double().clamp(1e-12, 1 - 1e-12)
    return torch.sigmoid(torch.logit(t) / temperature.to(t)).to(thresholds.dtype)


def fit_on_validation(module) -> None:
    """At each validation end of ``module`` (a ``TextClassifier``): multi-label thresholds (tuned for
    F1 if ``tune_thresholds``, logged as ``val/tuned_*``), then the temperatures (unless
    ``calibration: none``); during ``fit`` only, not in the sanity check.

    Both go into buffers (``calibrator.temperature``; ``thresholds`` holds the thresholds tuned on the
    uncalibrated probabilities, mapped by :func:`calibrated_thresholds`), so the checkpoint saved after
    an epoch carries that epoch's values. Decisions are always taken on the temperature-scaled
    probabilities at those thresholds: ``calibration: none`` changes the probabilities written and
    scored, never a decision."""
    from medtext.model.tasks import tune_thresholds

    task, hparams, trainer = module.task, module.hparams, module.trainer
    if task.multi_label and not hparams.tune_thresholds:  # the thresholds test and predict use: the global one
        results = module.evaluation_results("val")
        module.log_dict({"val/tuned_micro_f1": results["micro_f1"], "val/tuned_macro_f1": results["macro_f1"]},
                        sync_dist=True)
    if trainer.state.fn != "fit":
        return
    logits, targets = module.val_logits.compute(), module.val_targets.compute()  # gathered under DDP
    module.val_logits.reset()
    module.val_targets.reset()
    if not torch.is_tensor(logits) or logits.numel() == 0:  # no validation batch: CatMetric computes []
        return
    check_outputs(module, logits, "val")  # NaN rows are kept (nan_strategy="disable"): refused, never fitted
    if trainer.sanity_checking:
        return
    thresholds = torch.full_like(module.thresholds, hparams.threshold)
    if task.multi_label and hparams.tune_thresholds:
        probabilities = task.probabilities(logits)
        thresholds = tune_thresholds(probabilities, targets, hparams.threshold).to(thresholds)
        tuned = task.metrics().to(probabilities.device)
        tuned.update(task.predictions(probabilities, thresholds), targets.long())
        scores = tuned.compute()
        module.log_dict({"val/tuned_micro_f1": scores["micro_f1"], "val/tuned_macro_f1": scores["macro_f1"]},
                        sync_dist=True)
    temperature = torch.ones_like(module.calibrator.temperature)
    if hparams.get("calibration", "temperature") != "none":
        if len(logits) >= MIN_CALIBRATION_ROWS:
            temperature = fit_temperature(logits, targets, task.multi_label).to(temperature)
        else:  # a temperature fitted on a handful of abstracts flattens every probability (all ~0.2 of 5)
            rank_zero_warn(f"calibration: {len(logits)} validation abstracts are too few to fit a temperature "
                           f"(at least {MIN_CALIBRATION_ROWS}): the probabilities are left uncalibrated")
    module.calibrator.temperature.copy_(temperature)
    module.thresholds.copy_(calibrated_thresholds(thresholds, temperature) if task.multi_label else thresholds)


class ReliabilityBins(Metric):
    """Per confidence bin (``N_BINS`` equal-width bins of [0, 1]): summed confidence, hits and count."""

    full_state_update = False

    def __init__(self, n_bins: int = N_BINS):
        super().__init__()
        self.n_bins = n_bins
        for name in ("confidence", "hits", "count"):
            self.add_state(name, torch.zeros(n_bins, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, confidence: torch.Tensor, hits: torch.Tensor) -> None:
        index = (confidence.detach().double() * self.n_bins).long().clamp(0, self.n_bins - 1)
        for name, values in (("confidence", confidence.double()), ("hits", hits.double()),
                             ("count", torch.ones_like(confidence, dtype=torch.float64))):
            getattr(self, name).index_add_(0, index, values.detach())

    def compute(self) -> torch.Tensor:
        """(3, bins): mean confidence, observed frequency (accuracy) and count per bin (NaN if empty)."""
        count = self.count.clamp_min(1)
        empty = self.count == 0
        return torch.stack([(self.confidence / count).masked_fill(empty, float("nan")),
                            (self.hits / count).masked_fill(empty, float("nan")), self.count]).float()


class CalibrationMetrics(nn.Module):
    """Test-time ECE (``N_BINS`` bins, L1, torchmetrics) and Brier score of the uncalibrated and the
    calibrated probabilities, and their reliability bins. Multi-label: over all label decisions
    (binary ECE of P(label)); single-label: ECE of the top class, Brier summed over classes."""

    def __init__(self, num_labels: int, multi_label: bool, n_bins: int = N_BINS):
        super().__init__()
        self.multi_label = multi_label
        for suffix in ("_uncalibrated", ""):
            self.add_module("ece" + suffix, BinaryCalibrationError(n_bins=n_bins, norm="l1") if multi_label
                            else MulticlassCalibrationError(num_labels, n_bins=n_bins, norm="l1"))
            self.add_module("brier" + suffix, MeanMetric())
            self.add_module("bins" + suffix, ReliabilityBins(n_bins))

    def update(self, probabilities: torch.Tensor, calibrated: torch.Tensor, labels: torch.Tensor) -> None:
        for suffix, p in (("_uncalibrated", probabilities.float()), ("", calibrated.float())):
            if self.multi_label:
                truth = labels.float()
                getattr(self, "ece" + suffix).update(p.flatten(), truth.long().flatten())
                getattr(self, "brier" + suffix).update((p - truth).pow(2).flatten())
                getattr(self, "bins" + suffix).update(p.flatten(), truth.flatten())
            else:
                truth = F.one_hot(labels.long(), p.shape[-1]).float()
                getattr(self, "ece" + suffix).update(p, labels.long())
                getattr(self, "brier" + suffix).update((p - truth).pow(2).sum(-1))
                confidence, predicted = p.max(-1)
                getattr(self, "bins" + suffix).update(confidence, (predicted == labels).float())

    def compute(self) -> dict[str, torch.Tensor]:
        """``ece``, ``ece_uncalibrated``, ``brier``, ``brier_uncalibrated`` and ``reliability``:
        (2, 3, bins), uncalibrated then calibrated (see :meth:`ReliabilityBins.compute`)."""
        return {"ece": self.ece.compute(), "ece_uncalibrated": self.ece_uncalibrated.compute(),
                "brier": self.brier.compute(), "brier_uncalibrated": self.brier_uncalibrated.compute(),
                "reliability": torch.stack([self.bins_uncalibrated.compute(), self.bins.compute()])}

    def reset(self) -> None:
        for metric in self.children():
            metric.reset()


def report_test_calibration(module) -> None:
    """At the test end: add the calibration metrics to ``module``'s test results and log the scalars."""
    results = {name: value.detach().cpu() for name, value in module.test_calibration.compute().items()}
    module.test_calibration.reset()
    module.evaluation_results("test").update(results)
    module.log_dict({f"test/{name}": value for name, value in results.items() if value.dim() == 0}, sync_dist=True)
