"""The rows of a predictions file, and how a chunk of them is written as CSV, JSON Lines or Parquet.

One row per abstract, in file order: its id (the ``id_column`` value under that column's name, else
``row``), ``label`` (the class name; multi-label: the names joined by ``;``), ``prob_<class>`` per
class, the kept input columns (one whose name an output column has gets ``input_``) and, with
``skip_invalid_rows``, ``skipped`` (why a row was left out; its label and probabilities are empty).
The format comes from the output file's suffix; the columns are the same in all three.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .errors import MedtextError
from .metrics import metric_label
from .spreadsheet_cells import safe_row

OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}


def output_format(path: str | Path) -> str:
    """``csv``, ``jsonl`` or ``parquet`` from the output file's suffix; another suffix is an error."""
    fmt = OUTPUT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise MedtextError(f"{path}: cannot tell the predictions format from the suffix {Path(path).suffix!r}; "
                           f"use one of {', '.join(OUTPUT_FORMATS)}")
    return fmt


@dataclasses.dataclass(frozen=True)
class PredictionColumns:
    """The header of a predictions file."""

    id_header: str
    label_names: tuple[str, ...]
    multi_label: bool
    kept: tuple[str, ...] = ()
    with_skipped: bool = False

    @property
    def probability_headers(self) -> list[str]:
        return [f"prob_{metric_label(name)}" for name in self.label_names]

    @property
    def kept_headers(self) -> list[str]:
        taken = [self.id_header, "label", *self.probability_headers]
        return [f"input_{column}" if column in taken else column for column in self.kept if column != self.id_header]

    @property
    def header(self) -> list[str]:
        return [self.id_header, "label", *self.probability_headers, *self.kept_headers,
                *(["skipped"] if self.with_skipped else [])]

    def label_texts(self, predictions: np.ndarray) -> list[str]:
        """Class ids (or multi-label 0/1 rows) as names."""
        names = self.label_names
        if self.multi_label:
            return [";".join(name for name, on in zip(names, row) if on) for row in predictions.tolist()]
        return [names[i] for i in predictions.tolist()]


@dataclasses.dataclass
class PredictedChunk:
    """A chunk's rows in file order: ``ids``; ``rows`` (0-based in the file) with ``probabilities``
    (rows, classes) and ``predictions`` for the predicted ones; ``kept`` columns; ``skipped`` rows."""

    start: int
    ids: list
    rows: np.ndarray
    probabilities: np.ndarray
    predictions: np.ndarray
    kept: dict[str, list[str]]
    skipped: dict[int, str]

    def cells(self, columns: PredictionColumns) -> list[list]:
        """Row by row: id, label, probabilities (floats; ``None`` for a skipped row), kept, skipped."""
        order = np.argsort(self.rows, kind="stable")
        at = {int(row): position for position, row in enumerate(self.rows[order])}
        labels = columns.label_texts(self.predictions[order])
        probabilities = self.probabilities[order].astype(np.float64).round(6).tolist()
        empty = [None] * len(columns.label_names)
        kept = [self.kept[c] for c in columns.kept if c != columns.id_header]
        out = []
        for i, row_id in enumerate(self.ids):
            row = self.start + i
            position = at.get(row)
            predicted = [labels[position], *probabilities[position]] if position is not None else ["", *empty]
            out.append([row_id, *predicted, *(values[i] for values in kept),
                        *([self.skipped.get(row, "")] if columns.with_skipped else [])])
        return out


def write_chunk(path: Path, fmt: str, columns: PredictionColumns, chunk: PredictedChunk,
                escape_formulas: bool = True) -> None:
    """One chunk's rows, without a header for CSV (the merge writes it once); ``path`` is written whole
    or not at all by the caller (``atomic_open``)."""
    rows = chunk.cells(columns)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        n = len(columns.label_names)
        for row in rows:
            row[2:2 + n] = ["" if p is None else f"{p:.6f}" for p in row[2:2 + n]]
            writer.writerow(safe_row(row, escape_formulas))
        path.write_text(buffer.getvalue(), encoding="utf-8")
    elif fmt == "jsonl":
        header = columns.header
        path.write_text("".join(json.dumps(dict(zip(header, row)), ensure_ascii=False) + "\n" for row in rows),
                        encoding="utf-8")
    else:
        _parquet_table(columns, rows, path)


def csv_header(columns: PredictionColumns, escape_formulas: bool = True) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(safe_row(columns.header, escape_formulas))
    return buffer.getvalue()


def _parquet_schema(columns: PredictionColumns):
    import pyarrow as pa

    n = len(columns.label_names)
    fields = [pa.field(columns.id_header, pa.string()), pa.field("label", pa.string()),
              *(pa.field(h, pa.float32()) for h in columns.probability_headers),
              *(pa.field(h, pa.string()) for h in columns.kept_headers),
              *([pa.field("skipped", pa.string())] if columns.with_skipped else [])]
    assert len(fields) == len(columns.header) and n == len(columns.probability_headers)
    return pa.schema(fields)


def _parquet_table(columns: PredictionColumns, rows: list[list], path: Optional[Path] = None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema(columns)
    values = list(zip(*rows)) if rows else [[] for _ in schema]
    arrays = [pa.array([None if v is None else (str(v) if field.type == pa.string() else v) for v in column],
                       type=field.type) for field, column in zip(schema, values)]
    table = pa.Table.from_arrays(arrays, schema=schema)
    if path is not None:
        pq.write_table(table, path)
    return table


def merge_chunks(parts: Sequence[Path], fmt: str, columns: PredictionColumns, handle, escape_formulas: bool = True) -> None:
    """Write the chunk files ``parts`` (in order) as one predictions file into the open binary ``handle``,
    a chunk at a time (memory holds one chunk)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(handle, _parquet_schema(columns)) as writer:
            for part in parts:
                writer.write_table(pq.read_table(part))
        return
    if fmt == "csv":
        handle.write(csv_header(columns, escape_formulas).encode("utf-8"))
    for part in parts:
        with open(part, "rb") as source:
            while block := source.read(1 << 20):
                handle.write(block)


def summary_line(output: str | Path, predicted: int, skipped: int, rows: int, seconds: float) -> str:
    """What a finished predict says: rows predicted and skipped by this run, and those an interrupted run wrote."""
    also = f" and {skipped} skipped rows (column skipped: why)" if skipped else ""
    earlier = rows - predicted - skipped
    before = f"; {rows} rows in all, {earlier} from the interrupted run's chunks" if earlier > 0 else ""
    return f"wrote {predicted} predictions{also} to {output} ({predicted / max(seconds, 1e-9):.1f} abstracts/s){before}"
