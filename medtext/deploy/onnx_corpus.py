"""``python -m medtext predict --model_dir DIR --data.predict_file F``: an ONNX export predicts a corpus, a
chunk of rows at a time, in this process or in ``--onnx.workers`` processes (each with its own session),
into the same predictions file as ``predict --ckpt_path`` writes. Memory holds a few chunks; an interrupted
run continues where it stopped (``medtext/core/prediction_parts.py``).

    python -m medtext predict --model_dir exported/ --data.predict_file new.csv --predictions.output_file out.csv
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import time
from pathlib import Path
from typing import Optional

import numpy as np

from medtext.core.errors import MedtextError
from medtext.core.prediction_parts import PredictionParts, file_identity
from medtext.core.prediction_table import (PredictedChunk, PredictionColumns, merge_chunks, output_format,
                                           summary_line, write_chunk)


def build_parser():
    from jsonargparse import ActionConfigFile

    from medtext.core.argument_errors import CommandParser

    parser = CommandParser(prog="medtext predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action=ActionConfigFile, help="these options from a YAML file")
    parser.add_argument("--model_dir", type=str, required=True, help="a folder written by medtext export --export.format onnx")
    parser.add_argument("--data.predict_file", type=str, required=True, help="abstracts to label (CSV, TSV, JSON Lines, Parquet)")
    parser.add_argument("--data.text_column", type=Optional[str], default=None, help="default: the checkpoint's")
    parser.add_argument("--data.id_column", type=Optional[str], default=None, help="default: the checkpoint's, else row numbers")
    parser.add_argument("--data.file_format", type=Optional[str], default=None, help="csv, tsv, jsonl or parquet")
    parser.add_argument("--data.batch_size", type=int, default=16, help="abstracts (windows) per batch")
    parser.add_argument("--data.skip_invalid_rows", type=bool, default=False,
                        help="leave out rows that cannot be classified (an empty text) and write them with a reason")
    parser.add_argument("--predictions.output_file", type=str, default="predictions.csv",
                        help="where to write: .csv, .jsonl or .parquet")
    parser.add_argument("--predictions.keep_columns", type=Optional[str], default=None, help="input columns to copy, a,b")
    parser.add_argument("--predictions.escape_formulas", type=bool, default=True,
                        help="write CSV cells a spreadsheet would run (=..., @..., -x) with a leading '")
    parser.add_argument("--predictions.chunk_rows", type=int, default=4096,
                        help="rows read, predicted and written at a time (what an interrupted run keeps)")
    parser.add_argument("--predictions.overwrite", type=bool, default=False,
                        help="replace an output medtext did not write, or predict again one it wrote")
    parser.add_argument("--onnx.int8", type=bool, default=False, help="run the int8 graph (export --export.quantize int8)")
    parser.add_argument("--onnx.threads", type=Optional[int], default=None, help="ONNX Runtime intra-op threads per process")
    parser.add_argument("--onnx.workers", type=int, default=1,
                        help="processes, each predicting whole chunks (a many-core CPU: workers x threads = cores)")
    return parser


@dataclasses.dataclass(frozen=True)
class ChunkJob:
    """What a worker needs to predict chunks and write them (picklable)."""

    model_dir: str
    int8: bool
    threads: Optional[int]
    batch_size: int
    columns: PredictionColumns
    fmt: str
    escape_formulas: bool
    parts: PredictionParts


_worker_model = None  # the ExportedModel of a worker process


def _load(job: ChunkJob):
    global _worker_model
    if _worker_model is None:
        from medtext.deploy.onnx_predict import ExportedModel

        _worker_model = ExportedModel(job.model_dir, job.int8, job.threads)
    return _worker_model


def predict_chunk(job: ChunkJob, rows, texts: list[str], file_rows: np.ndarray, path: str) -> tuple[int, int]:
    """Predict one chunk and write its file; (predicted, skipped) rows."""
    model = _load(job)
    logits = model.logits(texts, job.batch_size) if texts else np.zeros((0, len(job.columns.label_names)), np.float32)
    if not np.isfinite(logits).all():  # a graph with non-finite weights: no nan probabilities, no class 0
        row = int(file_rows[np.flatnonzero(~np.isfinite(logits).all(axis=-1))[0]])
        raise MedtextError(f"{job.model_dir}: the model's outputs are not finite (first at {path} row {row + 1}); "
                           "its weights are broken: export the checkpoint again")
    probabilities, predictions = model.decide(logits)
    chunk = PredictedChunk(rows.start, rows.ids, file_rows, probabilities, np.asarray(predictions), rows.kept, rows.skipped)
    job.parts.write(rows.index, lambda out: write_chunk(out, job.fmt, job.columns, chunk, job.escape_formulas))
    return len(texts), len(rows.skipped)


def run_chunks(job: ChunkJob, source, done: set[int], workers: int, model) -> tuple[int, int, int, int]:
    """Predict every chunk not ``done``: here (one worker) or in ``workers`` processes, at most two chunks
    each in flight (memory stays bounded). (chunks, rows, predicted, skipped) of the file and this run."""
    global _worker_model
    chunks = rows = predicted = skipped = 0
    pool = None
    if workers > 1:  # spawned: a forked ONNX Runtime session's threads could deadlock
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    else:
        _worker_model = model
    pending: set = set()
    try:
        for chunk in source.chunks():
            chunks, rows = chunk.index + 1, chunk.start + chunk.rows
            if chunk.index in done:
                continue
            work = (job, *source.rows_of(chunk), source.path)
            if pool is None:
                counts = [predict_chunk(*work)]
            else:
                pending.add(pool.submit(predict_chunk, *work))
                finished, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED) \
                    if len(pending) >= 2 * workers else (set(), pending)
                counts = [f.result() for f in finished]
            predicted, skipped = predicted + sum(c[0] for c in counts), skipped + sum(c[1] for c in counts)
        for future in concurrent.futures.as_completed(pending):
            counts = future.result()
            predicted, skipped = predicted + counts[0], skipped + counts[1]
    finally:
        _worker_model = None
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return chunks, rows, predicted, skipped


def main(args: Optional[list[str]] = None) -> None:
    """``medtext predict --model_dir DIR --data.predict_file F [--predictions.output_file OUT] [--onnx.workers N]``."""
    from data_modules.corpus import CorpusSource

    from medtext.deploy.onnx_predict import ExportedModel

    options = build_parser().parse_args(args)
    for name in ("data.batch_size", "predictions.chunk_rows", "onnx.workers"):
        if options[name] < 1:
            raise MedtextError(f"{name} must be >= 1, not {options[name]}")
    model = ExportedModel(options.model_dir, options.onnx.int8, options.onnx.threads)
    defaults = model.settings["data"]
    keep = [c.strip() for c in (options.predictions.keep_columns or "").split(",") if c.strip()]
    source = CorpusSource(options.data.predict_file, options.data.text_column or defaults["text_column"],
                          options.data.id_column or defaults.get("id_column"), tuple(keep),
                          options.data.file_format or defaults.get("file_format"), options.predictions.chunk_rows,
                          options.data.batch_size, options.data.skip_invalid_rows)
    out = Path(options.predictions.output_file)
    fmt = output_format(out)
    columns = PredictionColumns(source.id_column or "row", tuple(model.label_names), bool(model.settings["multi_label"]),
                                tuple(keep), source.skip_invalid_rows)
    source.check()
    settings = {"input": file_identity(source.path),
                "models": [file_identity(Path(options.model_dir) / "medtext_export.json")], "int8": options.onnx.int8,
                "columns": [source.text_column, *columns.header], "format": fmt, "chunk_rows": source.chunk_rows,
                "escape_formulas": options.predictions.escape_formulas}
    parts = PredictionParts(out, settings, fmt, options.predictions.overwrite)
    parts.prepare()
    job = ChunkJob(options.model_dir, options.onnx.int8, options.onnx.threads, options.data.batch_size, columns, fmt,
                   options.predictions.escape_formulas, parts)
    began = time.perf_counter()
    try:
        chunks, rows, predicted, skipped = run_chunks(job, source, parts.done(), options.onnx.workers, model)
        parts.finish(chunks, lambda files, handle: merge_chunks(files, fmt, columns, handle,
                                                                 options.predictions.escape_formulas), rows)
    finally:
        parts.close()
    print(summary_line(out, predicted, skipped, rows, time.perf_counter() - began))
