"""What the baselines choose on validation: logistic regression's C from a grid, multi-label
thresholds, and the validation score they are chosen by (the fine-tuned models' selection metric:
single-label ``val/macro_f1``; multi-label ``val/tuned_micro_f1``, at per-label thresholds tuned on
validation with :func:`medtext.model.tasks.tune_thresholds`). Scores come from :mod:`medtext.core.metrics`, so
they are comparable with ``medtext fit``'s.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Optional, Sequence

import numpy as np
import torch

from medtext.core.errors import MedtextError
from medtext.model.tasks import MultiLabelTask, SingleLabelTask, tune_thresholds

from . import BaselineResult

log = logging.getLogger(__name__)
DEFAULT_THRESHOLD = 0.5
MAX_ITER = 1000  # logistic regression's solver iterations


def score_name(multi_label: bool) -> str:
    return (MultiLabelTask if multi_label else SingleLabelTask).selection_metric


def check_c_grid(c_grid: Sequence[float]) -> list[float]:
    """The grid as floats; one line if it is empty or holds a C that is not a positive number."""
    try:
        grid = [float(c) for c in c_grid or []]
    except (TypeError, ValueError):
        raise MedtextError(f"baseline.c_grid must be a list of positive numbers, not {c_grid!r}") from None
    if not grid or not all(math.isfinite(c) and c > 0 for c in grid):
        raise MedtextError(f"baseline.c_grid must be a non-empty list of positive numbers, not {c_grid!r}")
    return grid


def check_splits(**splits: Sequence) -> None:
    """One line naming the first empty split (``check_splits(train=..., val=...)``)."""
    for name, texts in splits.items():
        if len(texts) == 0:
            raise MedtextError(f"the {name} split is empty; the baselines need train, validation and test texts")


def tuned_thresholds(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-label thresholds with the best validation F1 (labels without a positive: 0.5)."""
    return tune_thresholds(torch.as_tensor(probabilities).float(), torch.as_tensor(labels),
                           DEFAULT_THRESHOLD).numpy()


def validation_score(probabilities: np.ndarray, labels: np.ndarray, multi_label: bool,
                     thresholds: Optional[np.ndarray] = None) -> float:
    """Macro-F1 of the argmax (single-label) or micro-F1 at ``thresholds`` (multi-label)."""
    num_labels = probabilities.shape[1]
    task = MultiLabelTask(num_labels) if multi_label else SingleLabelTask(num_labels)
    probabilities = torch.as_tensor(probabilities).float()
    metrics = task.metrics()
    predictions = task.predictions(probabilities, None if thresholds is None else torch.as_tensor(thresholds))
    metrics.update(predictions, torch.as_tensor(labels).long())
    return float(metrics.compute()[task.monitor])


def choose_thresholds(val_probabilities: np.ndarray, val_labels: np.ndarray,
                      multi_label: bool) -> tuple[Optional[np.ndarray], float]:
    """Thresholds (``None`` single-label) and the validation score they give."""
    thresholds = tuned_thresholds(val_probabilities, val_labels) if multi_label else None
    return thresholds, validation_score(val_probabilities, val_labels, multi_label, thresholds)


def logistic_regression(c: float, multi_label: bool, seed: int):
    """Class-balanced logistic regression; one-vs-rest (one binary model per label) if multi-label."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=MAX_ITER, random_state=seed)
    return OneVsRestClassifier(model) if multi_label else model


def check_training_labels(labels: np.ndarray, label_names: Sequence[str], multi_label: bool) -> None:
    """Single-label: one line unless two classes occur. Multi-label: a warning per label seen only as
    positive or only as negative (one-vs-rest gives it a constant probability)."""
    if not multi_label:
        if len(np.unique(labels)) < 2:
            raise MedtextError("logistic regression needs at least two classes among the training labels")
        return
    for name, positives in zip(label_names, np.asarray(labels).sum(0)):
        if positives in (0, len(labels)):
            log.warning("label %r is in %s training abstract: its probability is constant", name,
                        "no" if positives == 0 else "every")


def fit(model, features, labels: np.ndarray):
    """``model`` fitted, without scikit-learn's warning about constant labels (see above)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
        return model.fit(features, labels)


def probabilities(model, features, num_labels: int, multi_label: bool) -> np.ndarray:
    """``predict_proba`` with one column per label (a class absent from training: probability 0)."""
    predicted = model.predict_proba(features)
    if multi_label:
        return predicted
    full = np.zeros((predicted.shape[0], num_labels), dtype=predicted.dtype)
    full[:, model.classes_] = predicted
    return full


def select_logistic_regression(train_features, train_labels: np.ndarray, val_features, val_labels: np.ndarray,
                               test_features, label_names: Sequence[str], multi_label: bool,
                               c_grid: Sequence[float], seed: int) -> BaselineResult:
    """Fit one model per C of ``c_grid`` on train, keep the one with the best validation score (ties:
    the smaller C) and return its test probabilities, thresholds and ``chosen``: ``C``, its score and
    the grid's scores (``grid``: a list of ``{"C": ..., score: ...}``)."""
    grid, name, num_labels = check_c_grid(c_grid), score_name(multi_label), len(label_names)
    check_training_labels(train_labels, label_names, multi_label)
    best, scores = None, []
    for c in sorted(grid):
        model = fit(logistic_regression(c, multi_label, seed), train_features, train_labels)
        thresholds, score = choose_thresholds(probabilities(model, val_features, num_labels, multi_label),
                                              val_labels, multi_label)
        scores.append({"C": c, name: score})
        if best is None or score > best[0]:
            best = (score, c, model, thresholds)
    score, c, model, thresholds = best
    log.info("logistic regression: C=%g has the best %s %.4f", c, name, score)
    if len(grid) > 1 and c in (min(grid), max(grid)):  # the best may lie beyond the grid
        edge = "largest" if c == max(grid) else "smallest"
        warnings.warn(f"logistic regression: the best C={c:g} is the {edge} of --baseline.c_grid {sorted(grid)}; "
                      "a grid that reaches further may score higher on validation", stacklevel=2)
    return BaselineResult(probabilities=probabilities(model, test_features, num_labels, multi_label),
                          thresholds=thresholds, chosen={"C": c, name: score, "grid": scores})
