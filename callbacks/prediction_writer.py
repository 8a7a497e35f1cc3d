"""Write ``predict`` results: one row per abstract, its predicted class and every probability."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from .classification_report import gather_in_order, run_dir
from .report_files import write_predictions_csv


class PredictionWriter(BasePredictionWriter):
    """Writes a CSV in input order, atomically: the row's id (the ``id_column`` value under that
    column's name, else ``row``: the 1-based row number), ``label``, one ``prob_<class>`` column per
    class (the class name as in metric names: ``prob_digestive_system_diseases``), then any input
    columns named in ``keep_columns`` (one already taken by an output column gets ``input_``).

    Multi-label ``label`` cells list the predicted labels joined by ``;`` (decided by the
    checkpoint's per-label thresholds); they are empty when no label passes its threshold.

    Args:
        output_file: where to write; default ``predictions.csv`` in the run's log directory.
        keep_columns: input columns to copy through, e.g. ``title,journal`` (or a list).
        escape_formulas: write a cell a spreadsheet would run as a formula (``=...``, ``@...``, ``-x``)
            with a leading ``'``; ``false`` for programs that read the file.
    """

    def __init__(self, output_file: Optional[str] = None, keep_columns: Optional[Union[str, list[str]]] = None,
                 escape_formulas: bool = True):
        super().__init__(write_interval="epoch")
        self.output_file = output_file
        self.escape_formulas = escape_formulas
        self.keep_columns = [c.strip() for c in keep_columns.split(",") if c.strip()] \
            if isinstance(keep_columns, str) else list(keep_columns or [])
        self.kept: dict[str, list[str]] = {}
        self.written: Optional[Path] = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Read the kept columns before predicting, so a wrong name stops the run at once."""
        if stage == "predict" and self.keep_columns:
            self.kept = trainer.datamodule.input_columns("predict", self.keep_columns)

    def write_on_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions, batch_indices):
        """``predictions``: what ``predict_step`` returned (``index``, ``probabilities``, ``predictions``)."""
        index, probabilities, predicted = gather_in_order(
            trainer, *(torch.cat([p[key] for p in predictions]) for key in ("index", "probabilities", "predictions")))
        if not trainer.is_global_zero:
            return
        datamodule = trainer.datamodule
        self.written = Path(self.output_file) if self.output_file else run_dir(trainer) / "predictions.csv"
        skipped = datamodule.skipped_rows("predict") if hasattr(datamodule, "skipped_rows") else {}
        write_predictions_csv(self.written, getattr(datamodule, "id_column", None) or "row", datamodule.row_ids("predict"),
                              pl_module.label_names, index, predicted, probabilities, kept=self.kept,
                              escape_formulas=self.escape_formulas, skipped=skipped)
        also = f" and {len(skipped)} skipped rows (column skipped: why)" if skipped else ""
        print(f"wrote {len(index)} predictions{also} to {self.written}")
