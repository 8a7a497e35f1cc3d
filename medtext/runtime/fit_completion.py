"""A record that a fit has completed, so ``--ckpt_path auto`` run again does nothing instead of
resuming a finished run (which trains nothing but would test it again).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from medtext.core.atomic_files import atomic_write_text

COMPLETED_FILE = "fit_completed.json"
STOP_SETTINGS = ("max_epochs", "max_steps", "min_epochs", "min_steps")


def stop_settings(trainer_config: Any) -> dict[str, Any]:
    """The trainer settings (parsed config or ``pl.Trainer``-like mapping) that decide when training ends."""
    return {key: trainer_config.get(key) for key in STOP_SETTINGS}


def record_completed(last: Path, step: int, trainer_config: Any, tested: bool, last_removed: bool = False) -> None:
    """Write the completion record of the run whose ``last.ckpt`` is ``last``: the step it holds and the
    settings that decide when training stops; ``last_removed``: ``fit --keep_last false`` deleted it. Global
    rank zero, after ``fit`` (and ``--test_after_fit``) ended normally."""
    record = {"last_checkpoint": last.name, "global_step": step, "tested": tested, "last_removed": last_removed,
              **stop_settings(trainer_config)}
    atomic_write_text(last.parent / COMPLETED_FILE, json.dumps(record, indent=2) + "\n")


def read_record(checkpoints: Path) -> Optional[dict]:
    """The completion record in the ``checkpoints`` folder, or ``None`` (none, or unreadable: resuming
    is always safe)."""
    try:
        record = json.loads((checkpoints / COMPLETED_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def removed_last(checkpoints: Path) -> Optional[Path]:
    """The ``last.ckpt`` path of a completed run whose ``last.ckpt`` ``--keep_last false`` removed: the run
    is still found by ``--ckpt_path last``/``auto``, which then say it completed."""
    record = read_record(checkpoints)
    if record is None or not record.get("last_removed") or not record.get("last_checkpoint"):
        return None
    last = checkpoints / str(record["last_checkpoint"])
    return None if last.exists() else last


def completed_record(last: Path, step: Optional[int], fit_config: Any) -> Optional[Path]:
    """The completion record that says the run of ``last`` (holding ``step``) has nothing left to do
    for this parsed ``fit`` config, or ``None``: ``last.ckpt`` at the recorded step (or removed by
    ``--keep_last false``), the same stopping settings, and no test asked that was not run. ``auto`` then
    stops with :class:`medtext.core.errors.FitCompleted` (a seed loop in a requeued SLURM job skips its
    finished fits)."""
    record = read_record(last.parent)
    if record is None:
        return None
    removed = record.get("last_removed") and not last.exists()
    if not removed and (step is None or record.get("global_step") != step):
        return None  # trained on after the record (or another last.ckpt)
    if record.get("last_checkpoint") != last.name or stop_settings(record) != stop_settings(fit_config.trainer):
        return None  # a longer max_epochs: train on
    if fit_config.get("test_after_fit") and not record.get("tested"):
        return None  # resuming trains nothing and runs the test
    return last.parent / COMPLETED_FILE
