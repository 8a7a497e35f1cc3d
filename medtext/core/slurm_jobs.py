"""A SLURM job's identity (its id, its folder's name) and ``scontrol requeue``."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Mapping, Optional

from medtext.core.errors import MedtextError


def slurm_job_key(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The job's id, the same across requeues; ``None`` outside a SLURM job step (``srun``) or in
    an interactive one (job name ``bash`` or ``interactive``, as Lightning decides). An array task's
    is ``<array job id>_<task id>``.

    >>> slurm_job_key({"SLURM_JOB_ID": "812", "SLURM_NTASKS": "4", "SLURM_JOB_NAME": "medtext"})
    '812'
    >>> slurm_job_key({"SLURM_ARRAY_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": "3", "SLURM_JOB_ID": "80",
    ...                "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "sweep"})
    '77_3'
    """
    environ = os.environ if environ is None else environ
    if "SLURM_NTASKS" not in environ or environ.get("SLURM_JOB_NAME") in ("bash", "interactive"):
        return None
    array_job, task = environ.get("SLURM_ARRAY_JOB_ID"), environ.get("SLURM_ARRAY_TASK_ID")
    key = f"{array_job}_{task}" if array_job and task else environ.get("SLURM_JOB_ID")
    return key if key and re.fullmatch(r"[0-9_]+", key) else None


def job_folder(key: str, environ: Mapping[str, str]) -> str:
    """``slurm-<job>``; for a W&B sweep trial ``slurm-<job>-<run id>``: a requeued job's agent may be
    handed another trial, which must not resume this one's requeue checkpoint with its own values."""
    run_id = environ.get("WANDB_RUN_ID") if environ.get("WANDB_SWEEP_ID") else None
    return f"slurm-{key}-{run_id}" if run_id and re.fullmatch(r"[A-Za-z0-9_-]+", run_id) else f"slurm-{key}"


def requeue(key: str) -> None:
    """``scontrol requeue <job>``: the job goes back to the queue and restarts with the same id."""
    try:
        result = subprocess.run(["scontrol", "requeue", key], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as err:
        raise MedtextError(f"SLURM job {key}: scontrol requeue failed: {err}") from None
    if result.returncode != 0:
        raise MedtextError(f"SLURM job {key}: scontrol requeue exited {result.returncode}: "
                           f"{' '.join(result.stderr.split())}")
