"""benchmarks/quality.py --resume: a seed whose fit process was interrupted goes on from its run's
last.ckpt, and its minutes count the interrupted process too (a fit split over sessions is timed whole)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import quality  # noqa: E402
from test_quality_merge import tiny_quality_setup  # noqa: E402


@pytest.mark.slow
def test_an_interrupted_fit_goes_on_from_its_last_checkpoint_and_is_timed_whole(tiny_encoder, vocabulary, tmp_path,
                                                                               monkeypatch, capfd):
    config, test = tiny_quality_setup(tmp_path, tiny_encoder, vocabulary, max_epochs=2)
    first = argparse.Namespace(config=config, test=test, runs=tmp_path / "runs", data_dir=None,
                               extra=["--trainer.max_epochs", "1", "--test_after_fit", "false"])
    run_dir = quality.fit(first, 7, "tiny")  # one epoch of two, then as if killed: no completion record, no test
    (run_dir / "checkpoints" / "fit_completed.json").unlink()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and not (run_dir / "test_metrics.json").exists()
    started = (run_dir / "config.yaml").stat().st_mtime - 120  # the interrupted process ran two minutes longer
    os.utime(run_dir / "config.yaml", (started, started))
    argv = ["quality.py", "--config", str(config), "--test", str(test), "--runs", str(tmp_path / "runs"), "--name",
            "tiny", "--resamples", "50", "--seeds", "1", "--first-seed", "7"]

    monkeypatch.setattr(sys, "argv", argv + ["--resume", "--out", str(tmp_path / "resumed.json")])
    quality.main()
    printed = capfd.readouterr().out
    assert "seed 7: going on from" in printed and "resuming from" in printed  # quality.py's line, medtext fit's
    check = json.loads((tmp_path / "resumed.json").read_text())["checks"][0]
    [interrupted] = check["interrupted_fits_minutes"]
    assert interrupted >= 2.0 and check["fit_minutes"] > interrupted
    logged = pd.read_csv(run_dir / "metrics.csv")
    validated = logged.dropna(subset=["val/macro_f1"])["epoch"]  # epoch 0's row kept, epoch 1's added
    assert list(validated) == [0, 1] and (run_dir / "test_metrics.json").is_file()

    monkeypatch.setattr(sys, "argv", argv + ["--reuse", "--out", str(tmp_path / "reused.json")])
    quality.main()  # the finished run scored again: its minutes still count the interrupted process
    reused = json.loads((tmp_path / "reused.json").read_text())["checks"][0]
    assert interrupted < reused["fit_minutes"] <= check["fit_minutes"] + 0.05
    assert reused["interrupted_fits_minutes"] == [interrupted]
