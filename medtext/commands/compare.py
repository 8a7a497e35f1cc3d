"""``python -m medtext compare RUN_DIR [RUN_DIR ...]``: test results of several runs side by side.

    python -m medtext compare runs/ma_baseline_tfidf/version_0 runs/medical_abstracts_minilm_mlp/version_0
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional

import numpy as np

from medtext.core.atomic_files import atomic_write_text
from medtext.core.errors import DataError
from medtext.core.spreadsheet_cells import safe_row


def read_run(folder: Path) -> dict:
    """A run's class names, multi-label flag, row ids, true and predicted 0/1 matrices, and a description,
    from what ``medtext test`` (or ``fit --test_after_fit``, or ``medtext baseline``) wrote in its folder:
    ``test_predictions.csv`` (per abstract: true and predicted labels) and ``test_per_class.csv`` (the
    class names in order)."""
    predictions, per_class = folder / "test_predictions.csv", folder / "test_per_class.csv"
    for path in (predictions, per_class):
        if not path.is_file():
            raise DataError(f"{folder}: no {path.name}; `medtext test` (or `medtext baseline`) writes it")
    names = [row["class"] for row in csv.DictReader(open(per_class, newline="", encoding="utf-8"))]
    rows = list(csv.DictReader(open(predictions, newline="", encoding="utf-8")))
    if not rows:
        raise DataError(f"{predictions}: no rows")
    metrics_file = folder / "test_metrics.json"
    multi_label = "test/exact_match" in json.loads(metrics_file.read_text()) if metrics_file.is_file() else \
        any(";" in r["true_label"] or r["true_label"] == "" for r in rows)
    id_column = next(iter(rows[0]))

    def matrix(column: str) -> np.ndarray:
        out = np.zeros((len(rows), len(names)), dtype=bool)
        for i, row in enumerate(rows, start=1):
            for name in filter(None, row[column].split(";") if multi_label else [row[column]]):
                if name not in names:
                    raise DataError(f"{predictions}, row {i}: {column} {name!r} is not one of the run's classes")
                out[i - 1, names.index(name)] = True
        return out

    return {"folder": folder, "names": names, "multi_label": multi_label, "ids": [r[id_column] for r in rows],
            "true": matrix("true_label"), "predicted": matrix("label"), "what": describe(folder)}


def describe(folder: Path) -> str:
    """``baseline <method>`` for a baseline run; else the head and encoder from the run's config.yaml."""
    if (folder / "baseline.json").is_file():
        return f"baseline {json.loads((folder / 'baseline.json').read_text())['method']}"
    config_file = folder / "config.yaml"
    if config_file.is_file():
        import yaml

        model = (yaml.safe_load(config_file.read_text()) or {}).get("model") or {}
        init = model.get("init_args") or {}
        head = (init.get("head") or {}).get("class_path", "MLPHead").rsplit(".", 1)[-1]
        return f"{head} on {str(init.get('encoder_name', '?')).rstrip('/').rsplit('/', 1)[-1]}"
    return "fine-tuned"


def align(runs: list[dict]) -> None:
    """Every run on the first run's abstracts and class order (classes matched by name); runs that tested
    other abstracts, classes or true labels stop with one line."""
    first = runs[0]
    for run in runs[1:]:
        where = f"{run['folder']} and {first['folder']}"
        if run["multi_label"] != first["multi_label"] or sorted(run["names"]) != sorted(first["names"]):
            raise DataError(f"{where} have different tasks or classes: {run['names']} vs {first['names']}")
        if run["ids"] != first["ids"]:
            raise DataError(f"{where} tested different abstracts ({len(run['ids'])} vs {len(first['ids'])} rows)")
        order = [run["names"].index(name) for name in first["names"]]
        run["true"], run["predicted"], run["names"] = run["true"][:, order], run["predicted"][:, order], first["names"]
        if not np.array_equal(run["true"], first["true"]):
            raise DataError(f"{where} have different true labels for the same abstracts")


