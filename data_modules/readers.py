"""Read CSV, TSV, JSON Lines and Parquet tables of abstracts, and the labels files that name their
classes, with one-line errors on bad input (rows numbered from 1, header excluded).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from medtext.core.errors import DataError

from .invalid_rows import invalid_rows_message, invalid_texts

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
           ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def detect_format(path: Path, file_format: str | None = None) -> str:
    """``csv``, ``tsv``, ``jsonl`` or ``parquet``; CSV files whose header holds tabs are TSV."""
    if file_format:
        if file_format not in set(FORMATS.values()):
            raise DataError(f"{path}: unknown file_format {file_format!r}; use one of csv, tsv, jsonl, parquet")
        return file_format
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
                        "set file_format to csv, tsv, jsonl or parquet")
    return fmt


def read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    return data


def decode_utf8(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(f"{path}: line {line}: invalid UTF-8 byte 0x{data[err.start]:02x}; "
                        "save the file as UTF-8") from None


def _cell_to_str(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def read_table(path: str | Path, file_format: str | None = None) -> pd.DataFrame:
    """Read a data file into a DataFrame of strings: a label ``1`` and a label ``"1"`` are the same
    label, and a missing value is ``""``, never a float NaN.

    A column name given twice in the header (a JSON key twice in a row) is an error; so is a row with
    more fields than the header. Several columns with an empty name are allowed until one is used.

    >>> table = read_table("../shared/data/medical_abstracts/medical_tc_labels.csv")  # doctest: +SKIP
    """
    path = Path(path)
    fmt = detect_format(path, file_format)
    data = read_bytes(path)
    try:
        if fmt == "parquet":
            frame = _read_parquet(path, data)
        else:
            text = decode_utf8(path, data)
            if fmt == "jsonl":
                _check_json_lines(path, text)
                frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
            else:
                frame = _read_delimited(path, text, fmt)
    except DataError:
        raise
    except ImportError as err:
        raise DataError(f"{path}: reading {fmt} needs an extra package: {_one_line(err)}") from None
    except (ValueError, pd.errors.ParserError) as err:
        raise DataError(f"{path}: cannot parse as {fmt}: {_one_line(err)}") from None
    if len(frame) == 0:
        raise DataError(f"{path}: no data rows (header only)")
    # an empty header field (HoC's text column) is named "" rather than pandas' "Unnamed: 0"
    frame.columns = ["" if re.fullmatch(r"Unnamed: \d+", str(c)) else str(c) for c in frame.columns]
    return frame.map(_cell_to_str) if fmt != "csv" and fmt != "tsv" else frame


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _check_unique(path: Path, names: list[str], where: str, noun: str = "column") -> None:
    """Fail on the first non-empty name that occurs twice (pandas would silently rename it ``x.1``)."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen and name != "":
            raise DataError(f"{path}: {where}{noun} {name!r} appears twice "
                            f"({noun}s {seen[name]} and {position}); rename or drop one")
        seen.setdefault(name, position)


def _read_parquet(path: Path, data: bytes) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f'{path}: reading parquet needs pyarrow: pip install pyarrow (or pip install -e ".[parquet]")'
                        ) from None
    _check_unique(path, pq.read_schema(io.BytesIO(data)).names, "")
    return pd.read_parquet(io.BytesIO(data))


def _check_json_lines(path: Path, text: str) -> None:
    """Every line a JSON object without repeated keys; errors name the row (blank lines are skipped)."""
    def no_repeats(pairs):
        _check_unique(path, [key for key, _ in pairs], f"row {row}: ", "key")
        return dict(pairs)

    row = 0
    for line in text.splitlines():
        if line.strip():
            row += 1
            try:
                json.loads(line, object_pairs_hook=no_repeats)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: row {row}: cannot parse as jsonl: {err.msg} (column {err.colno})") from None


def _read_delimited(path: Path, text: str, fmt: str) -> pd.DataFrame:
    header = text.split("\n", 1)[0]
    sep = "\t" if fmt == "tsv" or ("\t" in header and "," not in header) else ","
    # blank lines inside the data are rows (reported as empty texts), trailing ones are not
    text = re.sub(r"(\r?\n[ \t]*)+\Z", "\n", text)
    try:
        names = next(csv.reader(io.StringIO(text, newline=""), delimiter=sep), [])
    except csv.Error as err:
        raise DataError(f"{path}: header: cannot parse as {fmt}: {err}") from None
    _check_unique(path, names, "header: ")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                            skip_blank_lines=False)
    except pd.errors.ParserError as err:
        raise DataError(_locate_csv_error(path, text, sep, len(names), err)) from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas made an index of the extra leading fields
        raise DataError(_locate_csv_error(path, text, sep, len(names), None))
    return frame


