"""Multi-label classification: thresholds, metrics, reports and predictions, end to end."""

import csv
import json
import random
from pathlib import Path

import pytest
import torch

from cli_helpers import run, tiny_config
from data_modules.synthetic import generate_abstracts
from medtext.model.tasks import tune_thresholds
from torchmetrics.functional.classification import multilabel_f1_score


def test_tuned_thresholds_beat_half_where_half_is_wrong():
    generator = torch.Generator().manual_seed(0)
    targets = (torch.rand(400, 3, generator=generator) < 0.3).long()
    # a model whose scores are informative but all below 0.5 for label 0 and above 0.5 for label 1
    noise = torch.rand(400, 3, generator=generator) * 0.2
    probabilities = torch.stack([0.1 + 0.25 * targets[:, 0] + noise[:, 0],
                                 0.55 + 0.25 * targets[:, 1] + noise[:, 1],
                                 0.4 * targets[:, 2] + noise[:, 2] + 0.3], 1)
    half = multilabel_f1_score((probabilities >= 0.5).long(), targets, 3, average="macro")
    thresholds = tune_thresholds(probabilities, targets, default=0.5)
    tuned = multilabel_f1_score((probabilities >= thresholds).long(), targets, 3, average="macro")
    assert tuned > half + 0.3 and tuned > 0.95
    assert thresholds[0] < 0.5 < thresholds[1]


def test_label_without_positives_keeps_the_default_threshold():
    thresholds = tune_thresholds(torch.rand(20, 2), torch.zeros(20, 2, dtype=torch.long), default=0.4)
    assert thresholds.tolist() == pytest.approx([0.4, 0.4])


def write_multilabel_csv(path: Path, n: int, seed: int) -> None:
    """Synthetic abstracts with a ;-separated label list: their condition, plus 'study' on half."""
    rng = random.Random(seed)
    rows = []
    for row in generate_abstracts(n, seed=seed, label_noise=0.0):
        labels = [row["label"].split()[0]] + (["study"] if rng.random() < 0.5 else [])
        rows.append({"text": row["text"], "labels": ";".join(labels) if rng.random() > 0.1 else ""})
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "labels"])
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("head", ["medtext.heads.MLPHead",
                                  pytest.param("medtext.heads.LabelAttentionHead", marks=pytest.mark.slow)])
def test_multilabel_fit_test_predict(tiny_encoder, tmp_path, head):
    for split, n, seed in (("train", 60, 1), ("val", 30, 2), ("test", 20, 3)):
        write_multilabel_csv(tmp_path / f"{split}.csv", n, seed)
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {
        "train_file": "train.csv", "val_file": "val.csv", "test_file": "test.csv",
        "label_column": "labels", "label_delimiter": ";"}, max_epochs=2)
    head_args = ["--model.head", head] + (["--model.head.num_heads", "2"] if head.endswith("AttentionHead") else [])
    cli = run("fit", "--config", str(config), *head_args, "--test_after_fit", "true",
              "--trainer.callbacks.init_args.monitor", "val/micro_f1")
    names = cli.datamodule.label_names
    assert cli.model.task.multi_label and len(names) == 6 and "study" in names

    best = cli.trainer.checkpoint_callback.best_model_path
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    assert state["thresholds"].shape == (len(names),)
    if head.endswith("LabelAttentionHead"):
        assert state["static_label_states"].shape == (len(names), 32)

    log_dir = Path(cli.trainer.log_dir)
    metrics = json.loads((log_dir / "test_metrics.json").read_text())
    matrix_rows = list(csv.DictReader(open(log_dir / "test_confusion_matrix.csv")))
    assert [r["label"] for r in matrix_rows] == names
    assert all(sum(int(r[k]) for k in ("tn", "fp", "fn", "tp")) == 20 for r in matrix_rows)
    logged = next(csv.reader(open(log_dir / "metrics.csv")))
    assert {"val/micro_f1", "val/tuned_micro_f1", "val/tuned_macro_f1"} <= set(logged)

    out = tmp_path / "predictions.csv"
    run("predict", "--ckpt_path", best, "--data.predict_file", str(tmp_path / "test.csv"),
        "--predictions.output_file", str(out))
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 20
    for row in rows:
        chosen = [n for n in names if float(row[f"prob_{n}"]) >= float(state["thresholds"][names.index(n)])]
        assert row["label"] == ";".join(chosen)

    # the test report (test_after_fit: the best checkpoint) counted from these predictions and the test file
    truth = [set(filter(None, r["labels"].split(";"))) for r in csv.DictReader(open(tmp_path / "test.csv"))]
    predicted = [set(filter(None, row["label"].split(";"))) for row in rows]
    counts = {n: {"tn": 0, "fp": 0, "fn": 0, "tp": 0} for n in names}
    for true, chosen in zip(truth, predicted):
        for n in names:
            counts[n][("t" if (n in true) == (n in chosen) else "f") + ("p" if n in chosen else "n")] += 1
    assert [{k: int(r[k]) for k in counts[n]} for r, n in zip(matrix_rows, names)] == [counts[n] for n in names]
    f1 = {n: 2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"]) if c["tp"] + c["fp"] + c["fn"] else 0.0
          for n, c in counts.items()}
    tp, fp, fn = (sum(c[k] for c in counts.values()) for k in ("tp", "fp", "fn"))
    expected = {"test/micro_f1": 2 * tp / (2 * tp + fp + fn), "test/macro_f1": sum(f1.values()) / len(names),
                "test/exact_match": sum(t == p for t, p in zip(truth, predicted)) / len(truth),
                **{f"test/f1/{n}": value for n, value in f1.items()}}
    assert {key: metrics[key] for key in expected} == pytest.approx(expected, abs=1e-6)

    # test_after_fit's per-abstract file: predict's labels and probabilities, with the true labels
    tested = list(csv.DictReader(open(log_dir / "test_predictions.csv")))
    assert [r["row"] for r in tested] == [r["row"] for r in rows]
    assert [r["label"] for r in tested] == [r["label"] for r in rows]
    assert [set(filter(None, r["true_label"].split(";"))) for r in tested] == truth
    assert [[float(r[f"prob_{n}"]) for n in names] for r in tested] == \
        [pytest.approx([float(r[f"prob_{n}"]) for n in names], abs=1e-5) for r in rows]
