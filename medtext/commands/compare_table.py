"""The tables of ``medtext compare``: for the terminal, within 120 columns whatever the number of runs and
the length of their names and class names; the full table as Markdown and CSV for files.

The terminal gets three blocks: the runs, numbered, with what they are, their training budget and seed;
their test metrics; and per-class F1 with the classes as rows and as many runs as fit side by side (the
other runs in further blocks). A name too long for its column keeps the words where it differs from the
others and loses what it shares with them to "...". The files keep each run's folder and four decimals.
"""

from __future__ import annotations

import csv
import io
import os

from medtext.core.spreadsheet_cells import safe_row

WIDTH = 120
GAP = "  "
INFO = ("run", "folder", "what", "budget", "seed")  # a row's columns that are not metrics


def metric_keys(table: list[dict]) -> list[str]:
    return [key for key in table[0] if key not in INFO]


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, its middle replaced by ``...`` (a run name's start and
    its version both stay).

    >>> shorten("medical_abstracts_minilm_mlp/version_0", 24)
    'medical_abs.../version_0'
    """
    if len(text) <= width:
        return text
    keep = width - 3
    if keep < 2:
        return (text[:max(keep, 0)] + "...")[:max(width, 0)]
    return text[:(keep + 1) // 2] + "..." + text[len(text) - keep // 2:]


def word_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """``start`` back to the start of its word, ``end`` on to the end of its (words end at ``_/-.``)."""
    start = max(text.rfind(c, 0, start) for c in "_/-.") + 1
    ends = [i for i in (text.find(c, end) for c in "_/-.") if i >= 0]
    return start, min(ends, default=len(text))


def shorten_all(texts: list[str], width: int) -> list[str]:
    """Each text in at most ``width`` characters, still telling it from the others: the words where it
    differs from the texts most like it stay whole, the start and end it shares with them are shortened.

    >>> shorten_all(["ma_minilm_mlp_seed42/version_0", "ma_minilm_mlp_seed43/version_0", "tfidf/version_0"], 24)
    ['ma_min...seed42/ve...n_0', 'ma_min...seed43/ve...n_0', 'tfidf/version_0']
    """
    out = []
    for text in texts:
        others = [other for other in texts if other != text]
        if len(text) <= width or not others:
            out.append(shorten(text, width))
            continue
        shared_start = max(len(os.path.commonprefix([text, other])) for other in others)
        shared_end = max(len(os.path.commonprefix([text[::-1], other[::-1]])) for other in others)
        start, end = word_bounds(text, shared_start, max(len(text) - shared_end, shared_start))
        room = width - (end - start)
        if room < 0:  # the differing words alone are too long: the text's middle goes
            out.append(shorten(text, width))
            continue
        keep_end = min(len(text) - end, room // 2)  # of the shared end; the start gets the rest
        keep_start = min(start, room - keep_end)
        keep_end = min(len(text) - end, room - keep_start)
        head = text[:start] if keep_start >= start else text[:keep_start - 3] + "..." if keep_start >= 3 else ""
        tail = text[end:] if keep_end >= len(text) - end else shorten(text[end:], keep_end) if keep_end >= 3 else ""
        out.append(head + text[start:end] + tail)
    return out


def interval(value: float, low: float, high: float, signed: bool = False) -> str:
    """``0.812 [0.781, 0.840]``; a difference with its sign (``+0.012 [-0.004, +0.030]``). ASCII only: a
    console that cannot print every character (Windows code pages) prints these."""
    form = "{:+.3f}" if signed else "{:.3f}"
    return f"{form.format(value)} [{form.format(low)}, {form.format(high)}]"


def fit_widths(widths: list[int], minimums: dict[int, int], width: int = WIDTH) -> list[int]:
    """Column widths whose line (columns joined by :data:`GAP`) fits ``width``: the widest shrinkable
    column (``minimums``: column -> narrowest) loses a character until the line fits or none can shrink."""
    widths = list(widths)
    while sum(widths) + len(GAP) * (len(widths) - 1) > width:
        room = [i for i in minimums if widths[i] > minimums[i]]
        if not room:
            break
        widths[max(room, key=lambda i: widths[i])] -= 1
    return widths


def render(header: list[str], rows: list[list[str]], minimums: dict[int, int]) -> list[str]:
    """Left-aligned columns, shrinkable ones (``minimums``) shortened to fit :data:`WIDTH`, each column's
    cells together (:func:`shorten_all`)."""
    widths = fit_widths([max(len(cell) for cell in column) for column in zip(header, *rows)], minimums)
    columns = [shorten_all(list(column), w) for column, w in zip(zip(*rows), widths)]
    return [GAP.join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
            for line in ([shorten(cell, w) for cell, w in zip(header, widths)], *zip(*columns))]


def class_blocks(table: list[dict], classes: list[str]) -> list[str]:
    """Per-class F1, a row per class and a column per run, in blocks of as many runs as fit side by side."""
    cell = len(interval(0, 0, 0))  # every F1 cell's width ("1.000 [1.000, 1.000]")
    class_width = min(max(len(key) - 3 for key in classes), WIDTH - len(GAP) - cell, 40)
    per_block = max(1, (WIDTH - class_width) // (cell + len(GAP)))
    names = shorten_all([row["run"] for row in table], cell - len(str(len(table))) - 1)  # under "<#> "
    out = []
    for start in range(0, len(table), per_block):
        block = range(start, min(start + per_block, len(table)))
        which = f"runs {block[0] + 1}-{block[-1] + 1}" if len(block) > 1 else f"run {block[0] + 1}"
        out += ["", f"test F1 per class ({which})" if len(table) > per_block else "test F1 per class"]
        header = ["class", *(f"{i + 1} {names[i]}" for i in block)]
        rows = [[key[3:], *(interval(*table[i][key]) for i in block)] for key in classes]
        out += render(header, rows, {0: min(class_width, 16), **{j: cell for j in range(1, len(header))}})
    return out


def terminal(table: list[dict], abstracts: int, resamples: int) -> str:
    """The three blocks (module docstring) as printed, each line at most :data:`WIDTH` characters."""
    metrics = metric_keys(table)
    overall = [key for key in metrics if not key.startswith("f1/")]
    delta = overall[-1]  # delta_<headline metric>, paired against run 1
    numbers = [str(i) for i in range(1, len(table) + 1)]
    legend = ("run", "what", "budget", "seed")
    out = [f"{abstracts} test abstracts; each value [its 95% bootstrap interval, {resamples} resamples]", "", "runs"]
    out += render(["#", *legend], [[n, *(row[key] for key in legend)] for n, row in zip(numbers, table)],
                  {1: 24, 2: 16, 3: 12, 4: 4})
    out += ["", f"test ({delta}: paired difference to run 1)"]
    rows = [[n, row["run"], *(interval(*row[key], signed=key == delta) for key in overall)]
            for n, row in zip(numbers, table)]
    out += render(["#", "run", *overall], rows, {1: 12})
    out += class_blocks(table, [key for key in metrics if key.startswith("f1/")])
    return "\n".join(out) + "\n"


def markdown(table: list[dict]) -> str:
    """Every column, each metric ``value (low–high)`` to four decimals."""
    metrics = metric_keys(table)

    def line(cells) -> str:  # a "|" in a name or class would end its cell
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    out = [line([*INFO, *metrics]), "|---" * (len(INFO) + len(metrics)) + "|"]
    for row in table:
        out.append(line([*(str(row[key]) for key in INFO),
                         *(f"{v:.4f} ({lo:.4f}–{hi:.4f})" for v, lo, hi in (row[key] for key in metrics))]))
    return "\n".join(out) + "\n"


def to_csv(table: list[dict]) -> str:
    """Every column; each metric as three: value, ``_ci_low`` and ``_ci_high``."""
    buffer = io.StringIO()
    metrics = metric_keys(table)
    writer = csv.writer(buffer)
    writer.writerow(safe_row([*INFO, *(f"{k}{s}" for k in metrics for s in ("", "_ci_low", "_ci_high"))]))
    for row in table:
        writer.writerow(safe_row([*(row[key] for key in INFO), *(f"{v:.6f}" for k in metrics for v in row[k])]))
    return buffer.getvalue()
