"""Write ``predict`` results as they are produced: a chunk of rows at a time into ``OUT.parts/``, then one
file in input order (``medtext/core/prediction_parts.py``). An interrupted predict run again with the same
arguments continues after its last complete chunk; under DDP every rank writes its own chunks and rank
zero merges them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from medtext.core.prediction_parts import PredictionParts, file_identity
from medtext.core.prediction_table import (PredictedChunk, PredictionColumns, merge_chunks, output_format,
                                           summary_line, write_chunk)


class PredictionWriter(BasePredictionWriter):
    """Writes one row per abstract, in input order: the row's id (the ``id_column`` value under that
    column's name, else ``row``: the 1-based row number), ``label``, one ``prob_<class>`` column per class
    (the class name as in metric names: ``prob_digestive_system_diseases``), then any input columns named
    in ``keep_columns`` (one already taken by an output column gets ``input_``) and, with
    ``data.skip_invalid_rows``, ``skipped`` (why a row was left out).

    Multi-label ``label`` cells list the predicted labels joined by ``;`` (decided by the checkpoint's
    per-label thresholds); they are empty when no label passes its threshold.

    Args:
        output_file: where to write: ``.csv``, ``.jsonl`` or ``.parquet`` (default ``predictions.csv``).
        keep_columns: input columns to copy through, e.g. ``title,journal`` (or a list).
        escape_formulas: write a CSV cell a spreadsheet would run as a formula (``=...``, ``@...``, ``-x``)
            with a leading ``'``; ``false`` for programs that read the file.
        chunk_rows: rows read, predicted and written at a time (memory; what an interrupted run keeps).
        overwrite: replace an output file medtext did not write, or predict again one it already wrote.
    """

    def __init__(self, output_file: Optional[str] = None, keep_columns: Optional[Union[str, list[str]]] = None,
                 escape_formulas: bool = True, chunk_rows: int = 4096, overwrite: bool = False):
        super().__init__(write_interval="batch")
        self.output_file, self.escape_formulas = output_file, escape_formulas
        self.chunk_rows, self.overwrite = chunk_rows, overwrite
        self.keep_columns = [c.strip() for c in keep_columns.split(",") if c.strip()] \
            if isinstance(keep_columns, str) else list(keep_columns or [])
        self.model_files: list[str] = []  # the checkpoint(s) predicting, set by the CLI: part of the run's identity
        self.written: Optional[Path] = None
        self.parts: Optional[PredictionParts] = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Plan the chunks before the loader is built: resume an interrupted run's, or stop when the output
        is already this run's."""
        if stage != "predict":
            return
        datamodule = trainer.datamodule
        self.written = Path(self.output_file or "predictions.csv")
        self.format = output_format(self.written)
        source = datamodule.predict_source()
        source.check()  # a missing file or column: stop before writing anything
        self.columns = PredictionColumns(source.id_column or "row", tuple(pl_module.label_names),
                                         bool(pl_module.task.multi_label), tuple(self.keep_columns),
                                         bool(source.skip_invalid_rows))
        settings = {"input": file_identity(source.path), "models": [file_identity(f) for f in self.model_files],
                    "columns": [source.text_column, *self.columns.header], "format": self.format,
                    "chunk_rows": self.chunk_rows, "escape_formulas": self.escape_formulas,
                    "tokenization": datamodule.tokenization.settings(), "precision": str(trainer.precision)}
        self.parts = PredictionParts(self.written, settings, self.format, self.overwrite, say=_say(trainer))
        self.parts.check_output()
        if trainer.is_global_zero:
            self.parts.prepare()
        trainer.strategy.barrier("prediction parts ready")
        datamodule.plan_predict(self.chunk_rows, self.keep_columns, frozenset(self.parts.done()))
        self.pending: dict[int, dict] = {}
        self.chunks_total: Optional[int] = None
        self.predicted = self.skipped = 0
        self.summary = ""
        self.began = time.perf_counter()

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx) -> None:
        if "chunks_total" in batch:
            self.chunks_total = int(batch["chunks_total"])
            return
        chunk = self.pending.setdefault(int(batch["chunk"]), {"batches": 0, "outputs": [], "rows": None})
        chunk["batches"] += 1
        if "chunk_rows" in batch:
            chunk["rows"] = batch["chunk_rows"]
        if len(prediction.get("index", ())):
            chunk["outputs"].append({key: prediction[key].detach().float().cpu() if key == "probabilities"
                                     else prediction[key].detach().cpu() for key in ("index", "probabilities", "predictions")})
        if chunk["batches"] == int(batch["chunk_batches"]) and chunk["rows"] is not None:
            self._write_chunk(self.pending.pop(int(batch["chunk"])))

    def _write_chunk(self, chunk: dict) -> None:
        rows, outputs = chunk["rows"], chunk["outputs"]
        names = len(self.columns.label_names)
        joined = {key: torch.cat([o[key] for o in outputs]).numpy() if outputs else
                  np.zeros((0, names) if key != "index" else 0) for key in ("index", "probabilities", "predictions")}
        if not outputs and self.columns.multi_label:
            joined["predictions"] = np.zeros((0, names), dtype=np.int64)
        predicted = PredictedChunk(rows.start, rows.ids, joined["index"], joined["probabilities"],
                                   joined["predictions"].astype(np.int64), rows.kept, rows.skipped)
        self.parts.write(rows.index, lambda path: write_chunk(path, self.format, self.columns, predicted,
                                                              self.escape_formulas))
        self.predicted += len(joined["index"])
        self.skipped += len(rows.skipped)

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Every rank's chunks written: rank zero merges them into the output and says what it wrote."""
        counts = trainer.strategy.reduce(torch.tensor([self.predicted, self.skipped], dtype=torch.float64),
                                         reduce_op="sum")
        trainer.strategy.barrier("prediction parts written")
        if not trainer.is_global_zero:
            return
        predicted, skipped = (int(v) for v in counts.tolist())
        rows = self._rows_total()
        self.parts.finish(self.chunks_total, lambda parts, handle: merge_chunks(
            parts, self.format, self.columns, handle, self.escape_formulas), rows)
        self.summary = summary_line(self.written, predicted, skipped, rows, time.perf_counter() - self.began)

    def _rows_total(self) -> int:
        return (self.chunks_total - 1) * self.chunk_rows + self._last_chunk_rows() if self.chunks_total else 0

    def _last_chunk_rows(self) -> int:
        path = self.parts.chunk_path(self.chunks_total - 1)
        if self.format == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if self.format == "jsonl":
            with open(path, "rb") as handle:
                return sum(1 for _ in handle)
        import csv

        with open(path, newline="", encoding="utf-8") as handle:
            return sum(1 for _ in csv.reader(handle))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "predict" and self.parts is not None:
            self.parts.close()  # an interrupted run's chunks stay for the next one
            if self.summary:
                print(self.summary)  # after the progress bar's last line


    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self.parts is not None and trainer.state.fn == "predict":
            self.parts.close()  # the chunks written stay for the next run; a folder without any goes


def _say(trainer: pl.Trainer):
    return lambda line: print(line) if trainer.is_global_zero else None
