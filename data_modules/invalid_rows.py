"""Rows whose text cannot be classified (an empty one): which they are, and how medtext names them
in an error (``read_texts``, ``check``) or in what ``predict --data.skip_invalid_rows`` says."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence


def invalid_texts(texts: Sequence[str]) -> dict[int, str]:
    """The rows (0-based) whose text cannot be classified, with the reason: empty or whitespace only."""
    return {row: "empty text" for row, text in enumerate(texts) if not text.strip()}


def invalid_rows_message(path: str | Path, column: str, invalid: dict[int, str], row_ids: Optional[Sequence] = None,
                         shown: int = 0) -> str:
    """The first invalid row in the usual one-line form (with its id, given ``row_ids``), then how many
    such rows there are and, with ``shown``, the first ``shown`` of them."""
    named = {row: f" (id {row_ids[row]})" if row_ids is not None else "" for row in invalid}
    first = min(invalid)
    message = f"{path}: row {first + 1}: {invalid[first]} in column {column!r}{named[first]}"
    if len(invalid) > 1:
        rows = ", ".join(f"row {row + 1}{named[row]}" for row in list(invalid)[:shown])
        more = f", and {len(invalid) - shown} more" if rows and len(invalid) > shown else ""
        message += f"; {len(invalid)} such rows" + (f": {rows}{more}" if rows else "")
    return message


def skipped_rows_line(path: str | Path, invalid: dict[int, str], total: int, shown: int = 5) -> str:
    """What ``predict --data.skip_invalid_rows`` says of the rows it leaves out."""
    rows = ", ".join(f"row {row + 1} ({reason})" for row, reason in list(invalid.items())[:shown])
    return f"{path}: skipping {len(invalid)} of {total} rows that cannot be predicted: {rows}" + \
        (", ..." if len(invalid) > shown else "")
