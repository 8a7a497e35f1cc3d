"""``medtext distil`` on the tiny encoder: stratified folds that partition the training file, each
teacher's predictions of the rows it did not train on merged row for row into the soft targets, a
student fitted on them, and a rerun that fits nothing again."""

import csv
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import in_folder, tiny_config
from data_helpers import text_of
from medtext.commands import main
from medtext.commands.distil import stratified_folds

NAMES = ["alpha", "beta", "gamma"]


def test_folds_partition_the_rows_and_hold_every_class_evenly():
    labels = np.array([0] * 10 + [1] * 7 + [2] * 3)
    fold_of = stratified_folds(labels, 3, seed=5)
    assert sorted(set(fold_of)) == [0, 1, 2] and len(fold_of) == len(labels)
    for name in range(3):
        counts = np.bincount(fold_of[labels == name], minlength=3)
        assert counts.max() - counts.min() <= 1, (name, counts)
    assert (stratified_folds(labels, 3, seed=5) == fold_of).all()
    multi = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 3)
    assert sorted(np.bincount(stratified_folds(multi, 2, seed=0))) == [6, 6]


@pytest.fixture
def own_csv(vocabulary, tmp_path) -> Path:
    path = tmp_path / "own.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([("pmid", "abstract", "diagnosis"),
                                      *((f"P{i}", text_of(vocabulary, 6 + i % 5, shift=3 * (i % 3)), NAMES[i % 3])
                                        for i in range(30))])
    return path


def read(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path, newline="")))


def test_distil_merges_out_of_fold_predictions_row_for_row_and_trains_the_student(tiny_encoder, own_csv, tmp_path,
                                                                                   capsys, caplog):
    data = {"train_file": str(own_csv), "text_column": "abstract", "label_column": "diagnosis", "id_column": "pmid"}
    teacher = tiny_config(tmp_path / "teacher.yaml", tiny_encoder, data)
    student = tiny_config(tmp_path / "student.yaml", tiny_encoder, data)
    out = tmp_path / "distil"
    argv = ["distil", "--config", str(teacher), "--distil.output_dir", str(out), "--distil.folds", "2",
            "--distil.student_config", str(student)]
    with in_folder(tmp_path):
        assert main(argv) == 0
    printed = capsys.readouterr().out
    rows = read(own_csv)
    soft = read(out / "soft_targets.csv")
    assert [r["row_id"] for r in soft] == [r["pmid"] for r in rows]  # the training file's order and ids
    for fold in (0, 1):
        held = read(out / f"fold_{fold}" / "heldout.csv")
        trained = {r["pmid"] for r in read(out / f"fold_{fold}" / "train.csv")}
        predicted = read(out / f"fold_{fold}" / "predictions.csv")
        assert trained.isdisjoint(r["pmid"] for r in held) and len(trained) + len(held) == len(rows)
        by_id = {r["row_id"]: r for r in soft}
        for row, prediction in zip(held, predicted):  # each soft target is its fold's teacher's probability
            for name in NAMES:
                assert float(by_id[row["pmid"]][f"prob_{name}"]) == pytest.approx(float(prediction[f"prob_{name}"]))
        assert not list((out / f"fold_{fold}").glob("*.ckpt"))
    assert "the student's best checkpoint" in printed
    assert f"x the teacher's probabilities ({out / 'soft_targets.csv'})" in caplog.text  # the student used them
    with in_folder(tmp_path):  # a rerun (a requeued job): no teacher is fitted again
        assert main([*argv[:-2]]) == 0
    assert printed.count("a teacher fits") == 2 and capsys.readouterr().out.count("not fitted again") == 2


def test_an_output_folder_with_other_files_is_refused(tiny_encoder, own_csv, tmp_path, capsys):
    data = {"train_file": str(own_csv), "text_column": "abstract", "label_column": "diagnosis"}
    teacher = tiny_config(tmp_path / "teacher.yaml", tiny_encoder, data)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with in_folder(tmp_path):
        assert main(["distil", "--config", str(teacher), "--distil.output_dir", str(mine)]) == 2
    assert "did not write" in capsys.readouterr().err and (mine / "notes.txt").read_text() == "keep me"


def test_a_teacher_with_other_classes_is_one_clear_error():
    import pandas as pd

    from medtext.commands.distil import merge_out_of_fold
    from medtext.core.errors import MedtextError

    fold_of = np.array([0, 1, 0, 1])
    other = pd.DataFrame({"row": ["1", "2"], "prob_1": [0.5, 0.5], "prob_2": [0.5, 0.5]})
    with pytest.raises(MedtextError, match="fold 0: the teacher predicts prob_1, prob_2, not prob_alpha"):
        merge_out_of_fold(fold_of, [other, other], ["a", "b", "c", "d"], ["alpha", "beta"])
