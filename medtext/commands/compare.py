"""``python -m medtext compare RUN_DIR [RUN_DIR ...]``: test results of several runs side by side.

    python -m medtext compare runs/ma_baseline_tfidf/version_0 runs/medical_abstracts_minilm_mlp/version_0
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional

import numpy as np

from medtext.commands.compare_table import markdown, terminal, to_csv
from medtext.core.atomic_files import atomic_write_text
from medtext.core.errors import DataError


def read_run(folder: Path) -> dict:
    """A run's class names, multi-label flag, row ids, true and predicted 0/1 matrices, from what ``medtext
    test`` (or ``fit --test_after_fit``, or ``medtext baseline``) wrote in its folder: ``test_predictions.csv``
    (per abstract: true and predicted labels) and ``test_per_class.csv`` (the class names in order); and
    its name, what it is, its training budget and seed (:func:`run_info`)."""
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
            "true": matrix("true_label"), "predicted": matrix("label"), **run_info(folder)}


def read_mapping(path: Path) -> dict:
    """A JSON (by its suffix) or YAML file's mapping; ``{}`` when it is missing or unreadable: a run still
    compares, and what the file would have told is shown as ``?``."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def run_name(folder: Path, config: dict) -> str:
    """``<logger name>/<version folder>`` (e.g. ``medical_abstracts_minilm_mlp/version_0``): the folder's
    parent and its own name, which a CSV logger's name and version make, or a W&B run's name and id."""
    folder = folder.resolve()
    logger = (config.get("trainer") or {}).get("logger")
    logger = (logger[0] if logger else None) if isinstance(logger, list) else logger
    init = (logger.get("init_args") or {}) if isinstance(logger, dict) else {}
    if "Wandb" in str(logger.get("class_path") if isinstance(logger, dict) else "") and init.get("name"):
        return f"{init['name']}/{folder.name}"  # the folder is <save_dir>/<project>/<run id>
    return f"{folder.parent.name}/{folder.name}"


def distinct_names(names: list[str], folders: list[Path]) -> list[str]:
    """Runs that share a name are named by more of their path (``a/tiny/version_0``, ``b/tiny/version_0``);
    a folder given twice, by its position too."""
    names = list(names)
    for name in sorted(set(names)):
        same = [i for i, other in enumerate(names) if other == name]
        parts = [folders[i].resolve().parts for i in same]
        depth = next((d for d in range(3, max(map(len, parts)) + 1) if len({p[-d:] for p in parts}) == len(same)),
                     None) if len(same) > 1 else None
        for i, path in zip(same, parts):
            names[i] = "/".join(path[-depth:]) if depth else names[i]
    counts = {name: names.count(name) for name in names}
    return [f"{name} [{i + 1}]" if counts[name] > 1 else name for i, name in enumerate(names)]


def training_run(folder: Path, config: dict) -> tuple[Optional[Path], dict]:
    """The folder of the fit that trained the run, and its config: the run's own for a fit; for ``medtext
    test --ckpt_path <run>/checkpoints/x.ckpt``, that checkpoint's run, when it is there (else ``None``)."""
    ckpt = config.get("ckpt_path")
    if (folder / "checkpoints" / "fit_completed.json").is_file() or not isinstance(ckpt, str) or \
            not ckpt.endswith(".ckpt"):  # a fit (also one resumed from a checkpoint), or no checkpoint named
        return folder, config
    trained = Path(ckpt).parent.parent if Path(ckpt).parent.name == "checkpoints" else Path(ckpt).parent
    return (trained, read_mapping(trained / "config.yaml")) if (trained / "config.yaml").is_file() else (None, {})


def budget(trainer: dict) -> str:
    """When the fit was set to stop, as Lightning reads the settings: ``2 epochs``, ``500 steps``, ``2 epochs
    or 500 steps`` (whichever comes first); no max_epochs, max_steps or max_time is Lightning's 1000 epochs."""
    epochs, steps, time = trainer.get("max_epochs"), trainer.get("max_steps", -1), trainer.get("max_time")
    if epochs is None and steps in (None, -1) and not time:
        epochs = 1000
    parts = [f"{epochs} epoch{'s' * (epochs != 1)}"] if epochs not in (None, -1) else []
    parts += [f"{steps} steps"] if steps not in (None, -1) else []
    parts += [f"max_time {time}"] if time else []
    return " or ".join(parts) or "no limit"


