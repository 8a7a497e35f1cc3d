"""Read CSV, TSV, JSON Lines and Parquet tables of abstracts, with one-line errors on bad input.

Every value is read as a string so that a label ``1`` and a label ``"1"`` are the same label and a
missing value is an empty string, never a float NaN. Rows are numbered from 1, header excluded.

>>> table = read_table("../shared/data/medical_abstracts/medical_tc_labels.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd

from medtext.errors import DataError

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
    """Read a data file into a DataFrame of strings (missing values become ``""``)."""
    path = Path(path)
    fmt = detect_format(path, file_format)
    data = read_bytes(path)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            text = decode_utf8(path, data)
            if fmt == "jsonl":
                frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
            else:
                header = text.split("\n", 1)[0]
                sep = "\t" if fmt == "tsv" or ("\t" in header and "," not in header) else ","
                # blank lines inside the data are rows (reported as empty texts), trailing ones are not
                text = re.sub(r"(\r?\n[ \t]*)+\Z", "\n", text)
                frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                                    skip_blank_lines=False)
    except DataError:
        raise
    except ImportError as err:
        raise DataError(f"{path}: reading {fmt} needs an extra package: {err}") from None
    except (ValueError, pd.errors.ParserError) as err:
        message = " ".join(str(err).split())
        raise DataError(f"{path}: cannot parse as {fmt}: {message}") from None
    if len(frame) == 0:
        raise DataError(f"{path}: no data rows (header only)")
    # an empty header field (HoC's text column) is named "" rather than pandas' "Unnamed: 0"
    frame.columns = ["" if re.fullmatch(r"Unnamed: \d+", str(c)) else str(c) for c in frame.columns]
    return frame.map(_cell_to_str) if fmt != "csv" and fmt != "tsv" else frame


def require_column(frame: pd.DataFrame, path: str | Path, column: str, role: str) -> pd.Series:
    """Return ``frame[column]`` or fail naming the file, the role and the columns it has."""
    if column not in frame.columns:
        raise DataError(f"{path}: {role} column {column!r} not found; the columns are {list(frame.columns)}")
    return frame[column]


def read_texts(frame: pd.DataFrame, path: str | Path, column: str) -> list[str]:
    """The abstracts of ``column``; an empty or whitespace-only text is an error naming its row."""
    texts = require_column(frame, path, column, "text").tolist()
    for row, text in enumerate(texts, start=1):
        if not text.strip():
            raise DataError(f"{path}: row {row}: empty text in column {column!r}")
    return texts
