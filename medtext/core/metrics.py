"""Epoch-level classification metrics from torchmetrics, named ``stage/metric``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Sequence

import torch

if TYPE_CHECKING:  # torchmetrics is imported by the builders: ONNX Runtime's predict names columns without it
    from torchmetrics import MetricCollection

PER_CLASS = ("f1", "precision", "recall")
NOT_SCALARS = ("confusion_matrix", "reliability")  # matrices (reliability: medtext/model/calibration.py's bins)


def single_label_metrics(num_labels: int) -> MetricCollection:
    """Accuracy, macro/micro F1, per-class F1/precision/recall and the confusion matrix."""
    from torchmetrics import MetricCollection
    from torchmetrics.classification import (MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score,
                                             MulticlassPrecision, MulticlassRecall)

    return MetricCollection({
        "accuracy": MulticlassAccuracy(num_labels, average="micro"),
        "macro_f1": MulticlassF1Score(num_labels, average="macro"),
        "micro_f1": MulticlassF1Score(num_labels, average="micro"),
        "f1": MulticlassF1Score(num_labels, average=None),
        "precision": MulticlassPrecision(num_labels, average=None),
        "recall": MulticlassRecall(num_labels, average=None),
        "confusion_matrix": MulticlassConfusionMatrix(num_labels),
    })


def multi_label_metrics(num_labels: int) -> MetricCollection:
    """Exact-match accuracy, macro/micro F1, per-label F1/precision/recall, a 2x2 matrix per label.

    Update with 0/1 predictions (already thresholded) and 0/1 targets.
    """
    from torchmetrics import MetricCollection
    from torchmetrics.classification import (MultilabelConfusionMatrix, MultilabelExactMatch, MultilabelF1Score,
                                             MultilabelPrecision, MultilabelRecall)

    return MetricCollection({
        "exact_match": MultilabelExactMatch(num_labels),
        "macro_f1": MultilabelF1Score(num_labels, average="macro"),
        "micro_f1": MultilabelF1Score(num_labels, average="micro"),
        "f1": MultilabelF1Score(num_labels, average=None),
        "precision": MultilabelPrecision(num_labels, average=None),
        "recall": MultilabelRecall(num_labels, average=None),
        "confusion_matrix": MultilabelConfusionMatrix(num_labels),
    })


def metric_label(name: str) -> str:
    """A class name usable in a metric key: ``digestive system diseases`` -> ``digestive_system_diseases``."""
    return re.sub(r"[^0-9A-Za-z.+-]+", "_", name.strip()).strip("_") or "label"


def flatten(results: dict[str, torch.Tensor], label_names: Sequence[str], stage: str) -> dict[str, float]:
    """Scalar metrics as ``stage/name`` and per-class ones as ``stage/f1/<class>``; no matrices.

    >>> metrics = single_label_metrics(3)
    >>> metrics.update(torch.tensor([[.9, .05, .05], [.1, .8, .1]]), torch.tensor([0, 2]))
    >>> sorted(flatten(metrics.compute(), ["a", "b", "c"], "val"))[:3]
    ['val/accuracy', 'val/f1/a', 'val/f1/b']
    """
    flat: dict[str, float] = {}
    for name, value in results.items():
        if name in NOT_SCALARS:
            continue
        if name in PER_CLASS:
            for label, v in zip(label_names, value.tolist()):
                flat[f"{stage}/{name}/{metric_label(label)}"] = float(v)
        else:
            flat[f"{stage}/{name}"] = float(value)
    return flat


def per_class_table(results: dict[str, torch.Tensor], label_names: Sequence[str]) -> list[dict]:
    """Rows of class, precision, recall, F1 and support (true count from the confusion matrix)."""
    support = results["confusion_matrix"].sum(-1) if results["confusion_matrix"].dim() == 2 else None
    rows = []
    for i, label in enumerate(label_names):
        rows.append({"class": label, "precision": float(results["precision"][i]),
                     "recall": float(results["recall"][i]), "f1": float(results["f1"][i]),
                     "support": int(support[i]) if support is not None
                     else int(results["confusion_matrix"][i, 1].sum())})
    return rows


def log_epoch_results(module, stage: str, metrics: MetricCollection, loss) -> dict[str, torch.Tensor]:
    """At an evaluation epoch's end of ``module`` (``label_names``, ``task``): compute and reset ``metrics``
    and the ``loss`` mean, log them as ``stage/...`` (the task's headline on the progress bar) and return
    the computed metrics (on the CPU)."""
    results = {name: value.detach().cpu() for name, value in metrics.compute().items()}
    metrics.reset()
    flat = flatten(results, module.label_names, stage)
    headline = f"{stage}/{module.task.monitor}"
    # the values are already global (torchmetrics syncs); sync_dist only silences Lightning's warning
    module.log(headline, flat.pop(headline), prog_bar=True, sync_dist=True)
    module.log_dict(flat, sync_dist=True)
    module.log(f"{stage}/loss", loss.compute(), sync_dist=True)
    loss.reset()
    return results
