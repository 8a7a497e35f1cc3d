"""A baseline's test probabilities served as a LightningModule, so that ``trainer.test`` reports them
exactly as it reports a fine-tuned checkpoint: the same metrics, files (``test_metrics.json``, per-class
CSV, confusion matrix, ``test_predictions.csv``) and W&B tables, from the same callbacks."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torchmetrics import MeanMetric

from medtext.model.calibration import CalibrationMetrics, report_test_calibration
from medtext.core.metrics import log_epoch_results
from medtext.model.tasks import MultiLabelTask, SingleLabelTask


class StoredScores(pl.LightningModule):
    """Answers each test batch with the stored probabilities of its rows (``batch["index"]``: the row in
    the test file); multi-label decisions at ``thresholds``. The probabilities are the method's own, so
    the calibration metrics before and after are the same numbers."""

    def __init__(self, label_names: Sequence[str], multi_label: bool, probabilities: np.ndarray,
                 thresholds: Optional[np.ndarray] = None):
        super().__init__()
        self.label_names = list(label_names)
        num_labels = len(self.label_names)
        if probabilities.ndim != 2 or probabilities.shape[1] != num_labels:
            raise ValueError(f"probabilities of shape {probabilities.shape} for {num_labels} classes")
        self.task = MultiLabelTask(num_labels) if multi_label else SingleLabelTask(num_labels)
        self.register_buffer("probabilities", torch.as_tensor(probabilities, dtype=torch.float))
        self.register_buffer("thresholds", torch.full((num_labels,), 0.5) if thresholds is None
                             else torch.as_tensor(thresholds, dtype=torch.float))
        self.test_metrics, self.test_loss = self.task.metrics(), MeanMetric()
        self.test_calibration = CalibrationMetrics(num_labels, multi_label)
        self._results: dict[str, dict] = {}

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        probabilities, labels = self.probabilities[batch["index"]], batch["labels"]
        logits = torch.logit(probabilities, eps=1e-6) if self.task.multi_label \
            else probabilities.clamp_min(1e-12).log()
        self.test_loss.update(self.task.loss(logits, labels), weight=len(labels))
        self.test_calibration.update(probabilities, probabilities, labels)
        predicted = self.task.predictions(probabilities, self.thresholds)
        if self.task.multi_label:
            self.test_metrics.update(predicted, labels.long())
        else:
            self.test_metrics.update(probabilities, labels)
        return {"index": batch["index"], "probabilities": probabilities, "predictions": predicted, "labels": labels}

    def on_test_epoch_end(self) -> None:
        self._results["test"] = log_epoch_results(self, "test", self.test_metrics, self.test_loss)
        report_test_calibration(self)

    def evaluation_results(self, stage: str) -> Optional[dict[str, torch.Tensor]]:
        return self._results.get(stage)

    def configure_optimizers(self):
        return None
