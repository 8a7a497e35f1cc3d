"""Distillation targets: a teacher's probabilities for the training file, mixed into the labels.

A bigger model (the teacher) writes its probabilities for the training file with ``predict``; a smaller
one (the student) trains on their mix with the labels (``data.soft_targets_file``, ``data.soft_targets_weight``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from pytorch_lightning.utilities import rank_zero_info

from medtext.core.errors import DataError

from .readers import read_table, require_column


def check_weight(weight: float) -> float:
    if not 0.0 <= weight <= 1.0:
        raise DataError(f"data.soft_targets_weight must be in [0, 1], not {weight}")
    return weight


def distillation_targets(path: str | Path, weight: float, train: dict, label_names: Sequence[str],
                         multi_label: bool) -> np.ndarray:
    """The training targets of a data module's ``train`` split (its ``labels`` and ``row_ids``).
    Validation, test and threshold tuning keep the true labels; the deployed model is the student alone.

    The teacher (e.g. ``configs/medical_abstracts/mpnet_mlp.yaml``) writes its calibrated probabilities
    for every row of the training file::

        python -m medtext predict --ckpt_path teacher.ckpt --data.predict_file train.csv \\
            --predictions.output_file teacher_train.csv
        python -m medtext fit --config configs/medical_abstracts/minilm_mlp.yaml \\
            --data.soft_targets_file teacher_train.csv
    """
    teacher = teacher_probabilities(path, label_names, train["row_ids"], multi_label)
    rank_zero_info(f"training targets: {1 - weight:g} x the label + {weight:g} x the teacher's probabilities ({path})")
    return mix_targets(train["labels"], teacher, weight)


def teacher_probabilities(path: str | Path, label_names: Sequence[str], row_ids: Sequence[str],
                          multi_label: bool) -> np.ndarray:
    """A (rows, labels) float32 matrix from a predictions file of the training file.

    Its first column must be the training file's row ids in order (the file ``predict`` wrote for it),
    and it needs a ``prob_<class>`` column per class, matched by class name (any column order).
    """
    from medtext.core.metrics import metric_label

    frame = read_table(path, "csv")
    if len(frame) != len(row_ids):
        raise DataError(f"{path}: {len(frame)} rows, but the training file has {len(row_ids)}; "
                        "write it with predict --data.predict_file <the training file>")
    for row, (theirs, ours) in enumerate(zip(frame.iloc[:, 0].tolist(), row_ids), start=1):
        if str(theirs).strip() != str(ours).strip():
            raise DataError(f"{path}: row {row}: id {theirs!r}, but the training file's row {row} is {ours!r}")
    columns = [f"prob_{metric_label(name)}" for name in label_names]
    probabilities = np.zeros((len(frame), len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        for row, value in enumerate(require_column(frame, path, column, "teacher probability").tolist(), start=1):
            try:
                probabilities[row - 1, j] = float(value)
            except ValueError:
                raise DataError(f"{path}: row {row}: {column} holds {value!r}; expected a probability") from None
            if not 0.0 <= probabilities[row - 1, j] <= 1.0:  # also NaN
                raise DataError(f"{path}: row {row}: {column} holds {value!r}; expected a probability in [0, 1]")
    if not multi_label:
        sums = probabilities.sum(axis=1, keepdims=True)
        if (sums <= 0).any():
            row = int(np.flatnonzero(sums[:, 0] <= 0)[0]) + 1
            raise DataError(f"{path}: row {row}: the teacher's probabilities are all 0")
        probabilities /= sums  # the file's rounding (6 decimals) undone: each row sums to 1
    return probabilities


def mix_targets(labels: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * labels + weight * teacher``; class ids (single-label) become one-hot rows first.

    The cross-entropy with these targets is ``(1 - w) * CE(label) + w * CE(teacher)``: the distillation
    loss at temperature 1 (Hinton et al., 2015), up to the teacher's entropy; for multi-label data each
    label's binary cross-entropy mixes the same way.

    >>> mix_targets(np.array([1]), np.array([[0.2, 0.8]], dtype=np.float32), 0.5).tolist()
    [[0.10000000149011612, 0.8999999761581421]]
    """
    hard = labels.astype(np.float32) if labels.ndim == 2 else np.eye(teacher.shape[1], dtype=np.float32)[labels]
    return ((1.0 - weight) * hard + weight * teacher).astype(np.float32)
