"""``python -m medtext check`` and fit's data check: counts, token lengths, duplicates, leaks, drop_leaked."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import run, tiny_config
from transformers import AutoTokenizer

from data_modules import AbstractsDataModule
from data_modules.data_check import check_data, normalise
from medtext.commands import main


def write_csv(path: Path, rows: list[dict]) -> str:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def text(i: int, words: int = 3) -> str:
    return f"abstract {i} about " + " ".join(["tumor growth"] * words) + f" case {i}."


def test_normalisation_is_casefold_no_punctuation_collapsed_whitespace():
    assert normalise("  Tumor-Growth,\tIN  p53 (case 7)! ") == normalise("tumor growth in P53 case 7") == \
        "tumor growth in p53 case 7"


def test_counts_percentiles_and_truncation(tiny_encoder, tmp_path):
    rows = [{"text": text(i, words=i % 9 + 1), "label": "ab"[i % 3 == 0]} for i in range(30)]
    train = write_csv(tmp_path / "train.csv", rows)
    dm = AbstractsDataModule(train_file=train, tokenizer_name=tiny_encoder, max_length=16, val_fraction=0.2)
    report = check_data(dm)
    lengths = np.array([len(ids) for ids in AutoTokenizer.from_pretrained(tiny_encoder)([r["text"] for r in rows])
                        ["input_ids"]])
    from data_modules.sampling import stratified_split
    train_idx, val_idx = stratified_split(np.array([r["label"] == "b" for r in rows], dtype=int), 0.2, 42)
    for name, idx in (("train", train_idx), ("val", val_idx)):
        stats = report["splits"][name]
        assert stats["rows"] == len(idx)
        labels = [rows[i]["label"] for i in idx]
        assert stats["class_counts"] == {"a": labels.count("a"), "b": labels.count("b")}
        expected = {f"p{p}": int(np.percentile(lengths[idx], p, method="higher")) for p in (50, 90, 99)}
        assert stats["token_length"] == {**expected, "max": int(lengths[idx].max())}
        assert stats["truncated"] == int((lengths[idx] > 16).sum()) > 0
    assert report["splits"]["val"]["carved_from_train"] == {"val_fraction": 0.2, "split_seed": 42}
    assert report["splits"]["train"]["token_length"]["max"] > 16, "lengths beyond max_length: tokenized in full"
    assert report["across"]["train/val"] == {"exact": 0, "near": 0, "examples": [], "conflicting_labels": 0}


@pytest.fixture
def leaked(tmp_path) -> dict:
    """Train with 2 exact copies of test rows (one relabelled), 1 near copy (case and punctuation), 1 exact
    copy of a val row; inside train one exact duplicate (conflicting labels) and one near duplicate."""
    test = [{"text": text(100 + i), "label": "ab"[i % 2]} for i in range(4)]
    val = [{"text": text(200 + i), "label": "ab"[i % 2]} for i in range(4)]
    train = [{"text": text(i), "label": "ab"[i % 2]} for i in range(16)]
    train += [dict(test[0]), {"text": test[1]["text"], "label": "a"},  # test row 2 is "b": conflicting
              {"text": test[2]["text"].upper().replace(".", " !"), "label": test[2]["label"]},
              dict(val[0]), {"text": text(0), "label": "b"}, {"text": text(1).replace(".", ";"), "label": "b"}]
    files = {name: write_csv(tmp_path / f"{name}.csv", rows) for name, rows in
             (("train", train), ("val", val), ("test", test))}
    return {"files": files, "leaked_train_rows": [16, 17, 18, 19]}


def test_leaked_splits_duplicates_and_conflicts(leaked, tiny_encoder):
    files = leaked["files"]
    dm = AbstractsDataModule(train_file=files["train"], val_file=files["val"], test_file=files["test"],
                             tokenizer_name=tiny_encoder, max_length=64)
    report = check_data(dm)
    assert report["splits"]["train"]["duplicates"] == {"exact": 1, "near": 1}
    assert report["splits"]["train"]["conflicting_labels"] == 1  # text(0): a and b
    test_pair = report["across"]["train/test"]
    assert (test_pair["exact"], test_pair["near"], test_pair["conflicting_labels"]) == (2, 1, 1)
    assert test_pair["examples"] == ["test 1 = train 17", "test 2 = train 18", "test 3 = train 19"]
    assert (report["across"]["train/val"]["exact"], report["across"]["train/val"]["near"]) == (1, 0)
    assert report["across"]["val/test"]["exact"] == 0
    assert report["leaked"] == {"val": 1, "test": 3} and report["leaked_train_rows"] == 4


def fit_config(tmp_path: Path, encoder: str, files: dict) -> Path:
    return tiny_config(tmp_path / "fit.yaml", encoder, {"train_file": files["train"], "val_file": files["val"],
                                                         "test_file": files["test"]}, max_steps=1,
                       limit_val_batches=1, num_sanity_val_steps=0)


def test_fit_warns_and_writes_the_report_in_the_run_folder(leaked, tiny_encoder, tmp_path, capsys, recwarn):
    cli = run("fit", "--config", str(fit_config(tmp_path, tiny_encoder, leaked["files"])))
    assert not [w for w in recwarn if "exists and is not empty" in str(w.message)], "the CSV logger's folder first"
    out, err = capsys.readouterr()
    warning = [line for line in err.splitlines() if "WARNING: data leak" in line]
    assert len(warning) == 1 and "1 of 4 val, 3 of 4 test abstracts also appear in train" in warning[0]
    assert "drop_leaked true removes the 4 training copies" in warning[0]
    assert "train/test 2 exact, 1 near" in out and "drop_leaked: removed" not in out
    folder = Path("runs/tiny/version_0")
    report = json.loads((folder / "data_report.json").read_text())
    assert report["leaked"] == {"val": 1, "test": 3} and report["drop_leaked"] is False
    assert "| train/test | 2 | 1 | 1 |" in (folder / "data_report.md").read_text()
    assert len(cli.datamodule.datasets["train"]) == 22 and cli.datamodule.hparams["drop_leaked"] is False


def test_drop_leaked_removes_exactly_the_leaked_training_rows(leaked, tiny_encoder, tmp_path, capsys):
    cli = run("fit", "--config", str(fit_config(tmp_path, tiny_encoder, leaked["files"])),
              "--data.init_args.drop_leaked", "true")
    out = capsys.readouterr().out
    assert "drop_leaked: removed 4 of 22 training abstracts (1 also in val, 3 also in test;" in out
    kept = cli.datamodule.datasets["train"].indices.tolist()
    assert kept == [i for i in range(22) if i not in leaked["leaked_train_rows"]]
    assert cli.datamodule.hparams["drop_leaked"] is True


def test_drop_leaked_with_a_validation_split_carved_from_train(tiny_encoder, tmp_path, capsys):
    rows = [{"text": text(i % 10), "label": "ab"[i % 10 % 2]} for i in range(20)]  # every text twice
    dm = AbstractsDataModule(train_file=write_csv(tmp_path / "train.csv", rows), tokenizer_name=tiny_encoder,
                             max_length=64, val_fraction=0.2, drop_leaked=True)
    dm.setup("fit")
    val_texts = {rows[i]["text"] for i in dm.datasets["val"].indices}
    carved_train = sorted(set(range(20)) - set(dm.datasets["val"].indices.tolist()))
    leaked = [i for i in carved_train if rows[i]["text"] in val_texts]
    assert dm.datasets["train"].indices.tolist() == [i for i in carved_train if i not in leaked] and leaked
    assert (f"drop_leaked: removed {len(leaked)} of 16 training abstracts ({len(leaked)} also in val;"
            in capsys.readouterr().out)


def test_check_command_prints_the_summary_and_exits_0(leaked, tiny_encoder, tmp_path, capsys):
    config = fit_config(tmp_path, tiny_encoder, leaked["files"])
    assert main(["check", "--config", str(config), "--report_dir", str(tmp_path / "report")]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("data check (") and "casefold" in lines[0]
    assert any(line.strip().startswith("train  22 rows | a 12, b 10") for line in lines)
    assert "train/test 2 exact, 1 near, 1 conflicting labels (e.g. test 1 = train 17;" in out
    assert "WARNING: data leak: 1 of 4 val, 3 of 4 test abstracts" in err
    assert json.loads((tmp_path / "report" / "data_report.json").read_text())["leaked_train_rows"] == 4
    assert not Path("runs").exists(), "check writes no run folder"


def test_check_of_a_missing_file_is_one_line(tiny_encoder, tmp_path, capsys):
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {"train_file": str(tmp_path / "nope.csv")})
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("medtext: error: ") and "nope.csv" in err


def test_multi_label_counts_and_abstracts_with_no_label(tiny_encoder, tmp_path, capsys):
    labels = [(1, 0), (1, 1), (0, 0), (0, 1), (0, 0), (1, 0)] * 3
    rows = [{"text": text(i), "x": str(x), "y": str(y)} for i, (x, y) in enumerate(labels)]
    train = write_csv(tmp_path / "train.csv", rows)
    val = write_csv(tmp_path / "val.csv", rows[:6])
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {"train_file": train, "val_file": val,
                                                               "label_columns": ["x", "y"]})
    assert main(["check", "--config", str(config), "--report_dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "data_report.json").read_text())
    assert report["multi_label"] is True
    assert report["splits"]["train"]["class_counts"] == {"x": 9, "y": 6} and report["splits"]["train"]["no_label"] == 6
    assert report["splits"]["val"]["class_counts"] == {"x": 3, "y": 2} and report["splits"]["val"]["no_label"] == 2
    assert report["leaked"] == {"val": 6}
    assert "x 9, y 6, no label 6" in capsys.readouterr().out
    assert "| (no label) | 6 | 2 |" in (tmp_path / "data_report.md").read_text()
    assert yaml.safe_load((tmp_path / "fit.yaml").read_text())["data"]["init_args"]["label_columns"] == ["x", "y"]


def test_windows_lengths_are_full_lengths_and_predict_is_checked(tiny_encoder, tmp_path):
    rows = [{"text": text(i, words=2 + 3 * i), "label": "ab"[i % 2]} for i in range(8)]
    train = write_csv(tmp_path / "train.csv", rows)
    predict = write_csv(tmp_path / "predict.csv", [{"text": rows[3]["text"].upper()}, {"text": "new"}])
    dm = AbstractsDataModule(train_file=train, val_file=train, predict_file=predict, tokenizer_name=tiny_encoder,
                             max_length=16, long_text="windows", max_windows=2)
    report = check_data(dm)
    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(tiny_encoder)([r["text"] for r in rows])["input_ids"]]
    assert report["splits"]["train"]["token_length"]["max"] == max(lengths) > 16 * 2
    assert report["splits"]["train"]["truncated"] == sum(n > 16 for n in lengths)
    assert report["splits"]["predict"]["rows"] == 2 and "class_counts" not in report["splits"]["predict"]
    assert report["across"]["train/predict"]["near"] == 1 and report["leaked"] == {"val": 8}


def test_check_lists_every_row_whose_text_cannot_be_used(tiny_encoder, tmp_path, capsys):
    rows = "".join(f"P{i},{'  ' if i % 4 == 0 else f'abstract number {i}'},{'ab'[i % 2]}\n" for i in range(1, 61))
    train = tmp_path / "train.csv"
    train.write_text("pmid,text,label\n" + rows)
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {"train_file": str(train), "id_column": "pmid"})
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    shown = ", ".join(f"row {i} (id P{i})" for i in range(4, 41, 4))
    assert err == f"medtext: error: {train}: row 4: empty text in column 'text' (id P4); 15 such rows: {shown}, and 5 more\n"
