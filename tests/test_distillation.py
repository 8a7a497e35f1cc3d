"""Distillation: a teacher's predictions file of the training file becomes soft training targets
(``data.soft_targets_file``), matched by row id and class name; validation keeps the true labels."""

import csv

import numpy as np
import pytest

from cli_helpers import run, tiny_config
from conftest import write
from data_modules.soft_targets import mix_targets, teacher_probabilities
from medtext.core.errors import DataError

NAMES = ["neoplasms", "digestive system diseases", "cardiovascular diseases"]
HEADER = "row,label,prob_cardiovascular_diseases,prob_neoplasms,prob_digestive_system_diseases\n"  # any order


def teacher_file(tmp_path, rows: str, header: str = HEADER):
    return write(tmp_path / "teacher.csv", header + rows)


def test_teacher_probabilities_are_matched_by_class_name_and_row(tmp_path):
    path = teacher_file(tmp_path, "1,neoplasms,0.1,0.7,0.2\n2,x,0.5,0.25,0.25\n")
    got = teacher_probabilities(path, NAMES, ["1", "2"], multi_label=False)
    np.testing.assert_allclose(got, [[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    rounded = teacher_file(tmp_path, "1,a,0.333333,0.333333,0.333333\n")  # predict's 6 decimals
    np.testing.assert_allclose(teacher_probabilities(rounded, NAMES, ["1"], False).sum(1), 1.0, rtol=1e-6)
    multi = teacher_file(tmp_path, "1,a,0.9,0.8,0.0\n")  # multi-label: each label its own probability
    np.testing.assert_allclose(teacher_probabilities(multi, NAMES, ["1"], True), [[0.8, 0.0, 0.9]])


@pytest.mark.parametrize("rows, ids, says", [
    ("1,a,0.1,0.7,0.2\n", ["1", "2"], r"teacher.csv: 1 rows, but the training file has 2; write it with predict"),
    ("1,a,0.1,0.7,0.2\n3,a,0.1,0.7,0.2\n", ["1", "2"], r"teacher.csv: row 2: id '3', but the training file's row 2 is '2'"),
    ("1,a,0.1,high,0.2\n", ["1"], r"teacher.csv: row 1: prob_neoplasms holds 'high'; expected a probability"),
    ("1,a,0.1,1.5,0.2\n", ["1"], r"teacher.csv: row 1: prob_neoplasms holds '1.5'; expected a probability in \[0, 1\]"),
    ("1,a,0.1,nan,0.2\n", ["1"], r"teacher.csv: row 1: prob_neoplasms holds 'nan'"),
    ("1,a,0,0,0\n", ["1"], r"teacher.csv: row 1: the teacher's probabilities are all 0"),
])
def test_a_teacher_file_that_does_not_fit_is_one_line_naming_file_and_row(tmp_path, rows, ids, says):
    with pytest.raises(DataError, match=says):
        teacher_probabilities(teacher_file(tmp_path, rows), NAMES, ids, multi_label=False)


def test_a_teacher_of_other_classes_is_refused(tmp_path):
    path = teacher_file(tmp_path, "1,a,0.5,0.5\n", header="row,label,prob_neoplasms,prob_other\n")
    with pytest.raises(DataError, match=r"teacher probability column 'prob_digestive_system_diseases' not found"):
        teacher_probabilities(path, NAMES, ["1"], multi_label=False)


def test_mix_targets_single_and_multi_label():
    teacher = np.array([[0.2, 0.6, 0.2], [0.5, 0.5, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(mix_targets(np.array([0, 2]), teacher, 0.25),
                               [[0.8, 0.15, 0.05], [0.125, 0.125, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(mix_targets(np.array([[1, 0, 1], [0, 0, 0]], dtype=np.float32), teacher, 0.5),
                               [[0.6, 0.3, 0.6], [0.25, 0.25, 0.0]], rtol=1e-6)
    assert mix_targets(np.array([1]), teacher[:1], 0.0).tolist() == [[0.0, 1.0, 0.0]]  # weight 0: the labels


def test_a_weight_outside_zero_one_is_refused():
    from data_modules import AbstractsDataModule

    with pytest.raises(DataError, match=r"data.soft_targets_weight must be in \[0, 1\], not 1.5"):
        AbstractsDataModule(train_file="train.csv", soft_targets_weight=1.5)


@pytest.mark.slow
def test_a_student_fits_on_its_teachers_predictions(tiny_encoder, tmp_path):
    """Teacher: fit and predict the training file; student (its own class order, validation carved
    from the training file): fit on those soft targets (weight 0.6)."""
    data = {"num_train": 40, "num_val": 8, "num_test": 8}
    config = tiny_config(tmp_path / "teacher.yaml", tiny_encoder, data, "data_modules.SyntheticAbstractsDataModule")
    teacher = run("fit", "--config", str(config))
    train_file = teacher.datamodule.split_file("train")
    run("predict", "--ckpt_path", teacher.trainer.checkpoint_callback.best_model_path,
        "--data.predict_file", train_file, "--predictions.output_file", str(tmp_path / "teacher.csv"))
    student_config = tiny_config(tmp_path / "student.yaml", tiny_encoder, {"train_file": train_file, "val_fraction": 0.2},
                                 max_steps=3)
    student = run("fit", "--config", str(student_config), "--data.init_args.soft_targets_file",
                  str(tmp_path / "teacher.csv"), "--data.init_args.soft_targets_weight", "0.6")
    dm = student.datamodule
    with open(tmp_path / "teacher.csv") as f:
        rows = list(csv.DictReader(f))
    names = dm.label_names
    probabilities = np.array([[float(r[f"prob_{n.replace(' ', '_')}"]) for n in names] for r in rows])
    labels = dm.load_split("train")["labels"]
    expected = 0.4 * np.eye(len(names))[labels] + 0.6 * probabilities / probabilities.sum(1, keepdims=True)
    np.testing.assert_allclose(dm.datasets["train"].labels, expected, rtol=1e-5)
    assert dm.datasets["val"].labels is labels  # validation (carved from train) keeps the true labels
    assert names != teacher.datamodule.label_names and sorted(names) == sorted(teacher.datamodule.label_names)
    assert student.trainer.global_step == 3 and np.isfinite(student.trainer.callback_metrics["train/loss"].item())
    assert student.model.hparams.label_names == names
