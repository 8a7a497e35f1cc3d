"""No CSV medtext writes carries a live spreadsheet formula (medtext/core/spreadsheet_cells.py).

Ids, kept input columns, texts and class names that start like a formula are written with a
leading ``'``; numbers are not; ``--predictions.escape_formulas false`` writes them as they are.
"""

import csv
from pathlib import Path

import pytest

from cli_helpers import in_folder, run, tiny_config
from medtext.commands import main
from medtext.core.spreadsheet_cells import FORMULA_STARTS, safe_cell

CLASSES = ["=HYPERLINK(\"http://x\")", "@SUM(A1)", "-bad", "plain"]
IDS = ["=1+1", "+cmd|' /C calc'!A0", "-2", "\tTAB", "\rCR", "7"]


def frame_rows(n: int) -> list[dict]:
    return [{"id": IDS[i % len(IDS)] + ("" if i < len(IDS) else str(i)), "text": f"abstract {i} about {CLASSES[i % 4]}",
             "label": CLASSES[i % 4], "note": "=IMPORTXML(A1)"} for i in range(n)]


def write(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def fitted(tiny_encoder, tmp_path_factory):
    with in_folder(tmp_path_factory.mktemp("formulas")) as folder:
        files = {split: str(write(folder / f"{split}.csv", frame_rows(n))) for split, n in
                 (("train", 16), ("val", 8), ("test", 12))}
        config = tiny_config(folder / "fit.yaml", tiny_encoder, {
            **{f"{split}_file": path for split, path in files.items()}, "id_column": "id"}, default_root_dir=str(folder))
        cli = run("fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={folder / 'runs'}",
                  "--test_after_fit", "true")
    return Path(cli.trainer.checkpoint_callback.best_model_path), Path(cli.trainer.log_dir), Path(files["test"])


def cells(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def live_formulas(path: Path) -> list[str]:
    return [cell for cell in cells(path) if safe_cell(cell) != cell]


def test_every_csv_of_test_and_predict_is_safe_to_open(fitted, tmp_path):
    checkpoint, run_dir, test_file = fitted
    written = sorted(run_dir.glob("*.csv")) + sorted(run_dir.glob("reports/*.csv"))
    assert {"test_predictions.csv", "test_per_class.csv", "test_confusion_matrix.csv"} <= {p.name for p in written}
    out = tmp_path / "predictions.csv"
    assert main(["predict", "--ckpt_path", str(checkpoint), "--data.predict_file", str(test_file),
                 "--predictions.output_file", str(out), "--predictions.keep_columns", "note,text"]) == 0
    for path in [*written, out]:
        assert live_formulas(path) == [], path
    predicted = cells(out)
    assert "'=1+1" in predicted and "-2" in predicted and "'=IMPORTXML(A1)" in predicted
    assert "'\tTAB" in predicted and "'=HYPERLINK(\"http://x\")" in cells(run_dir / "test_per_class.csv")


def test_escaping_can_be_turned_off_for_programs(fitted, tmp_path):
    checkpoint, _, test_file = fitted
    out = tmp_path / "raw.csv"
    assert main(["predict", "--ckpt_path", str(checkpoint), "--data.predict_file", str(test_file),
                 "--predictions.output_file", str(out), "--predictions.keep_columns", "note",
                 "--predictions.escape_formulas", "false"]) == 0
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["id"] for row in rows[:len(IDS)]] == IDS and rows[0]["note"] == "=IMPORTXML(A1)"


@pytest.mark.parametrize("value", ["-0.25", "+3", "-1e-5", "plain", "", 5, None])
def test_numbers_and_plain_text_are_unchanged(value):
    assert safe_cell(value) == value


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_every_formula_start_is_neutralised(start):
    assert safe_cell(start + "x") == "'" + start + "x"
