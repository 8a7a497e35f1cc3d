"""fit (with test_after_fit), test and validate print one summary: medtext's per-class table."""

import csv
import json
import re
from pathlib import Path

import pytest

from cli_helpers import run, tiny_config

SYNTHETIC = {"num_train": 32, "num_val": 16, "num_test": 12}
LIGHTNING_TABLE = "DataLoader 0"  # the column header of Lightning's metric table


def class_rows(out: str, names: list[str]) -> list[str]:
    """The per-class table's rows: lines that begin (after box drawing) with a class name."""
    return [n for n in names if re.search(rf"^\W*{re.escape(n)}\W", out, re.MULTILINE)]


def check_test_predictions(log_dir: Path, names: list[str], rows: int) -> None:
    """``test_predictions.csv``: one row per test abstract, in file order; its label is the most probable class,
    and its true and predicted labels give test_metrics.json's accuracy."""
    tested = list(csv.DictReader(open(log_dir / "test_predictions.csv")))
    assert [r["row"] for r in tested] == [str(i) for i in range(1, rows + 1)]
    assert {r["true_label"] for r in tested} <= set(names)
    for r in tested:
        probabilities = [float(r[f"prob_{n.replace(' ', '_')}"]) for n in names]
        assert r["label"] == names[probabilities.index(max(probabilities))]
        assert sum(probabilities) == pytest.approx(1, abs=1e-4)
    accuracy = sum(r["label"] == r["true_label"] for r in tested) / rows
    assert json.loads((log_dir / "test_metrics.json").read_text())["test/accuracy"] == pytest.approx(accuracy)


@pytest.mark.slow  # fit, test, validate and predict in turn
def test_one_summary_per_command(tiny_encoder, tmp_path, capsys):
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, SYNTHETIC, "data_modules.SyntheticAbstractsDataModule")
    fitted = run("fit", "--config", str(config), "--test_after_fit", "true")
    names = fitted.datamodule.label_names
    out = capsys.readouterr().out
    assert LIGHTNING_TABLE not in out and out.count("test/macro_f1") == 1 and "test/loss" in out
    best = fitted.trainer.checkpoint_callback.best_model_path

    tested = run("test", "--ckpt_path", best)
    out = capsys.readouterr().out
    assert LIGHTNING_TABLE not in out and out.count("test/macro_f1") == 1
    assert class_rows(out, names) == names
    check_test_predictions(Path(tested.trainer.log_dir), names, SYNTHETIC["num_test"])

    run("validate", "--ckpt_path", best)
    out = capsys.readouterr().out
    assert LIGHTNING_TABLE not in out and out.count("val/macro_f1") == 1 and "val/loss" in out
    assert class_rows(out, names) == names

    run("test", "--ckpt_path", best, "--verbose", "true")  # Lightning's table on request
    assert LIGHTNING_TABLE in capsys.readouterr().out
