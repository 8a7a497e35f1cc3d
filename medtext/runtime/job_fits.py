"""Several fits in one SLURM job, kept apart: each gets a job folder of its own, the same on requeue."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any, Mapping, Optional

FINGERPRINT_FILE = "fit_fingerprint.json"
# what makes two fits different experiments: the model, the data, the seed and what the trainer
# trains for; not where it writes, what it logs or which callbacks watch it
FIT_SECTIONS = ("model", "data", "seed_everything")
TRAINING_KEYS = ("max_epochs", "max_steps", "min_epochs", "min_steps", "accumulate_grad_batches", "gradient_clip_val",
                 "gradient_clip_algorithm", "precision", "limit_train_batches", "val_check_interval",
                 "check_val_every_n_epoch", "deterministic", "devices", "num_nodes")


def fit_fingerprint(fit_config, environ: Mapping[str, str]) -> str:
    """12 hex digits of sha256 over the ``fit`` config's model, data, seed and training settings, and
    the SLURM step (``ckpt_path`` and the folders a fit writes to are not part of it).

    A job may run several fits (a seed loop in one batch script, several ``srun`` steps). Keyed by the
    job id alone they would share ``slurm-<job>``: the second would overwrite the first's files and,
    after a requeue, resume the first's checkpoint with its own settings: a fit is identified by this
    fingerprint instead."""
    config: Any = fit_config.as_dict() if hasattr(fit_config, "as_dict") else dict(fit_config)
    trainer = config.get("trainer") or {}
    fit = {**{key: config.get(key) for key in FIT_SECTIONS}, "trainer": {key: trainer.get(key) for key in TRAINING_KEYS}}
    step = environ.get("SLURM_STEP_ID") or environ.get("SLURM_STEPID")
    identity = json.dumps({"fit": fit, "step": step}, sort_keys=True, default=_stable)
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def _stable(value: Any) -> str:
    """A value JSON cannot write, as text that is the same in every process (an object's default
    ``str`` holds its memory address)."""
    if isinstance(value, (str, os.PathLike, int, float)):
        return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    return f"{type(value).__module__}.{type(value).__qualname__}"


def recorded_fingerprint(folder: Path, fingerprint: str) -> Optional[str]:
    """The fingerprint recorded in ``folder`` (recording ``fingerprint`` if there is none yet: the first
    writer wins, and every rank of one fit writes the same); ``None`` when the record is unreadable."""
    record = folder / FINGERPRINT_FILE
    if not record.exists():
        folder.mkdir(parents=True, exist_ok=True)
        staged = folder / f".{FINGERPRINT_FILE}.{socket.gethostname()}.{os.getpid()}.tmp"
        staged.write_text(json.dumps({"fingerprint": fingerprint}) + "\n", encoding="utf-8")
        try:
            os.link(staged, record)  # atomic and exclusive: a complete record or none
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()
    try:
        found = json.loads(record.read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def fit_folder(base: Path, job_folder: str, fingerprint: str) -> tuple[str, Optional[str]]:
    """(the folder below ``base`` for this fit, a line saying why it is not ``job_folder`` or ``None``).

    The first fit of a job records its fingerprint in ``slurm-<job>/fit_fingerprint.json`` and keeps
    that plain folder (one fit per job, the usual case); a fit with another fingerprint uses
    ``slurm-<job>-<first 8 digits of its fingerprint>``. A requeued job runs the same commands, so each
    fit finds its own folder again."""
    recorded = recorded_fingerprint(base / job_folder, fingerprint)
    if recorded == fingerprint:
        return job_folder, None
    own = f"{job_folder}-{fingerprint[:8]}"
    why = "another fit of this job (another config, seed or srun step)" if recorded else "an unreadable fingerprint"
    return own, f"{base / job_folder} holds {why}: this fit uses {base / own}, and never resumes the other's checkpoints"
