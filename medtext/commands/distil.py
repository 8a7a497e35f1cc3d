"""``python -m medtext distil --config TEACHER.yaml --distil.student_config STUDENT.yaml --distil.output_dir DIR``:
cross-fitted distillation. The training file is split into k stratified folds; a teacher is fitted on
each fold's complement and predicts the fold it never saw; the out-of-fold probabilities, merged in
the training file's row order, are the student's soft targets (``data.soft_targets_file``).

A teacher that predicts its own training rows mostly repeats their labels; out-of-fold predictions
are what the teacher believes of rows it did not learn, which is what a student can learn from.
A fold whose predictions are complete is not fitted again (a requeued job continues).
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtext.commands.data_only_cli import DataOnlyCLI
from medtext.core.atomic_files import atomic_write_text
from medtext.core.errors import MedtextError

RECORD = "distil.json"  # what this folder holds and with which settings: only such a folder is written into


@dataclass
class DistilOptions:
    """``--distil.*``: the folds, the student and where everything goes.

    Args:
        output_dir: the folder of the fold files, the teachers' out-of-fold predictions and soft_targets.csv.
        student_config: the student's fit config; empty: stop once soft_targets.csv is written.
        folds: how many teachers, each fitted on all folds but one (at least 2).
        seed: the seed of the stratified fold split.
        weight: the student's data.soft_targets_weight (the teachers' share of each target).
        teacher_options: more fit options for every teacher, e.g. "--trainer.max_epochs 2".
        student_options: more fit options for the student.
    """

    output_dir: str
    student_config: str = ""
    folds: int = 3
    seed: int = 0
    weight: float = 0.5
    teacher_options: str = ""
    student_options: str = ""


class DistilCLI(DataOnlyCLI):
    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_class_arguments(DistilOptions, "distil")


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..k-1) of each row: each class's rows dealt round-robin in a seeded order (multi-label:
    by the label set), so every fold holds about 1/k of every class."""
    keys = [tuple(np.flatnonzero(row)) for row in labels] if labels.ndim == 2 else labels.tolist()
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(keys), dtype=np.int64)
    offset = 0
    for key in sorted(set(keys), key=str):
        rows = rng.permutation([i for i, k in enumerate(keys) if k == key])
        fold_of[rows] = (np.arange(len(rows)) + offset) % folds
        offset += len(rows)  # small classes do not all start in fold 0
    return fold_of


def merge_out_of_fold(fold_of: np.ndarray, predictions: list, row_ids: list, label_names: list[str]):
    """One table in the training file's row order: its row ids, then each class's ``prob_`` column taken
    from the teacher that did not train on that row (``predictions[i]``: fold i's rows, in file order)."""
    import pandas as pd

    from medtext.core.metrics import metric_label

    columns = [f"prob_{metric_label(name)}" for name in label_names]
    merged = np.zeros((len(fold_of), len(columns)))
    for fold, frame in enumerate(predictions):
        rows = np.flatnonzero(fold_of == fold)
        if len(frame) != len(rows):
            raise MedtextError(f"fold {fold}: {len(frame)} predictions for {len(rows)} held-out rows")
        missing = [column for column in columns if column not in frame.columns]
        if missing:  # a teacher whose classes are not the training file's (another labels file)
            theirs = [c for c in frame.columns if c.startswith("prob_")]
            raise MedtextError(f"fold {fold}: the teacher predicts {', '.join(theirs)}, not {', '.join(missing)}")
        merged[rows] = frame[columns].to_numpy(dtype=float)
    table = pd.DataFrame(merged, columns=columns)
    table.insert(0, "row_id", [str(r) for r in row_ids])
    return table


def check_output_dir(folder: Path, record: dict) -> None:
    """``folder`` is new, empty, or an earlier distil's with the same settings (it continues)."""
    if not folder.exists() or not any(folder.iterdir()):
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / RECORD, json.dumps(record, indent=2) + "\n")
        return
    try:
        earlier = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        raise MedtextError(f"{folder} holds files medtext distil did not write; give an empty or new "
                           "--distil.output_dir") from None
    if earlier != record:
        raise MedtextError(f"{folder} holds a distillation with other settings ({folder / RECORD}); give another "
                           "--distil.output_dir")


def main(args: list[str] | None = None) -> None:
    """``medtext distil --config TEACHER.yaml --distil.output_dir DIR [--distil.student_config STUDENT.yaml]``."""
    from medtext.commands.distil_folds import run_folds

    args = list(sys.argv[2:] if args is None else args)
    cli = DistilCLI.parse(args, "distil", "cross-fitted distillation: k teachers, each fitted without one fold, "
                          "predict that fold; a student fits the out-of-fold probabilities")
    options = DistilOptions(**cli.config.distil.as_dict())
    if options.folds < 2:
        raise MedtextError(f"--distil.folds must be at least 2, not {options.folds}")
    datamodule = cli.datamodule
    train = datamodule.load_split("train")
    train_file = datamodule.split_file("train")
    fold_of = stratified_folds(np.asarray(train["labels"]), options.folds, options.seed)
    folder = Path(options.output_dir)
    # each teacher: this command line without --distil.*, then --distil.teacher_options
    teacher_args = strip_distil_options(args) + shlex.split(options.teacher_options)
    # what the folds' files depend on (the student's settings do not; the folder is the output_dir itself)
    check_output_dir(folder, {"train_file": str(Path(train_file).resolve()), "rows": len(fold_of),
                              "folds": options.folds, "seed": options.seed, "teacher": teacher_args})
    predictions = run_folds(folder, train_file, datamodule.file_format, fold_of, teacher_args)
    table = merge_out_of_fold(fold_of, predictions, train["row_ids"], datamodule.label_names)
    soft_targets = folder / "soft_targets.csv"
    atomic_write_text(soft_targets, table.to_csv(index=False))
    print(f"distil: out-of-fold teacher probabilities of {len(table)} rows written to {soft_targets}")
    if options.student_config:
        from medtext.commands.cli import build_cli

        student = build_cli(["fit", "--config", options.student_config, "--data.soft_targets_file", str(soft_targets),
                             "--data.soft_targets_weight", str(options.weight), *shlex.split(options.student_options)])
        print(f"distil: the student's best checkpoint: {student.trainer.checkpoint_callback.best_model_path}")


def strip_distil_options(args: list[str]) -> list[str]:
    """``args`` without the ``--distil.*`` options (and their values): what each teacher's fit gets."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg.startswith("--distil."):
            skip = "=" not in arg
            continue
        kept.append(arg)
    return kept
