"""``medtext compare``: metrics recomputed from saved test predictions, bootstrap intervals, alignment checks."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import (multiclass_accuracy, multiclass_f1_score, multilabel_exact_match,
                                                    multilabel_f1_score)

from medtext.commands import main
from medtext.commands.compare import align, compare, read_run

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
    assert "120 test abstracts" in out and out.count("| ") >= 3
    rows = list(csv.DictReader(open(tmp_path / "out" / "comparison.csv")))
    assert [r["run"] for r in rows] == [str(first), str(second)]
    assert rows[0]["macro_f1"] == rows[1]["macro_f1"] and float(rows[1]["delta_macro_f1"]) == 0.0
    assert (tmp_path / "out" / "comparison.md").read_text().startswith("| run | what | macro_f1")


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
