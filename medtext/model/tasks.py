"""What differs between classification tasks: the loss, probabilities, decisions and metrics, and
the per-label decision thresholds of multi-label tasks, tuned for F1 on validation data.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection

from medtext.core.metrics import multi_label_metrics, single_label_metrics


def _per_label(values: Optional[Sequence[float]], num_labels: int, name: str) -> Optional[torch.Tensor]:
    if values is None:
        return None
    if len(values) != num_labels:
        raise ValueError(f"{name} has {len(values)} values for {num_labels} classes")
    return torch.tensor(values, dtype=torch.float)


class SingleLabelTask:
    """One class per abstract: softmax, cross-entropy (optional class weights, label smoothing)."""

    multi_label = False
    monitor = "macro_f1"
    selection_metric = "val/macro_f1"  # the best checkpoint and early stopping follow it

    def __init__(self, num_labels: int, class_weights: Optional[Sequence[float]] = None,
                 label_smoothing: float = 0.0):
        self.num_labels = num_labels
        self.class_weights = _per_label(class_weights, num_labels, "class_weights")
        self.label_smoothing = label_smoothing

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        return F.cross_entropy(logits.float(), labels, weight=weight, label_smoothing=self.label_smoothing)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().softmax(-1)

    def predictions(self, probabilities: torch.Tensor, thresholds: Optional[torch.Tensor] = None) -> torch.Tensor:
        return probabilities.argmax(-1)

    def metrics(self) -> MetricCollection:
        return single_label_metrics(self.num_labels)


class MultiLabelTask:
    """Any number of labels per abstract: sigmoid, binary cross-entropy (optional ``pos_weight``),
    and per-label decision thresholds."""

    multi_label = True
    monitor = "micro_f1"
    selection_metric = "val/tuned_micro_f1"  # micro-F1 at the per-label thresholds tuned on validation

    def __init__(self, num_labels: int, pos_weight: Optional[Sequence[float]] = None):
        self.num_labels = num_labels
        self.pos_weight = _per_label(pos_weight, num_labels, "pos_weight")

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        pos_weight = None if self.pos_weight is None else self.pos_weight.to(logits.device)
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float(), pos_weight=pos_weight)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().sigmoid()

    def predictions(self, probabilities: torch.Tensor, thresholds: Optional[torch.Tensor] = None) -> torch.Tensor:
        thresholds = 0.5 if thresholds is None else thresholds.to(probabilities.device)
        return (probabilities >= thresholds).long()

    def metrics(self) -> MetricCollection:
        return multi_label_metrics(self.num_labels)


GRID = torch.linspace(0.05, 0.95, 19)


def tune_thresholds(probabilities: torch.Tensor, targets: torch.Tensor, default: float,
                    grid: torch.Tensor = GRID) -> torch.Tensor:
    """For each label the grid threshold with the best F1 (ties: the one nearest ``default``).

    Labels without a positive example keep ``default``. Shapes: (rows, labels) -> (labels,).

    >>> probs = torch.tensor([[0.3], [0.35], [0.1], [0.2]])
    >>> [round(t, 2) for t in tune_thresholds(probs, torch.tensor([[1], [1], [0], [0]]), default=0.5).tolist()]
    [0.3]
    """
    probabilities, targets = probabilities.float(), targets.bool()
    grid = grid.to(probabilities.device)
    predicted = probabilities.unsqueeze(-1) >= grid  # rows, labels, grid
    positive = targets.unsqueeze(-1)
    tp = (predicted & positive).sum(0).float()
    fp = (predicted & ~positive).sum(0).float()
    fn = (~predicted & positive).sum(0).float()
    f1 = 2 * tp / (2 * tp + fp + fn).clamp_min(1)
    # prefer the best F1, then the threshold closest to the default
    score = f1 - 1e-6 * (grid - default).abs()
    best = grid[score.argmax(-1)]
    has_positive = targets.any(0)
    return torch.where(has_positive, best, torch.full_like(best, default))
