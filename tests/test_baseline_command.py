"""``medtext baseline``: a method on a task config's data, reported exactly as ``medtext test`` reports a
fine-tuned checkpoint; ``medtext compare`` on the two; one-line errors for what the data cannot support."""

import csv
import json
from pathlib import Path

import pytest

from cli_helpers import run, tiny_config
from data_modules.synthetic import generate_abstracts
from medtext.commands import main
from test_multilabel import write_multilabel_csv

REPORT_FILES = {"test_metrics.json", "test_per_class.csv", "test_confusion_matrix.csv", "test_confusion_matrix.png",
                "reliability.png", "test_predictions.csv", "metrics.csv", "hparams.yaml"}


def write_single_label_csvs(folder: Path) -> dict:
    for split, n, seed in (("train", 60, 1), ("val", 30, 2), ("test", 25, 3)):
        rows = generate_abstracts(n, seed=seed, label_noise=0.0)
        with open(folder / f"{split}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(rows)
    return {"train_file": "train.csv", "val_file": "val.csv", "test_file": "test.csv"}


def header(path: Path) -> list[str]:
    return next(csv.reader(open(path)))


def baseline(config: Path, *options: str) -> Path:
    assert main(["baseline", "--config", str(config), *options]) == 0
    method = options[options.index("--baseline.method") + 1]
    folders = sorted(Path("runs").glob(f"tiny_baseline_{method}/version_*"))
    assert len(folders) == 1
    return folders[0]


def test_tfidf_report_has_tests_format_and_compares_with_a_fine_tuned_run(tiny_encoder, tmp_path, capsys):
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, write_single_label_csvs(tmp_path), max_epochs=1)
    fitted = run("fit", "--config", str(config), "--test_after_fit", "true")
    tuned_dir = Path(fitted.trainer.log_dir)
    capsys.readouterr()

    folder = baseline(config, "--baseline.method", "tfidf", "--baseline.c_grid", "[0.1, 10.0]")
    out = capsys.readouterr().out
    assert "test/macro_f1" in out and f"test report written to {folder}" in out
    assert REPORT_FILES | {"baseline.json"} <= {p.name for p in folder.iterdir()}
    for name in ("test_per_class.csv", "test_confusion_matrix.csv", "test_predictions.csv"):
        assert header(folder / name) == header(tuned_dir / name), name
    metrics = json.loads((folder / "test_metrics.json").read_text())
    assert set(metrics) == set(json.loads((tuned_dir / "test_metrics.json").read_text()))
    assert metrics["test/macro_f1"] > 0.45  # five classes (chance 0.2): the condition words are learnt
    record = json.loads((folder / "baseline.json").read_text())
    assert record["method"] == "tfidf" and record["chosen"]["C"] in (0.1, 10.0) and record["train_rows"] == 60
    predictions = list(csv.DictReader(open(folder / "test_predictions.csv")))
    assert len(predictions) == 25 and metrics["test/accuracy"] == pytest.approx(
        sum(r["label"] == r["true_label"] for r in predictions) / 25)

    assert main(["compare", str(tuned_dir), str(folder), "--resamples", "50", "--output_dir", "cmp"]) == 0
    table = list(csv.DictReader(open("cmp/comparison.csv")))
    assert [r["what"] for r in table] == ["MLPHead on " + Path(tiny_encoder).name, "baseline tfidf"]
    assert float(table[1]["macro_f1"]) == pytest.approx(metrics["test/macro_f1"], abs=1e-6)


def test_multi_label_tfidf_uses_validation_thresholds(tiny_encoder, tmp_path):
    for split, n, seed in (("train", 60, 1), ("val", 30, 2), ("test", 20, 3)):
        write_multilabel_csv(tmp_path / f"{split}.csv", n, seed)
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {
        "train_file": "train.csv", "val_file": "val.csv", "test_file": "test.csv",
        "label_column": "labels", "label_delimiter": ";"})
    folder = baseline(config, "--baseline.method", "tfidf")
    metrics = json.loads((folder / "test_metrics.json").read_text())
    assert "test/exact_match" in metrics and "test/accuracy" not in metrics
    assert "val/tuned_micro_f1" in json.loads((folder / "baseline.json").read_text())["chosen"]
    rows = list(csv.DictReader(open(folder / "test_predictions.csv")))
    assert len(rows) == 20 and any(";" in r["true_label"] for r in rows)


def test_the_validation_split_is_carved_from_train_without_a_val_file(tiny_encoder, tmp_path, capsys):
    files = write_single_label_csvs(tmp_path)
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {**files, "val_file": None, "val_fraction": 0.2})
    folder = baseline(config, "--baseline.method", "tfidf")
    assert "50 train, 10 validation, 25 test abstracts" in capsys.readouterr().out
    assert json.loads((folder / "baseline.json").read_text())["val_rows"] == 10  # as fit carves it (stratified)


def test_baselines_read_texts_not_the_data_modules_tokens(tiny_encoder, tmp_path, capsys, caplog):
    """No baseline reads the data module's token ids, so none tokenizes with it or prints its line "N of M
    abstracts truncated to <data.max_length>"; an embedding baseline says what its own max_length cut."""
    files = write_single_label_csvs(tmp_path)
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {**files, "max_length": 16})  # cuts every abstract
    caplog.set_level("INFO")
    folder = baseline(config, "--baseline.method", "tfidf")
    said = capsys.readouterr().out + caplog.text
    assert "baseline tfidf: 60 train, 30 validation, 25 test abstracts" in said and "truncated" not in said
    assert not (tmp_path / "cache").exists()  # no token cache written: nothing was tokenized
    assert json.loads((folder / "test_metrics.json").read_text())["test/macro_f1"] > 0.45
    assert len(list(csv.DictReader(open(folder / "test_predictions.csv")))) == 25

    caplog.clear()
    probe = baseline(config, "--baseline.method", "embedding_probe", "--baseline.max_length", "8",
                     "--baseline.c_grid", "[1.0]")
    said = capsys.readouterr().out + caplog.text
    assert "abstracts truncated" not in said
    assert f"{tiny_encoder}: 60 of 60 texts truncated to 8 tokens (--baseline.max_length)" in said
    assert REPORT_FILES | {"baseline.json"} <= {p.name for p in probe.iterdir()}
    metrics = json.loads((probe / "test_metrics.json").read_text())
    predictions = list(csv.DictReader(open(probe / "test_predictions.csv")))
    assert len(predictions) == 25 and metrics["test/accuracy"] == pytest.approx(
        sum(r["label"] == r["true_label"] for r in predictions) / 25)


@pytest.mark.parametrize("options, message", [
    (["--baseline.method", "zero_shot_entailment"], "needs an NLI model"),
    (["--baseline.method", "zero_shot_entailment", "--baseline.nli_model", "x",
      "--baseline.hypothesis_text", "description"], "no label descriptions"),
    (["--baseline.method", "bm25"], "unknown baseline method 'bm25'"),
    (["--baseline.method", "tfidf", "--data.init_args.test_file", "null"], "needs data.test_file"),
])
def test_what_the_data_or_options_cannot_support_is_one_line(tiny_encoder, tmp_path, capsys, options, message):
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, write_single_label_csvs(tmp_path))
    assert main(["baseline", "--config", str(config), *options]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not Path("runs").exists()  # nothing half-written
