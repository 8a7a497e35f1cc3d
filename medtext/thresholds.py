"""Per-label decision thresholds for multi-label classification, tuned for F1 on validation data.

>>> probs = torch.tensor([[0.3], [0.35], [0.1], [0.2]])
>>> [round(t, 2) for t in tune_thresholds(probs, torch.tensor([[1], [1], [0], [0]]), default=0.5).tolist()]
[0.3]
"""

from __future__ import annotations

import torch

GRID = torch.linspace(0.05, 0.95, 19)


def tune_thresholds(probabilities: torch.Tensor, targets: torch.Tensor, default: float,
                    grid: torch.Tensor = GRID) -> torch.Tensor:
    """For each label the grid threshold with the best F1 (ties: the one nearest ``default``).

    Labels without a positive example keep ``default``. Shapes: (rows, labels) -> (labels,).
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
