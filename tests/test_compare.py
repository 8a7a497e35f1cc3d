"""``medtext compare``: metrics recomputed from saved test predictions, bootstrap intervals, alignment checks;
runs named by their folders, with their training budget and seed; a terminal table within 120 columns."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torchmetrics.functional.classification import (multiclass_accuracy, multiclass_f1_score, multilabel_exact_match,
                                                    multilabel_f1_score)

from cli_helpers import run, tiny_config
from medtext.commands import main
from medtext.commands.compare import align, budget, compare, read_run
from test_baseline_command import write_single_label_csvs

NAMES = ["neoplasms", "digestive system diseases", "nervous system diseases"]


def write_run(folder: Path, true: list, predicted: list, names=NAMES, multi_label=False, method=None) -> Path:
    """A run folder as ``medtext test`` writes it (the files compare reads)."""
    folder.mkdir(parents=True)
    with open(folder / "test_per_class.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class", "precision", "recall", "f1", "support"])
        writer.writerows([name, 0, 0, 0, 0] for name in names)
    text = (lambda ids: ";".join(names[i] for i in ids)) if multi_label else (lambda i: names[i])
    with open(folder / "test_predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "true_label", "label", *(f"prob_{n}" for n in names)])
        writer.writerows([i + 1, text(t), text(p), *([0.0] * len(names))] for i, (t, p) in enumerate(zip(true, predicted)))
    key = "test/exact_match" if multi_label else "test/accuracy"
    (folder / "test_metrics.json").write_text(json.dumps({key: 0.0}))
    if method:
        (folder / "baseline.json").write_text(json.dumps({"method": method}))
    return folder


def single_label_runs(tmp_path, n=120):
    rng = np.random.default_rng(0)
    true = rng.integers(0, 3, n)
    good = np.where(rng.random(n) < 0.85, true, rng.integers(0, 3, n))
    poor = np.where(rng.random(n) < 0.5, true, rng.integers(0, 3, n))
    return true, good, poor


def test_single_label_point_values_match_torchmetrics_and_intervals_cover_them(tmp_path):
    true, good, poor = single_label_runs(tmp_path)
    runs = [read_run(write_run(tmp_path / "a", true.tolist(), poor.tolist(), method="tfidf")),
            read_run(write_run(tmp_path / "b", true.tolist(), good.tolist()))]
    align(runs)
    table = compare(runs, resamples=300)
    for row, predicted in zip(table, (poor, good)):
        p, t = torch.tensor(predicted), torch.tensor(true)
        assert row["macro_f1"][0] == pytest.approx(float(multiclass_f1_score(p, t, 3, average="macro")))
        assert row["micro_f1"][0] == pytest.approx(float(multiclass_f1_score(p, t, 3, average="micro")))
        assert row["accuracy"][0] == pytest.approx(float(multiclass_accuracy(p, t, 3, average="micro")))
        per_class = multiclass_f1_score(p, t, 3, average=None).tolist()
        assert [row[f"f1/{n}"][0] for n in NAMES] == pytest.approx(per_class)
        for key in ("macro_f1", "accuracy", *(f"f1/{n}" for n in NAMES)):
            value, low, high = row[key]
            assert low <= value <= high and high - low > 0.01
    assert table[0]["what"] == "baseline tfidf" and table[0]["delta_macro_f1"] == (0.0, 0.0, 0.0)
    delta, low, high = table[1]["delta_macro_f1"]
    assert delta == pytest.approx(table[1]["macro_f1"][0] - table[0]["macro_f1"][0]) and 0 < low < delta < high


def test_multi_label_point_values_match_torchmetrics(tmp_path):
    rng = np.random.default_rng(1)
    true = rng.random((80, 3)) < 0.4
    predicted = np.where(rng.random((80, 3)) < 0.8, true, ~true)
    as_ids = lambda m: [np.flatnonzero(r).tolist() for r in m]  # noqa: E731 - rows as label ids (some empty)
    run = read_run(write_run(tmp_path / "a", as_ids(true), as_ids(predicted), multi_label=True))
    assert run["multi_label"] and run["true"].tolist() == true.tolist()
    row = compare([run], resamples=100)[0]
    p, t = torch.tensor(predicted).long(), torch.tensor(true).long()
    assert row["macro_f1"][0] == pytest.approx(float(multilabel_f1_score(p, t, 3, average="macro")))
    assert row["micro_f1"][0] == pytest.approx(float(multilabel_f1_score(p, t, 3, average="micro")))
    assert row["exact_match"][0] == pytest.approx(float(multilabel_exact_match(p, t, 3)))
    assert "accuracy" not in row and row["delta_micro_f1"] == (0.0, 0.0, 0.0)  # multi-label runs rank by micro-F1


def test_command_prints_and_writes_the_table_with_classes_matched_by_name(tmp_path, capsys):
    true, good, _ = single_label_runs(tmp_path)
    first = write_run(tmp_path / "a", true.tolist(), good.tolist())
    reordered = [2, 0, 1]  # the second run lists the classes in another order
    second = write_run(tmp_path / "b", [reordered.index(i) for i in true], [reordered.index(i) for i in good],
                       names=[NAMES[i] for i in reordered])
    assert main(["compare", str(first), str(second), "--output_dir", str(tmp_path / "out"), "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "120 test abstracts" in out and "written to " + str(tmp_path / "out" / "comparison.md") in out
    rows = list(csv.DictReader(open(tmp_path / "out" / "comparison.csv")))
    assert [r["folder"] for r in rows] == [str(first), str(second)]
    assert [r["run"] for r in rows] == [f"{tmp_path.name}/a", f"{tmp_path.name}/b"]  # <parent>/<folder>
    assert rows[0]["macro_f1"] == rows[1]["macro_f1"] and float(rows[1]["delta_macro_f1"]) == 0.0
    assert (tmp_path / "out" / "comparison.md").read_text().startswith(
        "| run | folder | what | budget | seed | macro_f1")


@pytest.mark.parametrize("break_it, message", [
    (lambda b: (b / "test_predictions.csv").unlink(), "no test_predictions.csv"),
    (lambda b: (b / "test_predictions.csv").write_text(
        (b / "test_predictions.csv").read_text().replace("\n1,", "\n99,", 1)), "tested different abstracts"),
    (lambda b: (b / "test_per_class.csv").write_text("class\na\nb\nc\n"), "is not one of the run's classes"),
])
def test_runs_that_cannot_be_compared_give_one_line(tmp_path, capsys, break_it, message):
    true, good, poor = single_label_runs(tmp_path)
    first = write_run(tmp_path / "a", true.tolist(), good.tolist())
    second = write_run(tmp_path / "b", true.tolist(), poor.tolist())
    break_it(second)
    assert main(["compare", str(first), str(second)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("medtext: error:")


def test_runs_of_other_classes_are_refused(tmp_path, capsys):
    true, good, _ = single_label_runs(tmp_path)
    first = write_run(tmp_path / "a", true.tolist(), good.tolist())
    other = write_run(tmp_path / "b", true.tolist(), good.tolist(), names=["a", "b", "c"])
    assert main(["compare", str(first), str(other)]) == 2
    assert "different tasks or classes" in capsys.readouterr().err


def write_config(folder: Path, logger: str = "pytorch_lightning.loggers.CSVLogger", name: str = "tiny",
                 encoder: str = "sentence-transformers/all-MiniLM-L6-v2", seed=42, **trainer) -> None:
    """The parts of a fit's saved config.yaml that compare reads."""
    config = {"seed_everything": seed, "trainer": {"logger": {"class_path": logger, "init_args": {"name": name}},
                                                  "max_epochs": 2, "max_steps": -1, **trainer},
              "model": {"init_args": {"encoder_name": encoder, "head": {"class_path": "medtext.heads.MLPHead"}}}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.parametrize("multi_label", [False, True])
def test_the_terminal_table_fits_120_columns_and_the_markdown_file_holds_everything(tmp_path, capsys, multi_label):
    names = [f"{what} (a long class name for the width of the terminal table) {k}"
             for k, what in enumerate(["neoplasms", "digestive system diseases", "nervous system diseases",
                                       "cardiovascular diseases", "general pathological conditions", "other"])]
    rng = np.random.default_rng(2)
    n, runs = 90, []
    if multi_label:
        true = [np.flatnonzero(r).tolist() for r in rng.random((n, len(names))) < 0.3]
    else:
        true = rng.integers(0, len(names), n).tolist()
    for i in range(7):
        if multi_label:
            predicted = [sorted(set(t) ^ {int(rng.integers(0, len(names)))}) for t in true]
        else:
            predicted = [t if rng.random() < 0.6 + 0.05 * i else int(rng.integers(0, len(names))) for t in true]
        folder = write_run(tmp_path / "runs" / f"medical_abstracts_biomedbert_label_attention_head_tail_{i}" /
                           "version_12", true, predicted, names=names, multi_label=multi_label)
        write_config(folder, name=folder.parent.name, max_steps=100000, max_time="00:12:00:00",
                     encoder="microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext-and-more-words")
        runs.append(str(folder))
    assert main(["compare", *runs, "--resamples", "50", "--output_dir", "out"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(map(len, lines)) <= 120, max(lines, key=len)
    assert len(lines) > 7 * 2 + len(names)  # the runs, their metrics and per-class F1: not a one-line summary
    blocks = [block.splitlines() for block in out.split("\n\n")]
    shown = [row.split("  ")[1] for row in blocks[2][2:]]  # the test metrics: names shortened, still distinct
    assert len(set(shown)) == 7 and all(len(name) < len(Path(runs[0]).parent.name) for name in shown)
    columns = [cell.split()[0] for block in blocks[3:-1] for cell in re.split(r" {2,}", block[1])[1:]]
    assert columns == [str(i) for i in range(1, 8)]  # every run's per-class F1, in blocks side by side
    assert all(len(block) == 2 + len(names) for block in blocks[3:-1]) and blocks[-1][0].startswith("full table")

    table = (tmp_path / "out" / "comparison.md").read_text().splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    metric = "exact_match" if multi_label else "accuracy"
    delta = "delta_micro_f1" if multi_label else "delta_macro_f1"
    assert header == ["run", "folder", "what", "budget", "seed", "macro_f1", "micro_f1", metric,
                      *(f"f1/{name}" for name in names), delta]
    rows = list(csv.DictReader(open(tmp_path / "out" / "comparison.csv")))
    assert len(table) == 2 + 7 and len(rows) == 7
    for line, row, folder in zip(table[2:], rows, runs):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == len(header) and cells[:2] == [f"{Path(folder).parent.name}/version_12", folder]
        assert cells[2] == "MLPHead on BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext-and-more-words"
        assert cells[3:5] == ["2 epochs or 100000 steps or max_time 00:12:00:00", "42"]
        for key, cell in zip(header[5:], cells[5:]):  # every metric, with its interval, as in the CSV
            value = re.fullmatch(r"(-?\d\.\d{4}) \((-?\d\.\d{4})–(-?\d\.\d{4})\)", cell)
            assert value and [float(v) for v in value.groups()] == pytest.approx(
                [float(row[key + s]) for s in ("", "_ci_low", "_ci_high")], abs=1e-4), (key, cell)


def test_runs_of_the_same_head_and_encoder_get_distinct_names(tmp_path, capsys):
    true, good, poor = single_label_runs(tmp_path)
    folders = [write_run(tmp_path / "a" / "tiny" / "version_0", true.tolist(), good.tolist()),
               write_run(tmp_path / "b" / "tiny" / "version_0", true.tolist(), poor.tolist()),
               write_run(tmp_path / "a" / "tiny" / "version_1", true.tolist(), poor.tolist()),
               write_run(tmp_path / "runs" / "medtext" / "3kf9x2ab", true.tolist(), good.tolist())]
    for folder in folders[:3]:
        write_config(folder)
    write_config(folders[3], logger="medtext.runtime.wandb_runs.ScrubbedWandbLogger", name="minilm_mlp")
    assert main(["compare", *map(str, folders), str(folders[2]), "--resamples", "20", "--output_dir", "out"]) == 0
    legend = capsys.readouterr().out.split("\n\n")[1].splitlines()[2:]
    rows = list(csv.DictReader(open(tmp_path / "out" / "comparison.csv")))
    expected = ["a/tiny/version_0", "b/tiny/version_0", "tiny/version_1 [3]", "minilm_mlp/3kf9x2ab",
                "tiny/version_1 [5]"]  # the W&B run: its name and id; the folder given twice: its position
    assert [r["run"] for r in rows] == expected and {r["what"] for r in rows} == {"MLPHead on all-MiniLM-L6-v2"}
    assert [line.split()[1] for line in legend] == [name.split()[0] for name in expected]


@pytest.mark.parametrize("trainer, expected", [
    ({"max_epochs": 2, "max_steps": -1}, "2 epochs"),
    ({"max_epochs": 1}, "1 epoch"),
    ({"max_epochs": None, "max_steps": 500}, "500 steps"),
    ({"max_epochs": -1, "max_steps": 500}, "500 steps"),
    ({"max_epochs": 3, "max_steps": 100}, "3 epochs or 100 steps"),
    ({"max_epochs": None, "max_steps": -1}, "1000 epochs"),  # Lightning's default
    ({"max_epochs": -1, "max_steps": -1}, "no limit"),
    ({"max_epochs": None, "max_time": "00:01:00:00"}, "max_time 00:01:00:00"),
])
def test_budget_reads_the_stop_settings_as_lightning_does(trainer, expected):
    assert budget(trainer) == expected


def test_budget_and_seed_come_from_the_fits_that_trained_the_runs(tiny_encoder, tmp_path, capsys):
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, write_single_label_csvs(tmp_path))
    by_epochs = run("fit", "--config", str(config), "--test_after_fit", "true", "--trainer.max_epochs", "2")
    by_steps = run("fit", "--config", str(config), "--test_after_fit", "true", "--seed_everything", "3",
                   "--trainer.max_epochs", "-1", "--trainer.max_steps", "5")
    best = Path(by_epochs.trainer.checkpoint_callback.best_model_path)
    tested = run("test", "--ckpt_path", str(best), "--trainer.logger", "pytorch_lightning.loggers.CSVLogger",
                 "--trainer.logger.save_dir", "runs", "--trainer.logger.name", "tested")
    assert main(["baseline", "--config", str(config), "--baseline.method", "tfidf", "--baseline.seed", "5"]) == 0
    folders = [Path(cli.trainer.log_dir) for cli in (by_epochs, by_steps, tested)]
    folders.append(next(Path("runs").glob("tiny_baseline_tfidf/version_*")))
    capsys.readouterr()
    assert main(["compare", *map(str, folders), "--resamples", "20", "--output_dir", "out"]) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader(open("out/comparison.csv")))
    assert [(r["run"], r["budget"], r["seed"]) for r in rows] == [
        ("tiny/version_0", "2 epochs", "7"), ("tiny/version_1", "5 steps", "3"),
        ("tested/version_0", "2 epochs", "7"),  # a test run: its checkpoint's fit's budget and seed
        ("tiny_baseline_tfidf/version_0", "no training", "5")]
    assert rows[2]["what"] == f"MLPHead on {Path(tiny_encoder).name}, trained in tiny/version_0"
    legend = out.split("\n\n")[1].splitlines()
    assert legend[1].split() == ["#", "run", "what", "budget", "seed"]
    assert legend[3].split()[-3:] == ["5", "steps", "3"]  # the terminal shows them too
