"""What differs between classification tasks: the loss, probabilities and metrics."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection

from .metrics import single_label_metrics


class SingleLabelTask:
    """One class per abstract: softmax, cross-entropy (optional class weights, label smoothing)."""

    multi_label = False

    def __init__(self, num_labels: int, class_weights: Optional[Sequence[float]] = None,
                 label_smoothing: float = 0.0):
        if class_weights is not None and len(class_weights) != num_labels:
            raise ValueError(f"class_weights has {len(class_weights)} values for {num_labels} classes")
        self.num_labels = num_labels
        self.class_weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float)
        self.label_smoothing = label_smoothing

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        return F.cross_entropy(logits.float(), labels, weight=weight, label_smoothing=self.label_smoothing)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().softmax(-1)

    def predictions(self, probabilities: torch.Tensor) -> torch.Tensor:
        return probabilities.argmax(-1)

    def metrics(self) -> MetricCollection:
        return single_label_metrics(self.num_labels)
