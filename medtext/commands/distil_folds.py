"""The teachers of ``medtext distil``: per fold, the training file without the fold (the teacher's
``train_file``) and the fold itself (what it predicts), a fit and a ``predict`` of the held-out rows.

Each fold's files live in ``OUTPUT_DIR/fold_<i>/``; a fold whose ``predictions.csv`` holds every held-out
row is done and is not fitted again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtext.core.atomic_files import atomic_write_text
from medtext.core.errors import MedtextError


def held_out_predictions(path: Path, rows: int):
    """The fold's predictions if the file is there with every held-out row, else ``None``."""
    from data_modules.readers import read_table

    if not path.is_file():
        return None
    frame = read_table(path, "csv")
    return frame if len(frame) == rows else None


def run_folds(folder: Path, train_file: str, file_format: str | None, fold_of: np.ndarray,
              teacher_args: list[str]) -> list:
    """Fit a teacher per fold on the other folds' rows and predict the fold's; their predictions."""
    from data_modules.readers import read_table

    from medtext.commands.cli import build_cli

    table = read_table(train_file, file_format)
    if len(table) != len(fold_of):
        raise MedtextError(f"{train_file}: {len(table)} rows, but the data module read {len(fold_of)}")
    predictions = []
    for fold in range(int(fold_of.max()) + 1):
        fold_dir = folder / f"fold_{fold}"
        held = fold_of == fold
        output = fold_dir / "predictions.csv"
        done = held_out_predictions(output, int(held.sum()))
        if done is not None:
            print(f"distil: fold {fold}: {output} is complete, not fitted again")
            predictions.append(done)
            continue
        fold_dir.mkdir(parents=True, exist_ok=True)
        train, heldout = fold_dir / "train.csv", fold_dir / "heldout.csv"
        atomic_write_text(train, table[~held].to_csv(index=False))
        atomic_write_text(heldout, table[held].to_csv(index=False))
        print(f"distil: fold {fold}: a teacher fits {int((~held).sum())} rows and predicts {int(held.sum())}")
        # the teachers' last.ckpt are not needed once each fit completes; the user's options come after
        fit = build_cli(["fit", "--keep_last", "false", *teacher_args, "--data.train_file", str(train),
                         "--data.file_format", "csv", "--test_after_fit", "false"])
        best = fit.trainer.checkpoint_callback.best_model_path if fit.trainer.checkpoint_callback else ""
        if not best:
            raise MedtextError(f"fold {fold}: the teacher's config saves no best checkpoint to predict with")
        # at the teacher's own precision (a bf16 fit predicts in bf16: about a third faster on a CPU with
        # avx512_bf16), not the predict default fp32
        build_cli(["predict", "--ckpt_path", str(best), "--data.predict_file", str(heldout), "--data.file_format", "csv",
                   "--trainer.precision", str(fit.trainer.precision), "--predictions.output_file", str(output)])
        predictions.append(held_out_predictions(output, int(held.sum())))
    return predictions
