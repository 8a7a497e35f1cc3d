"""What benchmarks/quality.py reads from a seed's run folder (the best checkpoint, the validation scores of
its epoch, the fit's minutes) and the one file it records there: the minutes of interrupted fit
processes that ``--resume`` went on from, so that a fit split over several processes is timed whole."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import yaml

from medtext.core.atomic_files import atomic_write_text

INTERRUPTED_MINUTES = "quality_interrupted_minutes.json"


def best_checkpoint(run_dir: Path) -> Path:
    return next((run_dir / "checkpoints").glob("best*.ckpt"))


def is_finished(run_dir: Path) -> bool:
    """A fit that ran to its end: a best checkpoint and a test report."""
    return (run_dir / "test_metrics.json").is_file() and any(run_dir.glob("checkpoints/best*.ckpt"))


def is_interrupted(run_dir: Path) -> bool:
    """A fit process that started (config.yaml) and saved a last.ckpt but did not finish: what ``--resume``
    goes on from."""
    started = (run_dir / "config.yaml").is_file() and any(run_dir.glob("checkpoints/last*.ckpt"))
    return started and not is_finished(run_dir)


def interrupted_minutes(run_dir: Path) -> list[float]:
    """The minutes of the run's interrupted fit processes that ``--resume`` went on from (recorded here)."""
    path = run_dir / INTERRUPTED_MINUTES
    return json.loads(path.read_text()) if path.is_file() else []


def record_interrupted(run_dir: Path) -> float:
    """Record the interrupted process's minutes: from its config.yaml (written when it started) to its
    newest last*.ckpt, the state the resumed fit goes on from (work after it is done again)."""
    newest = max(p.stat().st_mtime for p in run_dir.glob("checkpoints/last*.ckpt"))
    minutes = round((newest - (run_dir / "config.yaml").stat().st_mtime) / 60, 2)
    atomic_write_text(run_dir / INTERRUPTED_MINUTES, json.dumps(interrupted_minutes(run_dir) + [minutes]) + "\n")
    return minutes


def forget_interrupted(run_dir: Path) -> None:
    (run_dir / INTERRUPTED_MINUTES).unlink(missing_ok=True)


def fit_minutes(run_dir: Path) -> float | None:
    """A reused run's minutes: from its config (written when its last fit process started) to its test
    report (the end), plus the interrupted processes' before it; ``None`` for a run resumed other than
    by ``--resume`` (config.yaml names a ``ckpt_path``), whose earlier minutes are unknown."""
    last = ((run_dir / "test_metrics.json").stat().st_mtime - (run_dir / "config.yaml").stat().st_mtime) / 60
    earlier = interrupted_minutes(run_dir)
    if not earlier and yaml.safe_load((run_dir / "config.yaml").read_text()).get("ckpt_path") is not None:
        return None
    return round(sum(earlier) + last, 2)


def validation_at_best(run_dir: Path) -> dict[str, float]:
    """The run's validation scores (metrics.csv) of the epoch whose checkpoint was kept as the best."""
    epoch = int(re.search(r"epoch=(\d+)", best_checkpoint(run_dir).name).group(1))
    frame = pd.read_csv(run_dir / "metrics.csv")
    columns = [c for c in frame if c.startswith("val/") and c.count("/") == 1]
    rows = frame[(frame["epoch"] == epoch) & frame[columns].notna().any(axis=1)]
    return {c: round(float(rows[c].dropna().iloc[-1]), 4) for c in columns if rows[c].notna().any()}
