"""Per-class table and confusion matrix of every validation epoch and of the test, for the logger.

:class:`MetricTables` logs them to W&B; next to other loggers (CSV, TensorBoard) it writes each
validation's as CSV and PNG files in the log directory's ``reports`` folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

import pytorch_lightning as pl
import torch

from medtext.core.metrics import per_class_table
from medtext.core.trainer_loggers import file_loggers, logger_dir, wandb_logger

from .report_files import (plot_confusion_png, plot_label_confusion_png, plot_reliability_png, write_confusion_csv,
                           write_label_confusion_csv, write_rows_csv)

COLUMNS = ("class", "precision", "recall", "f1", "support")


class MetricTables(pl.Callback):
    """Logs the per-class table and the confusion matrix at every validation end (not the sanity
    check) and test end, on global rank zero only."""

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._report(trainer, pl_module, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, pl_module, "test")

    def _report(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        results = pl_module.evaluation_results(stage)
        if not trainer.is_global_zero or results is None:
            return
        names = list(pl_module.label_names)
        logger = wandb_logger(trainer)
        if logger is not None:
            log_to_wandb(logger, trainer, stage, results, names)
        if stage == "val":  # ClassificationReport writes the test files
            for other in file_loggers(trainer):
                prefix = f"val_epoch={trainer.current_epoch:03d}_step={trainer.global_step:06d}"
                write_files(logger_dir(trainer, other) / "reports", prefix, results, names)


def log_to_wandb(logger, trainer: pl.Trainer, stage: str, results: dict, names: Sequence[str]) -> None:
    """Log, under the stage's prefix (``val/`` or ``test/``): ``per_class``, a ``wandb.Table`` of class,
    precision, recall, F1 and support; ``per_class_f1``, a bar chart of F1 per class (from that table);
    ``confusion_matrix``: single-label, W&B's confusion-matrix chart built from the epoch's counts (rows:
    true class, columns: predicted class), multi-label, an image with one 2x2 matrix per label, and
    ``confusion_counts``, a table of tn, fp, fn, tp per label; test only: ``reliability``, the
    reliability diagram (uncalibrated and calibrated) as an image."""
    import wandb

    title = f"{stage} (epoch {trainer.current_epoch}, step {trainer.global_step})"
    rows = per_class_table(results, names)
    table = wandb.Table(columns=list(COLUMNS), data=[[row[c] for c in COLUMNS] for row in rows])
    payload = {f"{stage}/per_class": table,
               f"{stage}/per_class_f1": wandb.plot.bar(table, "class", "f1", title=f"F1 per class, {title}")}
    matrix = results["confusion_matrix"]
    with tempfile.TemporaryDirectory() as tmp:
        if matrix.dim() == 2:
            payload[f"{stage}/confusion_matrix"] = confusion_chart(matrix, names, f"confusion matrix, {title}")
        else:
            counts = [[name, *(int(v) for v in m.flatten().tolist())] for name, m in zip(names, matrix, strict=True)]
            payload[f"{stage}/confusion_counts"] = wandb.Table(columns=["label", "tn", "fp", "fn", "tp"],
                                                               data=counts)
            png = Path(tmp) / "confusion.png"
            plot_label_confusion_png(png, matrix, names, f"confusion per label, {title}")
            payload[f"{stage}/confusion_matrix"] = wandb.Image(str(png))
        if "reliability" in results:  # test: medtext/model/calibration.py
            png = Path(tmp) / "reliability.png"
            plot_reliability_png(png, results["reliability"], (float(results["ece_uncalibrated"]),
                                                               float(results["ece"])), f"reliability, {title}")
            payload[f"{stage}/reliability"] = wandb.Image(str(png))
        # at trainer/global_step: every epoch keeps its own table and chart; the image is copied while logging
        logger.log_metrics(payload, step=trainer.global_step)


def confusion_chart(matrix: torch.Tensor, names: Sequence[str], title: str):
    """W&B's confusion-matrix chart from a (true x predicted) count matrix."""
    import wandb

    data = [[names[i], names[j], int(matrix[i, j])] for i in range(len(names)) for j in range(len(names))]
    table = wandb.Table(columns=["Actual", "Predicted", "nPredictions"], data=data)
    return wandb.plot_table("wandb/confusion_matrix/v1", table,
                            {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"},
                            {"title": title})


def write_files(folder: Path, prefix: str, results: dict, names: Sequence[str]) -> None:
    """``<prefix>_per_class.csv``, ``<prefix>_confusion_matrix.csv`` and ``.png`` in ``folder``
    (a validation's prefix: ``val_epoch=<e>_step=<s>``)."""
    write_rows_csv(folder / f"{prefix}_per_class.csv", per_class_table(results, names))
    matrix = results["confusion_matrix"]
    title = prefix.replace("_", " ")
    if matrix.dim() == 2:
        write_confusion_csv(folder / f"{prefix}_confusion_matrix.csv", matrix, names)
        plot_confusion_png(folder / f"{prefix}_confusion_matrix.png", matrix, names, f"confusion matrix, {title}")
    else:
        write_label_confusion_csv(folder / f"{prefix}_confusion_matrix.csv", matrix, names)
        plot_label_confusion_png(folder / f"{prefix}_confusion_matrix.png", matrix, names,
                                 f"confusion per label, {title}")
