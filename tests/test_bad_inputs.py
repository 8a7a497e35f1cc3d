"""Bad data files fail early with one clear line naming the file (and the row or line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import write
from data_helpers import GOOD, check_message, module
from medtext.commands import main
from medtext.core.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ bad rows
@pytest.mark.parametrize("content, row", [
    ("text,label\nFever.,x\n,y\nCough.,x\n", 2),
    ('text,label\nFever.,x\nCough.,y\n"",x\n', 3),
])
def test_empty_text(tiny_encoder, tmp_path, content, row):
    path = write(tmp_path / "train.csv", content)
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path)).prepare_data()
    check_message(err, path, f"row {row}", "empty text in column 'text'")


@pytest.mark.parametrize("blank", ["   ", "\t", '" \n  "'])
def test_whitespace_only_text(tiny_encoder, tmp_path, blank):
    path = write(tmp_path / "train.csv", f"text,label\nFever.,x\nCough.,y\n{blank},x\n")
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path)).prepare_data()
    check_message(err, path, "row 3", "empty text")


def test_row_numbers_count_data_rows_not_file_lines(tiny_encoder, tmp_path):
    path = write(tmp_path / "train.csv", 'text,label\n"Fever.\nSecond line.\nThird line.",x\nCough.,y\n  ,x\n')
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path)).prepare_data()
    check_message(err, path, "row 3", "empty text")


def test_empty_text_in_jsonl(tiny_encoder, tmp_path):
    rows = [{"text": "Fever.", "label": "x"}, {"text": "Cough.", "label": "y"}, {"label": "x"}]
    path = write(tmp_path / "train.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path)).prepare_data()
    check_message(err, path, "row 3", "empty text")


def test_empty_text_in_parquet(tiny_encoder, tmp_path):
    path = tmp_path / "train.parquet"
    pd.DataFrame({"text": ["Fever.", None, "Cough."], "label": ["x", "y", "x"]}).to_parquet(path)
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path)).prepare_data()
    check_message(err, path, "row 2", "empty text")


@pytest.mark.parametrize("label", ["", "NaN", "nan", "  "])
def test_missing_label(tiny_encoder, tmp_path, label):
    path = write(tmp_path / "train.csv", f"text,label\nFever.,x\nCough.,y\nRash.,{label}\nPain.,x\n")
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path)).prepare_data()
    check_message(err, path, "row 3", "missing label in column 'label'")


def test_missing_label_in_parquet(tiny_encoder, tmp_path):
    path = tmp_path / "train.parquet"
    pd.DataFrame({"text": ["Fever.", "Cough.", "Rash."], "label": [1.0, 2.0, np.nan]}).to_parquet(path)
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path), label_map={"1": "one", "2": "two"}).prepare_data()
    check_message(err, path, "row 3", "missing label")


def test_label_not_in_labels_file(tiny_encoder, tmp_path):
    labels = write(tmp_path / "labels.csv", "condition_label,condition_name\n1,neoplasms\n2,digestive\n")
    path = write(tmp_path / "train.csv", "text,label\nFever.,1\nCough.,2\nRash.,1\nPain.,7\n")
    dm = module(tiny_encoder, train_file=str(path), labels_file=str(labels))
    assert dm.label_names == ["neoplasms", "digestive"]
    with pytest.raises(DataError) as err:
        dm.prepare_data()
    check_message(err, path, "row 4", "label '7' is not in the label set ['1', '2']")


def test_validation_label_unseen_in_training(tiny_encoder, tmp_path):
    train = write(tmp_path / "train.csv", GOOD)
    val = write(tmp_path / "val.csv", "text,label\nFever.,x\nCough.,z\n")
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(train), val_file=str(val)).prepare_data()
    check_message(err, val, "row 2", "label 'z' is not in the label set")


def test_label_map_wins_and_is_enforced(tiny_encoder, tmp_path):
    path = write(tmp_path / "train.csv", GOOD)
    dm = module(tiny_encoder, train_file=str(path), label_map={"x": "ex", "w": "double-u"})
    assert dm.label_names == ["ex", "double-u"]
    with pytest.raises(DataError) as err:
        dm.prepare_data()
    check_message(err, path, "row 2", "label 'y' is not in the label set")


def test_labels_written_as_class_names_or_floats_are_mapped(tiny_encoder, tmp_path):
    labels = write(tmp_path / "labels.csv", "condition_label,condition_name\n1,neoplasms\n2,digestive\n3,heart\n")
    path = write(tmp_path / "train.csv", "text,label\nFever.,neoplasms\nCough.,2.0\nRash.,3\nPain.,digestive\n")
    dm = module(tiny_encoder, train_file=str(path), labels_file=str(labels))
    dm.prepare_data()
    assert dm.load_split("train")["labels"].tolist() == [0, 1, 2, 1]


def test_class_without_training_example_warns_naming_it(tiny_encoder, tmp_path):
    labels = write(tmp_path / "labels.csv", "value,name\n1,neoplasms\n2,digestive\n3,heart\n4,nerves\n")
    path = write(tmp_path / "train.csv", "text,label\nFever.,1\nCough.,3\nRash.,1\nPain.,3\n")
    with pytest.warns(UserWarning, match=r"train\.csv: 2 of 4 classes have no training example: \['digestive', 'nerves'\]"):
        module(tiny_encoder, train_file=str(path), labels_file=str(labels)).prepare_data()


def test_labels_with_spaces_after_commas_are_not_bad_input(tiny_encoder, tmp_path):
    path = write(tmp_path / "train.csv", "text,label\nFever., x\nCough., y\nRash., x\nPain., y\n")
    dm = module(tiny_encoder, train_file=str(path))
    dm.prepare_data()
    assert len(dm.label_names) == 2
    assert dm.load_split("train")["labels"].tolist() == [0, 1, 0, 1]


# ------------------------------------------------------------------------------------------ warnings only
def test_conflicting_duplicates_only_warn(tiny_encoder, tmp_path):
    rows = ["Fever and cough.,x", "Fever and cough.,y", "Itchy rash.,y", "Itchy rash.,x", "Headache.,x",
            "Headache.,x", "Chest pain.,y", "Nausea.,x", "Back pain.,y", "Dizziness.,x"]
    path = write(tmp_path / "train.csv", "text,label\n" + "\n".join(rows) + "\n")
    dm = module(tiny_encoder, train_file=str(path), val_fraction=0.2)
    with pytest.warns(UserWarning, match=r"train\.csv: 2 duplicated texts carry conflicting labels"):
        dm.prepare_data()
    dm.setup("fit")
    assert len(dm.datasets["train"]) + len(dm.datasets["val"]) == len(rows)
    assert dm.load_split("train")["labels"].tolist() == [0, 1, 1, 0, 0, 0, 1, 0, 1, 0]
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape[0] == min(dm.batch_size, len(dm.datasets["train"]))


# ------------------------------------------------------------------------------------------ the CLI
CLI_CASES = {
    "empty_text": ("train.csv", "text,label\nFever and cough.,x\nChest pain.,y\n   ,x\nItchy rash.,y\n", None,
                   "row 3", "empty text"),
    "unknown_label": ("train.csv", "text,label\nFever and cough.,1\nChest pain.,2\nItchy rash.,9\nHeadache.,1\n",
                      "value,name\n1,neoplasms\n2,digestive\n", "row 3", "label '9' is not in the label set"),
    "missing_label_column": ("train.csv", "text,condition\nFever and cough.,x\nChest pain.,y\n", None,
                             None, "label column 'label' not found"),
}


def write_case(case: str, encoder: str, folder: Path) -> tuple[Path, Path]:
    """The bad data file of ``case`` and a fit config reading it, in ``folder``.

    ``empty_text`` and ``unknown_label`` fail in ``prepare_data`` inside ``trainer.fit``;
    ``missing_label_column`` fails earlier, when the CLI links ``data.label_names`` to the model.
    """
    name, content, labels, _, _ = CLI_CASES[case]
    data_file = write(folder / name, content)
    init_args = {"train_file": str(data_file), "max_length": 32, "batch_size": 2}
    if labels:
        init_args["labels_file"] = str(write(folder / "labels.csv", labels))
    config = {
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 1, "logger": False,
                    "enable_checkpointing": False, "enable_progress_bar": False,
                    "default_root_dir": str(folder / "runs")},
        "model": {"class_path": "medtext.TextClassifier", "init_args": {"encoder_name": encoder}},
        "data": {"class_path": "data_modules.AbstractsDataModule", "init_args": init_args},
    }
    return data_file, write(folder / "config.yaml", json.dumps(config))  # JSON is valid YAML


def check_one_line(case: str, data_file: Path, returncode: int, stderr: str) -> None:
    _, _, _, where, contains = CLI_CASES[case]
    assert "Traceback" not in stderr, stderr
    assert returncode == 2, (returncode, stderr[-2000:])
    errors = [line for line in stderr.splitlines() if line.startswith("medtext: error:")]
    assert len(errors) == 1, stderr
    assert stderr.count("medtext: error:") == 1
    line = errors[0]
    assert line.startswith(f"medtext: error: {data_file}: "), line
    if where:
        assert f": {where}: " in line, line
    assert contains in line, line
    assert not (data_file.parent / "runs").exists() or not any((data_file.parent / "runs").rglob("*.ckpt"))


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_reports_bad_data_in_one_line(tiny_encoder, tmp_path, capsys, case):
    """``medtext fit`` in this process (``main``, what ``python -m medtext`` runs): exit status 2, one line."""
    data_file, config = write_case(case, tiny_encoder, tmp_path)
    returncode = main(["fit", "--config", str(config)])
    check_one_line(case, data_file, returncode, capsys.readouterr().err)


@pytest.mark.slow  # three processes (they run at once)
def test_python_m_medtext_reports_bad_data_in_one_line(tiny_encoder, tmp_path_factory):
    """The same through ``python -m medtext fit``: a real process's whole stderr, and its exit status."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    procs = {}
    for case in CLI_CASES:
        folder = tmp_path_factory.mktemp(f"cli_{case}")
        data_file, config = write_case(case, tiny_encoder, folder)
        procs[case] = (data_file, subprocess.Popen(
            [sys.executable, "-m", "medtext", "fit", "--config", str(config)], cwd=folder,
            env=dict(env, MEDTEXT_CACHE_DIR=str(folder / "cache")), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    for case, (data_file, proc) in procs.items():
        try:
            _, stderr = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        check_one_line(case, data_file, proc.returncode, stderr)


def test_whitespace_only_line_inside_a_file_is_an_empty_text(tiny_encoder, tmp_path):
    path = write(tmp_path / "predict.csv", "text\nFever.\n   \nCough.\n\n\n")
    dm = module(tiny_encoder, predict_file=str(path), label_map={"a": "a", "b": "b"})
    with pytest.raises(DataError) as err:
        dm.prepare_data()
    check_message(err, path, "row 2", "empty text")
