"""CSV cells that a spreadsheet would run as formulas are written as text (CSV injection)."""

from __future__ import annotations

from typing import Any, Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def safe_cell(value: Any) -> Any:
    """``value``, or ``"'" + value`` when a spreadsheet would read the string as a formula.

    An id, a kept input column, a class name or a text that starts with ``=``, ``+``, ``-``, ``@``, a
    tab or a carriage return is a formula to Excel, LibreOffice and Google Sheets when the CSV is opened
    (``=HYPERLINK(...)``, ``=cmd|...``). Following OWASP's advice, such a cell gets a leading ``'``,
    which spreadsheets show as text. A number (``-0.25``, ``+3``) is left alone. Every CSV medtext writes
    goes through this; Parquet and JSON outputs are never changed.

    >>> safe_cell("=1+2"), safe_cell("-0.5"), safe_cell("@SUM(A1)"), safe_cell(3)
    ("'=1+2", '-0.5', "'@SUM(A1)", 3)
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if value[0] in "+-" and _is_number(value):
        return value
    return "'" + value


def safe_row(values: Iterable[Any], escape: bool = True) -> list[Any]:
    """Each of ``values`` through :func:`safe_cell`, unless ``escape`` is off
    (``predict --predictions.escape_formulas false``, for programs that read the file)."""
    return [safe_cell(value) for value in values] if escape else list(values)