def scores(true: np.ndarray, predicted: np.ndarray, weights: np.ndarray, multi_label: bool) -> dict[str, np.ndarray]:
    """Metrics under row ``weights`` (resamples, rows): per-class F1 (resamples, classes), macro and micro F1,
    accuracy (single-label) or exact match (multi-label). F1 of a class without true or predicted rows: 0."""
    tp = weights @ (true & predicted)
    fp = weights @ (~true & predicted)
    fn = weights @ (true & ~predicted)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(tp.shape), where=(2 * tp + fp + fn) > 0)
    micro = np.divide(2 * tp.sum(-1), (2 * tp + fp + fn).sum(-1), out=np.zeros(len(weights)),
                      where=(2 * tp + fp + fn).sum(-1) > 0)
    correct = (true == predicted).all(-1)
    return {"macro_f1": f1.mean(-1), "micro_f1": micro, "exact_match" if multi_label else "accuracy":
            weights @ correct / weights.sum(-1), "f1": f1}


def headline(multi_label: bool) -> str:
    """The metric runs are ranked by: macro-F1 (single-label, the Medical Abstracts metric) or micro-F1."""
    return "micro_f1" if multi_label else "macro_f1"


def compare(runs: list[dict], resamples: int = 1000, seed: int = 0) -> list[dict]:
    """One row per run: each metric's value and its 2.5/97.5 bootstrap percentiles (resampling the test
    abstracts), and the paired difference of the headline metric (:func:`headline`) to the first run's
    (paired: the same resamples for every run)."""
    n, key = len(runs[0]["ids"]), headline(runs[0]["multi_label"])
    rng = np.random.default_rng(seed)
    weights = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(resamples)]).astype(float)
    table, first = [], None
    for run in runs:
        point = scores(run["true"], run["predicted"], np.ones((1, n)), run["multi_label"])
        boot = scores(run["true"], run["predicted"], weights, run["multi_label"])
        first = first or (point[key][0], boot[key])
        row = {"run": str(run["folder"]), "what": run["what"]}
        for metric in ("macro_f1", "micro_f1", "accuracy", "exact_match"):
            if metric in point:
                row[metric] = (point[metric][0], *np.percentile(boot[metric], [2.5, 97.5]))
        for i, name in enumerate(run["names"]):
            row[f"f1/{name}"] = (point["f1"][0, i], *np.percentile(boot["f1"][:, i], [2.5, 97.5]))
        row[f"delta_{key}"] = (point[key][0] - first[0], *np.percentile(boot[key] - first[1], [2.5, 97.5]))
        table.append(row)
    return table


def markdown(table: list[dict]) -> str:
    metrics = [k for k in table[0] if k not in ("run", "what")]
    out = ["| run | what | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
    for row in table:
        cells = [f"{v:.4f} ({lo:.4f}–{hi:.4f})" for v, lo, hi in (row[k] for k in metrics)]
        out.append(f"| {row['run']} | {row['what']} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def to_csv(table: list[dict]) -> str:
    buffer = io.StringIO()
    metrics = [k for k in table[0] if k not in ("run", "what")]
    writer = csv.writer(buffer)
    writer.writerow(safe_row(["run", "what", *(f"{k}{s}" for k in metrics for s in ("", "_ci_low", "_ci_high"))]))
    for row in table:
        writer.writerow(safe_row([row["run"], row["what"], *(f"{v:.6f}" for k in metrics for v in row[k])]))
    return buffer.getvalue()


def main(args: list[str] | None = None) -> None:
    """``medtext compare RUN_DIR [RUN_DIR ...] [--output_dir DIR] [--resamples N] [--seed S]``."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(prog="medtext compare", allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=str, metavar="RUN_DIR", help="folders with test_predictions.csv")
    parser.add_argument("--config", action=ActionConfigFile, help="these options from a YAML file")
    parser.add_argument("--output_dir", type=Optional[str], default=None,
                        help="also write comparison.md and comparison.csv here")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resamples")
    options = parser.parse_args(args)
    runs = [read_run(Path(folder)) for folder in options.run_dirs]
    align(runs)
    table = compare(runs, options.resamples, options.seed)
    text = markdown(table)
    print(f"{len(runs[0]['ids'])} test abstracts; value (95% bootstrap interval, {options.resamples} resamples); "
          f"delta_{headline(runs[0]['multi_label'])}: paired, against {runs[0]['folder']}\n\n{text}", end="")
    if options.output_dir:
        atomic_write_text(Path(options.output_dir) / "comparison.md", text)
        atomic_write_text(Path(options.output_dir) / "comparison.csv", to_csv(table))
        print(f"comparison written to {options.output_dir}")
