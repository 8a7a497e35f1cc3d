"""Print per-class results after fit, validate and test (medtext's one summary: the CLI turns
Lightning's metric table off); save the test report, and each test abstract's prediction, in the run's
log directory."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn
from rich.console import Console
from rich.table import Table

from medtext.core.metrics import flatten, per_class_table
from medtext.core.trainer_loggers import file_loggers, logger_dir, wandb_logger, wandb_run_dir

from .report_files import (plot_confusion_png, plot_label_confusion_png, plot_reliability_png, write_confusion_csv,
                           write_label_confusion_csv, write_metrics_json, write_predictions_csv, write_rows_csv)

SUMMARY = ("accuracy", "exact_match", "macro_f1", "micro_f1", "ece", "ece_uncalibrated", "brier", "brier_uncalibrated")


def run_dir(trainer: pl.Trainer) -> Path:
    """The folder of this run: the W&B run's own folder with a W&B logger (call on rank zero), else
    ``trainer.log_dir`` (e.g. ``runs/<name>/version_<n>``), else ``default_root_dir``."""
    logger = wandb_logger(trainer)
    if logger is not None and trainer.is_global_zero:
        return wandb_run_dir(trainer, logger)
    loggers = file_loggers(trainer)  # not trainer.log_dir: it broadcasts, and this runs on rank zero only
    return logger_dir(trainer, loggers[0]) if loggers else Path(trainer.default_root_dir)


def gather_in_order(trainer: pl.Trainer, index: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Every rank's rows (ranks may hold different numbers), sorted by ``index`` (the row in the file),
    each row once (a padding sampler may repeat abstracts); on every rank."""
    tensors = tuple(t.cpu() for t in (index, *tensors))
    if trainer.world_size > 1 and torch.distributed.is_initialized():
        gathered: list = [None] * trainer.world_size
        torch.distributed.all_gather_object(gathered, tensors)
        tensors = tuple(torch.cat([g[i] for g in gathered]) for i in range(len(tensors)))
    order = torch.argsort(tensors[0])
    tensors = tuple(t[order] for t in tensors)
    keep = torch.ones_like(tensors[0], dtype=torch.bool)
    keep[1:] = tensors[0][1:] != tensors[0][:-1]
    return tuple(t[keep] for t in tensors)


def write_test_report(out: Path, results: dict, names: list[str]) -> list[dict]:
    """``test_metrics.json``, ``test_per_class.csv``, ``test_confusion_matrix.csv`` and ``.png``, and
    ``reliability.png`` (when ``results`` has calibration bins) in ``out``; returns the per-class rows."""
    rows = per_class_table(results, names)
    write_metrics_json(out / "test_metrics.json", flatten(results, names, "test"))
    write_rows_csv(out / "test_per_class.csv", rows)
    matrix = results["confusion_matrix"]
    if matrix.dim() == 2:
        write_confusion_csv(out / "test_confusion_matrix.csv", matrix, names)
        plot_confusion_png(out / "test_confusion_matrix.png", matrix, names, "test confusion matrix")
    else:
        write_label_confusion_csv(out / "test_confusion_matrix.csv", matrix, names)
        plot_label_confusion_png(out / "test_confusion_matrix.png", matrix, names, "test confusion per label")
    if "reliability" in results:
        plot_reliability_png(out / "reliability.png", results["reliability"],
                             (float(results["ece_uncalibrated"]), float(results["ece"])), "test reliability")
    return rows


def print_table(title: str, rows: list[dict], summary: dict[str, float]) -> None:
    table = Table(title=title)
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in rows:
        table.add_row(row["class"], *(f"{row[c]:.4f}" for c in ("precision", "recall", "f1")), str(row["support"]))
    Console().print(table)
    Console().print("  ".join(f"{k} {v:.4f}" for k, v in summary.items()), soft_wrap=True)


class ClassificationReport(pl.Callback):
    """After ``fit``: the last validation epoch's per-class table. After ``validate``: the table.
    After ``test``: the table (with ECE and Brier score before and after calibration), and
    ``test_metrics.json``, ``test_per_class.csv``, ``test_confusion_matrix.csv`` and ``.png`` and
    ``reliability.png`` written atomically in the run's log directory."""

    def _summary(self, trainer: pl.Trainer, stage: str, results: dict) -> dict[str, float]:
        summary = {f"{stage}/{k}": float(results[k]) for k in SUMMARY if k in results}
        if f"{stage}/loss" in trainer.callback_metrics:
            summary[f"{stage}/loss"] = float(trainer.callback_metrics[f"{stage}/loss"])
        return summary

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validated = False  # no validation epoch yet: a resumed finished run has only the sanity check's

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        results = pl_module.evaluation_results("val")
        if trainer.is_global_zero and results is not None and getattr(self, "_validated", False):
            print_table("validation (last epoch)", per_class_table(results, pl_module.label_names),
                        self._summary(trainer, "val", results))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validated = getattr(self, "_validated", False) or not trainer.sanity_checking
        results = pl_module.evaluation_results("val")
        if trainer.is_global_zero and results is not None and trainer.state.fn == TrainerFn.VALIDATING:
            print_table("validation", per_class_table(results, pl_module.label_names),
                        self._summary(trainer, "val", results))

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._test_rows: list[dict] = []

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int,
                          dataloader_idx: int = 0) -> None:
        """Keeps what ``test_step`` returned: ``index``, ``probabilities``, ``predictions``, ``labels``."""
        if isinstance(outputs, dict) and "index" in outputs:
            self._test_rows.append({key: value.detach().cpu() for key, value in outputs.items()})

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        results = pl_module.evaluation_results("test")
        rows = getattr(self, "_test_rows", [])
        columns = ("index", "predictions", "probabilities", "labels")
        gathered = gather_in_order(trainer, *(torch.cat([r[key] for r in rows]) for key in columns)) if rows else None
        if not trainer.is_global_zero or results is None:
            return
        names = pl_module.label_names
        out = run_dir(trainer)
        table = write_test_report(out, results, names)
        if gathered is not None:
            datamodule = trainer.datamodule
            index, predicted, probabilities, labels = gathered
            write_predictions_csv(out / "test_predictions.csv", getattr(datamodule, "id_column", None) or "row",
                                  datamodule.row_ids("test"), names, index, predicted, probabilities, true=labels)
        print_table("test", table, self._summary(trainer, "test", results))
        print(f"test report written to {out}")