def run_info(folder: Path) -> dict[str, str]:
    """A run's ``name`` (:func:`run_name`), ``what`` (``baseline <method>``, or the head and encoder),
    training ``budget`` (:func:`budget`) and ``seed``, from the files its command wrote: ``baseline.json``,
    or ``config.yaml`` (for a ``test`` run, the tested checkpoint's run's). What no file tells is ``?``."""
    config = read_mapping(folder / "config.yaml")
    info = {"name": run_name(folder, config), "what": "fine-tuned", "budget": "?", "seed": "?"}
    if (folder / "baseline.json").is_file():
        record = read_mapping(folder / "baseline.json")
        seed = (record.get("options") or {}).get("seed", "?")  # the logistic regressions'
        return {**info, "what": f"baseline {record.get('method', '?')}", "budget": "no training", "seed": str(seed)}
    if not config:
        return info
    trained, fit_config = training_run(folder, config)
    model = ((fit_config or config).get("model") or {}).get("init_args") or {}
    head = ((model.get("head") or {}).get("class_path") or "MLPHead").rsplit(".", 1)[-1]
    info["what"] = f"{head} on {str(model.get('encoder_name', '?')).rstrip('/').rsplit('/', 1)[-1]}"
    if trained is None:  # a tested checkpoint whose run folder is not here: its budget and seed are unknown
        return info
    if trained.resolve() != folder.resolve():  # a `test` run: what it says is the checkpoint's fit's
        info["what"] += f", trained in {run_name(trained, fit_config)}"
    seed = fit_config.get("seed_everything")
    return {**info, "budget": budget(fit_config.get("trainer") or {}),
            "seed": "none" if seed in (None, False) else str(seed)}


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
        row = {"run": run["name"], "folder": str(run["folder"]), "what": run["what"], "budget": run["budget"],
               "seed": run["seed"]}
        for metric in ("macro_f1", "micro_f1", "accuracy", "exact_match"):
            if metric in point:
                row[metric] = (point[metric][0], *np.percentile(boot[metric], [2.5, 97.5]))
        for i, name in enumerate(run["names"]):
            row[f"f1/{name}"] = (point["f1"][0, i], *np.percentile(boot["f1"][:, i], [2.5, 97.5]))
        row[f"delta_{key}"] = (point[key][0] - first[0], *np.percentile(boot[key] - first[1], [2.5, 97.5]))
        table.append(row)
    return table


def main(args: list[str] | None = None) -> None:
    """``medtext compare RUN_DIR [RUN_DIR ...] [--output_dir DIR] [--resamples N] [--seed S]``."""
    from jsonargparse import ActionConfigFile

    from medtext.core.argument_errors import CommandParser

    parser = CommandParser(prog="medtext compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=str, metavar="RUN_DIR", help="folders with test_predictions.csv")
    parser.add_argument("--config", action=ActionConfigFile, help="these options from a YAML file")
    parser.add_argument("--output_dir", type=Optional[str], default=None,
                        help="also write comparison.md and comparison.csv here")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resamples")
    options = parser.parse_args(args)
    runs = [read_run(Path(folder)) for folder in options.run_dirs]
    for run, name in zip(runs, distinct_names([run["name"] for run in runs], [run["folder"] for run in runs])):
        run["name"] = name
    align(runs)
    table = compare(runs, options.resamples, options.seed)
    print(terminal(table, len(runs[0]["ids"]), options.resamples))
    if options.output_dir:
        files = Path(options.output_dir) / "comparison.md", Path(options.output_dir) / "comparison.csv"
        atomic_write_text(files[0], markdown(table))
        atomic_write_text(files[1], to_csv(table))
        print(f"full table (run folders, four decimals) written to {files[0]} and {files[1]}")
    else:
        print("--output_dir DIR writes the full table (run folders, four decimals) to DIR/comparison.md and .csv")
