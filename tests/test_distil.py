"""``medtext distil`` on the tiny encoder: stratified folds that partition the training file, each
teacher's predictions of the rows it did not train on merged row for row into the soft targets, a
student fitted on them, and a rerun that fits nothing again; and the command as a user runs it, on
real multi-label HoC rows."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import medtext.commands.cli as cli_module
from cli_helpers import in_folder, run_medtext, tiny_config
from conftest import SHARED_DATA
from data_helpers import text_of
from medtext.commands import main
from medtext.commands.cli import build_cli
from medtext.commands.distil import stratified_folds
from medtext.core.metrics import metric_label

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
                                                                                   capsys, caplog, monkeypatch):
    data = {"train_file": str(own_csv), "text_column": "abstract", "label_column": "diagnosis", "id_column": "pmid"}
    teacher = tiny_config(tmp_path / "teacher.yaml", tiny_encoder, data, precision="bf16-mixed")
    student = tiny_config(tmp_path / "student.yaml", tiny_encoder, data)
    out = tmp_path / "distil"
    argv = ["distil", "--config", str(teacher), "--distil.output_dir", str(out), "--distil.folds", "2",
            "--distil.student_config", str(student)]
    precisions = []  # each CLI run's trainer precision: the teachers' predicts run at their fits'

    def recording(args, *rest, **options):
        cli = build_cli(args, *rest, **options)
        precisions.append((args[0], str(cli.trainer.precision)))
        return cli
    monkeypatch.setattr(cli_module, "build_cli", recording)
    with in_folder(tmp_path):
        assert main(argv) == 0
    assert precisions == [("fit", "bf16-mixed"), ("predict", "bf16-mixed")] * 2 + [("fit", "32-true")]
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


@pytest.mark.slow  # a process with two teachers' fits and predicts, then the student's fit
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
def test_distil_command_on_real_hoc_rows_gives_multi_label_soft_targets_the_student_trains_on(tiny_encoder, tmp_path):
    data = tmp_path / "hoc"
    data.mkdir()
    for name, rows in (("hoc_train.csv", 60), ("hoc_val.csv", 20)):  # tab-separated, the text's header empty
        lines = (SHARED_DATA / "hoc" / name).read_text(encoding="utf-8").splitlines(keepends=True)
        (data / name).write_text("".join(lines[:rows + 1]), encoding="utf-8")
    shutil.copy(SHARED_DATA / "hoc" / "labels.json", data)
    config = tiny_config(tmp_path / "hoc.yaml", tiny_encoder, {"data_dir": str(data)}, "data_modules.HoCDataModule")
    result = run_medtext("distil", "--config", str(config), "--distil.folds", "2", "--distil.output_dir", "distil",
                         "--distil.student_config", str(config), f"--distil.student_options=--data.data_dir {data}",
                         cwd=tmp_path)
    names = [text.split(":")[0] for text in json.loads((data / "labels.json").read_text()).values()]
    soft = read(tmp_path / "distil" / "soft_targets.csv")
    columns = [f"prob_{metric_label(name)}" for name in names]
    assert list(soft[0]) == ["row_id", *columns] and [r["row_id"] for r in soft] == [str(i) for i in range(1, 61)]
    probabilities = np.array([[float(r[c]) for c in columns] for r in soft])
    assert ((probabilities > 0) & (probabilities < 1)).all()
    assert not np.allclose(probabilities.sum(axis=1), 1), "one sigmoid per hallmark, not a softmax over them"
    for fold in (0, 1):
        held = (tmp_path / "distil" / f"fold_{fold}" / "heldout.csv").read_text(encoding="utf-8")
        assert held.startswith(",label-1,"), "the fold files keep HoC's columns"
        rows = read(tmp_path / "distil" / f"fold_{fold}" / "heldout.csv")
        assert len(rows) == 30 and any(all(r[k] == "0" for k in r if k) for r in rows), "abstracts without a label"
    assert "x the teacher's probabilities" in result.stdout + result.stderr, "the student trained on them"
    # beside the user's files only the distil folder, the fits' runs and the token cache (MEDTEXT_CACHE_DIR)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "distil", "hoc", "hoc.yaml", "runs"]
