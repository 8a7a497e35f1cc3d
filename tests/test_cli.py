"""The CLI end to end on a tiny encoder: fit -> test -> predict, reloads, and config-free predict."""

import csv
import warnings
import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from cli_helpers import in_folder, run, tiny_config
from medtext import TextClassifier
from medtext.runtime.checkpoint import StreamingCheckpointIO
from medtext.commands import main
from medtext.core.errors import DataError
from medtext.core.metrics import metric_label

SYNTHETIC = {"num_train": 80, "num_val": 30, "num_test": 25}


@pytest.fixture(scope="module")
def fitted(tiny_encoder, tmp_path_factory):
    """A CLI object after ``fit`` (+ test) of the tiny encoder on a small synthetic corpus: one fit for
    this module's tests, which read its files and write their own in their own folders."""
    with in_folder(tmp_path_factory.mktemp("fitted")) as folder:
        config = tiny_config(folder / "fit.yaml", tiny_encoder, SYNTHETIC, "data_modules.SyntheticAbstractsDataModule",
                             max_epochs=2, default_root_dir=str(folder / "runs"))
        return run("fit", "--config", str(config), "--test_after_fit", "true",
                   f"--trainer.logger.init_args.save_dir={folder / 'runs'}")


def read_predictions(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def counted_metrics(truth: list[str], predicted: list[str], names: list[str]) -> tuple[dict, list[list[int]]]:
    """Single-label test metrics and confusion matrix (rows true, columns predicted), by counting."""
    counts = Counter(zip(truth, predicted))
    matrix = [[counts[t, p] for p in names] for t in names]
    f1 = {}
    for i, name in enumerate(names):
        tp, fp, fn = matrix[i][i], sum(row[i] for row in matrix) - matrix[i][i], sum(matrix[i]) - matrix[i][i]
        f1[f"test/f1/{metric_label(name)}"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    accuracy = sum(matrix[i][i] for i in range(len(names))) / len(truth)
    return {"test/accuracy": accuracy, "test/micro_f1": accuracy, "test/macro_f1": sum(f1.values()) / len(names),
            **f1}, matrix


def test_fit_writes_checkpoints_and_test_report(fitted, tmp_path):
    log_dir = Path(fitted.trainer.log_dir)
    assert (log_dir / "checkpoints" / "best.ckpt").is_file() and (log_dir / "checkpoints" / "last.ckpt").is_file()
    assert isinstance(fitted.trainer.strategy.checkpoint_io, StreamingCheckpointIO)  # wrote them, streaming
    metrics = json.loads((log_dir / "test_metrics.json").read_text())
    names = fitted.datamodule.label_names
    assert len(names) == 5 and fitted.model.label_names == names
    # the report's metrics and matrix are those of the best checkpoint's predictions on the test file
    test_file, out = fitted.datamodule.resolve_files()["test"], tmp_path / "predictions.csv"
    run("predict", "--ckpt_path", fitted.trainer.checkpoint_callback.best_model_path, "--data.predict_file",
        test_file, "--predictions.output_file", str(out))
    truth, predicted = ([row["label"] for row in read_predictions(path)] for path in (test_file, out))
    assert len(truth) == len(predicted) == SYNTHETIC["num_test"] and set(truth) == set(names)  # macro: 5 classes
    expected, counted_matrix = counted_metrics(truth, predicted, names)
    assert {key: metrics[key] for key in expected} == pytest.approx(expected, abs=1e-6)
    assert "test/f1/neoplasms" in expected and "test/f1/digestive_system_diseases" in expected
    matrix = list(csv.reader(open(log_dir / "test_confusion_matrix.csv")))
    assert matrix[0][1:] == names and [row[0] for row in matrix[1:]] == names
    assert [[int(v) for v in row[1:]] for row in matrix[1:]] == counted_matrix
    assert (log_dir / "test_confusion_matrix.png").stat().st_size > 1000
    logged = next(csv.reader(open(log_dir / "metrics.csv")))
    assert {"val/macro_f1", "val/micro_f1", "val/accuracy", "val/f1/nervous_system_diseases", "train/loss"} <= set(logged)


def test_checkpoint_holds_labels_and_reloads_to_same_predictions(fitted, tmp_path):
    best = Path(fitted.trainer.checkpoint_callback.best_model_path)
    checkpoint = torch.load(best, map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["label_names"] == fitted.datamodule.label_names
    assert checkpoint["datamodule_hyper_parameters"]["label_map"] == fitted.datamodule.label_map

    test_file = fitted.datamodule.resolve_files()["test"]
    out_a, out_b = tmp_path / "a.csv", tmp_path / "b.csv"
    run("predict", "--ckpt_path", str(best), "--data.predict_file", test_file,
        "--predictions.output_file", str(out_a))
    rows = read_predictions(out_a)
    assert len(rows) == SYNTHETIC["num_test"]
    assert [r["row"] for r in rows] == [str(i) for i in range(1, SYNTHETIC["num_test"] + 1)]
    assert list(rows[0]) == ["row", "label", *(f"prob_{metric_label(n)}" for n in fitted.datamodule.label_names)]
    assert not any(" " in column for column in rows[0]), "column names without spaces, as metric names"
    for row in rows:
        probs = [float(v) for k, v in row.items() if k.startswith("prob_")]
        assert abs(sum(probs) - 1) < 1e-4 and row["label"] in fitted.datamodule.label_names

    reloaded = TextClassifier.load_from_checkpoint(best, map_location="cpu")
    assert reloaded.label_names == fitted.datamodule.label_names
    batch = next(iter(fitted.datamodule.test_dataloader()))
    reloaded.eval()
    fitted.model.eval()
    with torch.no_grad():
        # predict writes the calibrated probabilities (the checkpoint's temperature: medtext/model/calibration.py)
        expected = reloaded.calibrator(reloaded(batch["input_ids"], batch["attention_mask"])).softmax(-1)
    first = {int(r["row"]) - 1: r for r in rows}
    for i, index in enumerate(batch["index"].tolist()):
        got = [float(first[index][f"prob_{metric_label(n)}"]) for n in reloaded.label_names]
        assert torch.allclose(torch.tensor(got), expected[i], atol=1e-5)

    run("predict", "--ckpt_path", str(best), "--data.predict_file", test_file,
        "--predictions.output_file", str(out_b))
    assert read_predictions(out_b) == rows


def test_test_subcommand_from_checkpoint_alone(fitted):
    best = fitted.trainer.checkpoint_callback.best_model_path
    cli = run("test", "--ckpt_path", best)
    again = json.loads((Path(cli.trainer.log_dir) / "test_metrics.json").read_text())
    first = json.loads((Path(fitted.trainer.log_dir) / "test_metrics.json").read_text())
    assert again["test/macro_f1"] == pytest.approx(first["test/macro_f1"], abs=1e-6)


def test_unreachable_encoder_is_one_clear_error(tmp_path, capsys):
    config = tiny_config(tmp_path / "c.yaml", "no-such-org/no-such-encoder", SYNTHETIC,
                         "data_modules.SyntheticAbstractsDataModule")
    assert main(["fit", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("medtext: error: cannot load the encoder 'no-such-org/no-such-encoder'")
    assert "local folder" in err[-1]


def test_predict_skips_invalid_rows_when_asked_and_names_them(fitted, tmp_path, capsys):
    best = fitted.trainer.checkpoint_callback.best_model_path
    new = tmp_path / "new.csv"
    new.write_text("pmid,text\nP1,fever and cough in a cohort\nP2,   \nP3,a randomised trial of asthma\nP4,\n")
    out = tmp_path / "predicted.csv"
    with pytest.raises(DataError, match=r"new.csv: row 2: empty text in column 'text' \(id P2\); 2 such rows$"):
        run("predict", "--ckpt_path", best, "--data.predict_file", str(new), "--data.id_column", "pmid")
    capsys.readouterr()
    run("predict", "--ckpt_path", best, "--data.predict_file", str(new), "--data.id_column", "pmid",
        "--data.skip_invalid_rows", "true", "--predictions.output_file", str(out))
    assert "wrote 2 predictions and 2 skipped rows" in capsys.readouterr().out
    rows = read_predictions(out)
    assert [(r["pmid"], r["skipped"]) for r in rows] == [("P1", ""), ("P2", "empty text"), ("P3", ""), ("P4", "empty text")]
    assert [bool(r["label"]) for r in rows] == [True, False, True, False]
    assert all(r[f"prob_{metric_label(n)}"] == "" for r in rows[1::2] for n in fitted.datamodule.label_names)


def test_predict_prints_no_third_party_noise(fitted, tmp_path, capfd):
    best = fitted.trainer.checkpoint_callback.best_model_path
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:  # as the interpreter shows them, once each
        warnings.simplefilter("default")
        assert main(["predict", "--ckpt_path", best, "--data.predict_file", fitted.datamodule.resolve_files()["test"],
                     "--predictions.output_file", str(tmp_path / "out.csv")]) == 0
    printed = "".join(capfd.readouterr()) + "".join(str(w.message) for w in caught)
    for noise in ("💡 Tip", "tensorboardX", "No seed found", "LeafSpec"):
        assert noise not in printed, noise
    assert f"wrote {SYNTHETIC['num_test']} predictions to {tmp_path / 'out.csv'}" in printed
