"""Write a classification report: metrics JSON, per-class CSV, confusion matrix as CSV and PNG, the
reliability diagram (calibration) as PNG, and the per-abstract predictions CSV (``predict``'s, and
``test``'s with the true labels). Cells a spreadsheet would run as formulas are written as text
(``medtext/core/spreadsheet_cells.py``)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

import torch

from medtext.core.atomic_files import atomic_open, atomic_write_text
from medtext.core.metrics import metric_label
from medtext.core.spreadsheet_cells import safe_row


def write_metrics_json(path: Path, metrics: dict[str, float]) -> None:
    atomic_write_text(path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def write_rows_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(safe_row(rows[0]))
    writer.writerows(safe_row(row.values()) for row in rows)
    atomic_write_text(path, buffer.getvalue())


def label_text(label, names: Sequence[str]) -> str:
    """A class id as its name; a multi-label 0/1 row as the names of its labels joined by ``;``."""
    if isinstance(label, list):
        return ";".join(name for name, on in zip(names, label) if on)
    return names[label]


def write_predictions_csv(path: Path, id_header: str, row_ids: Sequence, names: Sequence[str], index: torch.Tensor,
                          predicted: torch.Tensor, probabilities: torch.Tensor, true: torch.Tensor | None = None,
                          kept: dict[str, list[str]] | None = None, escape_formulas: bool = True,
                          skipped: dict[int, str] | None = None) -> None:
    """One row per abstract (``index``: its row in the file): its id (``row_ids[index]`` under ``id_header``),
    ``true_label`` (with ``true``), ``label``, ``prob_<class>`` per class, then the ``kept`` input columns.
    ``escape_formulas``: cells a spreadsheet would run get a leading ``'``. ``skipped`` rows (row: reason)
    are written in their place with empty predictions and, in a last ``skipped`` column, the reason."""
    header = [id_header, *(["true_label"] if true is not None else []), "label",
              *(f"prob_{metric_label(name)}" for name in names)]
    kept = {column: values for column, values in (kept or {}).items() if column != id_header}
    header += [f"input_{column}" if column in header else column for column in kept]
    skipped = skipped or {}
    truth = true.tolist() if true is not None else [None] * len(index)
    rows = {i: [row_ids[i], *([label_text(gold, names)] if true is not None else []), label_text(label, names),
                *(f"{p:.6f}" for p in probs)]
            for i, label, probs, gold in zip(index.tolist(), predicted.tolist(), probabilities.tolist(), truth)}
    rows.update({i: [row_ids[i], *([""] if true is not None else []), "", *([""] * len(names))] for i in skipped})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(safe_row(header + (["skipped"] if skipped else []), escape_formulas))
    for i in sorted(rows) if skipped else rows:  # with skipped rows: file order (the index is in it already)
        cells = rows[i] + [values[i] for values in kept.values()] + ([skipped.get(i, "")] if skipped else [])
        writer.writerow(safe_row(cells, escape_formulas))
    atomic_write_text(path, buffer.getvalue())


def write_confusion_csv(path: Path, matrix: torch.Tensor, label_names: Sequence[str]) -> None:
    """Rows are true classes, columns predicted classes."""
    rows = [{"true \\ predicted": name, **{p: int(v) for p, v in zip(label_names, row.tolist())}}
            for name, row in zip(label_names, matrix)]
    write_rows_csv(path, rows)


def write_label_confusion_csv(path: Path, matrices: torch.Tensor, label_names: Sequence[str]) -> None:
    """Multi-label: one row per label with its 2x2 counts (tn, fp, fn, tp)."""
    rows = [{"label": name, "tn": int(m[0, 0]), "fp": int(m[0, 1]), "fn": int(m[1, 0]), "tp": int(m[1, 1])}
            for name, m in zip(label_names, matrices)]
    write_rows_csv(path, rows)


def plot_label_confusion_png(path: Path, matrices: torch.Tensor, label_names: Sequence[str], title: str) -> None:
    """Multi-label: a grid of 2x2 matrices (rows true 0/1, columns predicted 0/1), one per label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(5, len(label_names))
    rows = -(-len(label_names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), dpi=100, squeeze=False)
    for ax in axes.flat[len(label_names):]:
        ax.axis("off")
    for ax, name, matrix in zip(axes.flat, label_names, matrices):
        ax.imshow(matrix.numpy(), cmap="Blues")
        ax.set_title(name[:28], fontsize=8)
        ax.set_xticks([0, 1], ["pred 0", "pred 1"], fontsize=7)
        ax.set_yticks([0, 1], ["true 0", "true 1"], fontsize=7)
        peak = max(int(matrix.max()), 1)
        for i in range(2):
            for j in range(2):
                value = int(matrix[i, j])
                ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                        color="white" if value > peak / 2 else "black")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)


def plot_confusion_png(path: Path, matrix: torch.Tensor, label_names: Sequence[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(label_names)
    fig, ax = plt.subplots(figsize=(2.0 + 0.9 * n, 1.5 + 0.8 * n), dpi=110)
    ax.imshow(matrix.numpy(), cmap="Blues")
    ax.set_xticks(range(n), label_names, rotation=40, ha="right")
    ax.set_yticks(range(n), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    peak = max(int(matrix.max()), 1)
    for i in range(n):
        for j in range(n):
            value = int(matrix[i, j])
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black")
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)


def plot_reliability_png(path: Path, reliability: torch.Tensor, ece: Sequence[float], title: str) -> None:
    """Reliability diagram, uncalibrated and calibrated side by side: per confidence bin, the observed
    frequency (accuracy; multi-label: share of positive label decisions) against the mean confidence.
    ``reliability``: (2, 3, bins) from :class:`medtext.model.calibration.CalibrationMetrics`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_bins = reliability.shape[-1]
    edges = torch.linspace(0, 1, n_bins + 1)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.3), dpi=100, sharey=True)
    for ax, (confidence, observed, count), name, error in zip(axes, reliability, ("uncalibrated", "calibrated"), ece):
        seen = count > 0
        ax.bar(edges[:-1][seen].numpy(), observed[seen].numpy(), width=1 / n_bins, align="edge",
               edgecolor="black", color="tab:blue", label="observed")
        ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect")
        ax.plot(confidence[seen].numpy(), observed[seen].numpy(), "o", color="tab:red", markersize=4,
                label="at the bin's mean confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_title(f"{name}: ECE {error:.4f}")
    axes[0].set_ylabel("observed frequency")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)
