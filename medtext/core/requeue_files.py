"""Requeue checkpoints (``hpc_ckpt_<n>.ckpt``): their names, what a checkpoint holds, and their cleanup.

A SLURM job writes them into its own folder, ``<default_root_dir>/slurm-<job>`` (``medtext.runtime.slurm``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Optional

from medtext.core.checkpoint_reading import load_checkpoint_file

HPC_CHECKPOINT = re.compile(r"hpc_ckpt_(\d+)\.ckpt")


def hpc_checkpoints(folder: Path) -> list[Path]:
    """The requeue checkpoints directly in ``folder``, lowest number first."""
    found = [(int(m.group(1)), p) for p in folder.glob("hpc_ckpt_*.ckpt")
             if (m := HPC_CHECKPOINT.fullmatch(p.name)) and p.is_file()]
    return [path for _, path in sorted(found)]


def latest_hpc_checkpoint(folder: Path) -> Optional[Path]:
    """The requeue checkpoint with the highest number in ``folder``, if any."""
    found = hpc_checkpoints(folder)
    return found[-1] if found else None


def next_hpc_checkpoint(folder: Path) -> Path:
    latest = latest_hpc_checkpoint(folder)
    number = int(HPC_CHECKPOINT.fullmatch(latest.name).group(1)) + 1 if latest else 1
    return folder / f"hpc_ckpt_{number}.ckpt"


def _saved(checkpoint: Path) -> Optional[dict]:
    """A checkpoint's top-level dictionary, its tensors memory-mapped (a 1.3 GB file is not read);
    ``None`` when it cannot be read (a file of another kind, or cut short)."""
    try:
        saved = load_checkpoint_file(checkpoint)
    except Exception:  # noqa: BLE001 - any unreadable file: the caller falls back to the mtime
        return None
    return saved if isinstance(saved, dict) else None


def saved_step(checkpoint: Path) -> Optional[int]:
    """The global step a checkpoint holds, if it can be read."""
    step = (_saved(checkpoint) or {}).get("global_step")
    return step if isinstance(step, int) else None


def saved_checkpoint_dir(checkpoint: Path) -> Optional[Path]:
    """The ``checkpoints`` folder of the run a checkpoint was saved from (its ``ModelCheckpoint``'s
    ``dirpath``: ``<run folder>/checkpoints``)."""
    for key, state in ((_saved(checkpoint) or {}).get("callbacks") or {}).items():
        if str(key).startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("dirpath"):
            return Path(state["dirpath"])
    return None


def newest_state(checkpoints: Iterable[Optional[Path]]) -> Path:
    """The checkpoint holding the highest global step (``None`` entries skipped); by modification time
    only when a step cannot be read, and between equal steps: what a checkpoint holds decides."""
    found = [c for c in checkpoints if c is not None]
    steps = {c: saved_step(c) for c in found}
    if None in steps.values():
        return max(found, key=lambda c: c.stat().st_mtime)
    return max(found, key=lambda c: (steps[c], c.stat().st_mtime))


def run_requeue_checkpoints(run_checkpoints: Path, root: Path) -> list[Path]:
    """The newest requeue checkpoint of each job folder ``<root>/slurm-*`` that was saved from the run
    whose ``checkpoints`` folder is ``run_checkpoints``: a job that resumed this run, requeued and then
    never ran again (cancelled, or its requeue failed). Other runs' files are never taken."""
    ours = run_checkpoints.resolve()  # a saved dirpath may be relative to the folder the job ran in
    found = []
    for folder in sorted(root.glob("slurm-*")):
        latest = latest_hpc_checkpoint(folder) if folder.is_dir() else None
        saved_from = saved_checkpoint_dir(latest) if latest is not None else None
        if saved_from is not None and saved_from.resolve() == ours:
            found.append(latest)
    return found


def delete_requeue_checkpoints(folder: Path, last: Path) -> tuple[list[Path], list[Path]]:
    """Delete the ``hpc_ckpt_<n>.ckpt`` files directly in ``folder`` (nothing else) that the run's
    ``last`` checkpoint supersedes (see :func:`newest_state`); returns (deleted, kept). Each holds the
    whole training state (about 1.3 GB for BiomedBERT with AdamW)."""
    deleted, kept = [], []
    for path in hpc_checkpoints(folder):
        if newest_state([path, last]) != last:
            kept.append(path)  # a later state than last.ckpt (Lightning's may be stale): still a resume point
            continue
        path.unlink(missing_ok=True)  # already gone (deleted by hand): nothing to do
        deleted.append(path)
    return deleted, kept


def newest_last(checkpoints: Path) -> Optional[Path]:
    """The most recently written ``last*.ckpt`` in a ``checkpoints`` folder, if any."""
    found = [p for p in checkpoints.glob("last*.ckpt") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