def _locate_csv_error(path: Path, text: str, sep: str, num_fields: int, err: Exception | None) -> str:
    """The first bad row as medtext numbers rows (from 1, header excluded), found with the csv module."""
    fmt, row = ("tsv" if sep == "\t" else "csv"), 0
    try:
        for row, fields in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=sep)):
            if len(fields) > num_fields:
                return f"{path}: row {row}: expected {num_fields} fields, found {len(fields)}"
    except csv.Error:  # e.g. a field over the csv module's size limit: keep pandas' own words
        pass
    else:
        if "EOF inside string" in str(err):
            return f"{path}: row {row}: a quoted field is never closed (unbalanced '\"')"
    detail = re.sub(r"^Error tokenizing data\. C error: ", "", _one_line(err)) if err else "a row is malformed"
    counted = re.fullmatch(r"Expected (\d+) fields in line (\d+), saw (\d+)", detail)
    if counted:  # pandas' "line" counts records, header included
        expected, line, found = map(int, counted.groups())
        return f"{path}: row {line - 1}: expected {expected} fields, found {found}"
    return f"{path}: cannot parse as {fmt}: {detail}"


def require_column(frame: pd.DataFrame, path: str | Path, column: str, role: str) -> pd.Series:
    """Return ``frame[column]`` or fail naming the file, the role and the columns it has."""
    if column not in frame.columns:
        raise DataError(f"{path}: {role} column {column!r} not found; the columns are {list(frame.columns)}")
    if list(frame.columns).count(column) > 1:  # only possible for the empty name
        raise DataError(f"{path}: {role} column {column!r} appears more than once in the header")
    return frame[column]


def read_row_ids(frame: pd.DataFrame, path: str | Path, id_column: str | None) -> list:
    """Each row's id in predictions: its ``id_column`` value, else its 1-based row number (a string)."""
    if id_column:
        return require_column(frame, path, id_column, "id").tolist()
    return [str(row) for row in range(1, len(frame) + 1)]


def read_texts(frame: pd.DataFrame, path: str | Path, column: str, row_ids: Optional[Sequence] = None,
               allow_invalid: bool = False) -> list[str]:
    """The abstracts of ``column``; an invalid one (:func:`invalid_texts`) is an error naming its row
    and, given ``row_ids`` (an id column's), its id; ``allow_invalid``: kept, for the caller to skip."""
    texts = require_column(frame, path, column, "text").tolist()
    invalid = {} if allow_invalid else invalid_texts(texts)
    if invalid:
        raise DataError(invalid_rows_message(path, column, invalid, row_ids))
    return texts


def load_label_texts(path: str | Path) -> dict[str, str]:
    """The raw ``{key: text}`` pairs of a labels or descriptions file (JSON object or two columns)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            mapping = json.loads(decode_utf8(path, read_bytes(path)))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: invalid JSON: {err}") from None
        if not isinstance(mapping, dict) or not mapping:
            raise DataError(f"{path}: expected a JSON object mapping label values to names")
        return {str(k): str(v) for k, v in mapping.items()}
    frame = read_table(path)
    if frame.shape[1] < 2:
        raise DataError(f"{path}: a labels file needs two columns (label value, label name)")
    mapping: dict[str, str] = {}
    for row, (value, name) in enumerate(zip(frame.iloc[:, 0], frame.iloc[:, 1]), start=1):
        if value == "" or name.strip() == "":
            raise DataError(f"{path}: row {row}: empty label value or name")
        if value in mapping:
            raise DataError(f"{path}: row {row}: label value {value!r} is listed twice")
        mapping[value] = name.strip()
    return mapping


def split_name_description(text: str) -> tuple[str, str | None]:
    """``"Name: description"`` -> ``("Name", "description")``; plain ``"Name"`` -> ``("Name", None)``."""
    name, sep, description = text.partition(": ")
    return (name.strip(), description.strip() or None) if sep else (text.strip(), None)


def load_label_map(path: str | Path) -> dict[str, str]:
    """Read ``{raw value: name}`` from a two-column CSV/TSV (value, name) or a JSON object.

    A value written ``"Name: description"`` (as in HoC's ``labels.json``) names the class ``Name``.
    """
    return {value: split_name_description(text)[0] for value, text in load_label_texts(path).items()}
