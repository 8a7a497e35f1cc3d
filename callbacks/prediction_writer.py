"""Write ``predict`` results: one row per abstract, its predicted class and every probability."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional, Union

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from medtext.atomic_files import atomic_write_text
from medtext.metrics import metric_label

from .classification_report import run_dir


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
    """

    def __init__(self, output_file: Optional[str] = None, keep_columns: Optional[Union[str, list[str]]] = None):
        super().__init__(write_interval="epoch")
        self.output_file = output_file
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
        index, probabilities, predicted = self._gather(
            trainer, *(torch.cat([p[key] for p in predictions]) for key in ("index", "probabilities", "predictions")))
        if not trainer.is_global_zero:
            return
        order = torch.argsort(index)
        index, probabilities, predicted = index[order], probabilities[order], predicted[order]
        keep = torch.ones_like(index, dtype=torch.bool)
        keep[1:] = index[1:] != index[:-1]  # defensive: a padding sampler may repeat abstracts
        index, probabilities, predicted = index[keep], probabilities[keep], predicted[keep]
        names = pl_module.label_names
        datamodule = trainer.datamodule
        row_ids = datamodule.row_ids("predict")
        header = [getattr(datamodule, "id_column", None) or "row", "label",
                  *(f"prob_{metric_label(name)}" for name in names)]
        kept = {column: values for column, values in self.kept.items() if column != header[0]}
        header += [f"input_{column}" if column in header else column for column in kept]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for i, label, probs in zip(index.tolist(), predicted.tolist(), probabilities.tolist()):
            writer.writerow([row_ids[i], self._label_text(label, names), *(f"{p:.6f}" for p in probs),
                             *(values[i] for values in kept.values())])
        self.written = Path(self.output_file) if self.output_file else run_dir(trainer) / "predictions.csv"
        atomic_write_text(self.written, buffer.getvalue())
        print(f"wrote {len(index)} predictions to {self.written}")

    @staticmethod
    def _label_text(label, names) -> str:
        if isinstance(label, list):  # multi-label: the names of every predicted label
            return ";".join(name for name, on in zip(names, label) if on)
        return names[label]

    @staticmethod
    def _gather(trainer: pl.Trainer, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """All ranks' tensors on every rank (ranks may hold different numbers of abstracts)."""
        tensors = tuple(t.cpu() for t in tensors)
        if trainer.world_size == 1 or not torch.distributed.is_initialized():
            return tensors
        gathered: list = [None] * trainer.world_size
        torch.distributed.all_gather_object(gathered, tensors)
        return tuple(torch.cat([g[i] for g in gathered]) for i in range(len(tensors)))
