"""Read a CSV, TSV, JSON Lines or Parquet table a chunk of rows at a time, for corpus-scale ``predict``:
memory holds one chunk, whatever the file's length. Cells are strings as :func:`read_table` gives them,
and bad input gets the same one-line errors (rows numbered from 1, header excluded).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Iterator, Optional, Sequence

from medtext.core.errors import DataError

from .readers import _cell_to_str, _check_unique, detect_format

LONGEST_FIELD = 2**31 - 1  # an abstract may be longer than the csv module's 128 KiB default (pandas has no limit)


@dataclasses.dataclass
class TableChunk:
    """Rows ``start`` to ``start + rows`` (0-based) of a table: the asked-for ``columns`` (name: cells)."""

    index: int
    start: int
    columns: dict[str, list[str]]

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def iter_table_chunks(path: str | Path, columns: Sequence[str], chunk_rows: int,
                      file_format: Optional[str] = None, roles: Optional[dict[str, str]] = None) -> Iterator[TableChunk]:
    """Chunks of ``chunk_rows`` rows holding ``columns``; a column the file lacks is an error naming its
    ``roles`` entry (``text``, ``id``, ``kept``). The last chunk may be shorter; a file without data rows
    is an error, as with :func:`read_table`."""
    path = Path(path)
    fmt = detect_format(path, file_format)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    wanted = list(dict.fromkeys(columns))
    rows = {"parquet": _parquet_rows, "jsonl": _json_rows}.get(fmt, _delimited_rows)(path, fmt, wanted, roles or {})
    index, start, buffer = 0, 0, {name: [] for name in wanted}
    for count, values in enumerate(rows, start=1):
        for name, value in zip(wanted, values):
            buffer[name].append(value)
        if count - start == chunk_rows:
            yield TableChunk(index, start, buffer)
            index, start, buffer = index + 1, count, {name: [] for name in wanted}
    if start == 0 and not any(buffer.values()):
        raise DataError(f"{path}: no data rows (header only)")
    if any(buffer.values()):
        yield TableChunk(index, start, buffer)


def _missing(path: Path, name: str, roles: dict[str, str], present: Sequence[str]) -> DataError:
    return DataError(f"{path}: {roles.get(name, 'text')} column {name!r} not found; the columns are {list(present)}")


def _utf8_error(path: Path) -> DataError:
    """The line of the first byte that is not UTF-8 (found again from the start: only on the error path)."""
    decoder, line = codecs.getincrementaldecoder("utf-8")(), 1
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as err:
                line += block.count(b"\n", 0, err.start)
                return DataError(f"{path}: line {line}: invalid UTF-8 byte "
                                 f"0x{block[err.start]:02x}; save the file as UTF-8")
            line += block.count(b"\n")
    return DataError(f"{path}: invalid UTF-8 at its end; save the file as UTF-8")


def _delimited_rows(path: Path, fmt: str, wanted: list[str], roles: dict[str, str]) -> Iterator[list[str]]:
    """CSV/TSV rows as :func:`read_table` reads them: blank lines inside the data are rows (empty texts),
    blank lines at the end are not; a row with more fields than the header is an error."""
    limit = csv.field_size_limit(LONGEST_FIELD)  # the module's global: put back when the file is read
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            header_line = handle.readline()
            sep = "\t" if fmt == "tsv" or ("\t" in header_line and "," not in header_line) else ","
            handle.seek(0)  # the decoder starts again: a BOM is dropped again
            reader = csv.reader(handle, delimiter=sep)
            try:
                names = next(reader, [])
            except csv.Error as err:
                raise DataError(f"{path}: header: cannot parse as {fmt}: {err}") from None
            _check_unique(path, names, "header: ")
            positions = _positions(path, names, wanted, roles)
            held, row = [], 0
            try:
                for fields in reader:
                    if len(fields) <= 1 and not (fields[0] if fields else "").strip(" \t"):
                        held.append(fields)  # a blank line: a row only if data follows
                        continue
                    for blank in [*held, fields]:
                        row += 1
                        if len(blank) > len(names):
                            raise DataError(f"{path}: row {row}: expected {len(names)} fields, found {len(blank)}")
                        yield [blank[p] if p < len(blank) else "" for p in positions]
                    held = []
            except csv.Error as err:
                raise DataError(f"{path}: row {row + 1}: cannot parse as {fmt}: {err}") from None
    except UnicodeDecodeError:
        raise _utf8_error(path) from None
    finally:
        csv.field_size_limit(limit)


def _positions(path: Path, names: list[str], wanted: list[str], roles: dict[str, str]) -> list[int]:
    positions = []
    for name in wanted:
        if name not in names:
            raise _missing(path, name, roles, names)
        if names.count(name) > 1:  # only possible for the empty name
            raise DataError(f"{path}: {roles.get(name, 'text')} column {name!r} appears more than once in the header")
        positions.append(names.index(name))
    return positions


def _json_rows(path: Path, fmt: str, wanted: list[str], roles: dict[str, str]) -> Iterator[list[str]]:
    """JSON Lines objects (blank lines skipped); a key repeated in a row is an error; a key missing from
    the first row is a missing column, from a later row an empty cell."""
    row = 0

    def no_repeats(pairs):
        _check_unique(path, [key for key, _ in pairs], f"row {row}: ", "key")
        return dict(pairs)

    with open(path, "rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            row += 1
            try:
                text = line.decode("utf-8-sig" if row == 1 else "utf-8")
                value = json.loads(text, object_pairs_hook=no_repeats)
            except UnicodeDecodeError:
                raise _utf8_error(path) from None
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: row {row}: cannot parse as jsonl: {err.msg} (column {err.colno})") from None
            if not isinstance(value, dict):
                raise DataError(f"{path}: row {row}: cannot parse as jsonl: expected an object")
            if row == 1:
                for name in wanted:
                    if name not in value:
                        raise _missing(path, name, roles, list(value))
            yield [_cell_to_str(value.get(name)) for name in wanted]


def _parquet_rows(path: Path, fmt: str, wanted: list[str], roles: dict[str, str]) -> Iterator[list[str]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f'{path}: reading parquet needs pyarrow: pip install pyarrow (or pip install -e ".[parquet]")'
                        ) from None
    try:
        table = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001 - pyarrow's errors differ by version; the message says it
        raise DataError(f"{path}: cannot parse as parquet: {' '.join(str(err).split())}") from None
    names = table.schema_arrow.names
    _check_unique(path, names, "")
    _positions(path, names, wanted, roles)
    for batch in table.iter_batches(batch_size=1 << 14, columns=wanted):
        cells = [[_cell_to_str(v) for v in batch.column(name).to_pylist()] for name in wanted]
        yield from map(list, zip(*cells))


def read_header(path: str | Path, file_format: Optional[str] = None) -> list[str]:
    """The column names (for messages); the first object's keys for JSON Lines."""
    path = Path(path)
    fmt = detect_format(path, file_format)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_schema(path).names
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        first = handle.readline()
    if fmt == "jsonl":
        return list(json.loads(first or "{}"))
    sep = "\t" if fmt == "tsv" or ("\t" in first and "," not in first) else ","
    return next(csv.reader(io.StringIO(first), delimiter=sep), [])
