"""SLURM jobs that survive requeueing: a stable identity, a folder of their own, and the resume.

A SLURM job keeps its id when it is requeued (an array task: ``<array job id>_<task id>``). Under
SLURM, ``fit`` keys everything by that id:

- ``trainer.default_root_dir`` becomes ``<default_root_dir>/slurm-<job>``: the requeue checkpoint
  (``hpc_ckpt_<n>.ckpt``, written by :class:`callbacks.SlurmRequeue`) lands there, so no other job
  (a later run, a sweep trial) ever finds it;
- a CSV or TensorBoard logger without a ``version`` logs to ``<save_dir>/<name>/slurm-<job>``, so the
  requeued job continues the same run folder and checkpoint folder (``ModelCheckpoint`` keeps its
  best score); a W&B run continues through the run id stored in the checkpoint;
- when that folder holds a requeue checkpoint, ``fit`` resumes from it (it is newer than any
  ``--ckpt_path`` the command gives), in the run folder it was saved from.

>>> slurm_job_key({"SLURM_JOB_ID": "812", "SLURM_NTASKS": "4", "SLURM_JOB_NAME": "medtext"})
'812'
>>> slurm_job_key({"SLURM_ARRAY_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": "3", "SLURM_JOB_ID": "80",
...                "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "sweep"})
'77_3'
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Mapping, Optional

import torch
from pytorch_lightning.utilities import rank_zero_info

from .errors import MedtextError
from .resume import VERSIONED_LOGGERS

HPC_CHECKPOINT = re.compile(r"hpc_ckpt_(\d+)\.ckpt")


def slurm_job_key(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The job's id, the same across requeues; ``None`` outside a SLURM job step (``srun``) or in
    an interactive one (job name ``bash`` or ``interactive``, as Lightning decides)."""
    environ = os.environ if environ is None else environ
    if "SLURM_NTASKS" not in environ or environ.get("SLURM_JOB_NAME") in ("bash", "interactive"):
        return None
    array_job, task = environ.get("SLURM_ARRAY_JOB_ID"), environ.get("SLURM_ARRAY_TASK_ID")
    key = f"{array_job}_{task}" if array_job and task else environ.get("SLURM_JOB_ID")
    return key if key and re.fullmatch(r"[0-9_]+", key) else None


def latest_hpc_checkpoint(folder: Path) -> Optional[Path]:
    """The requeue checkpoint with the highest number in ``folder``, if any."""
    found = [(int(m.group(1)), p) for p in folder.glob("hpc_ckpt_*.ckpt") if (m := HPC_CHECKPOINT.fullmatch(p.name))]
    return max(found)[1] if found else None


def next_hpc_checkpoint(folder: Path) -> Path:
    latest = latest_hpc_checkpoint(folder)
    number = int(HPC_CHECKPOINT.fullmatch(latest.name).group(1)) + 1 if latest else 1
    return folder / f"hpc_ckpt_{number}.ckpt"


def run_version(checkpoint: Path) -> Optional[str]:
    """The run folder's name (``slurm-<job>``, ``version_3`` ...) that a checkpoint's
    ``ModelCheckpoint`` wrote into: ``<run folder>/checkpoints``."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    for key, state in (saved.get("callbacks") or {}).items():
        if str(key).startswith("ModelCheckpoint") and state.get("dirpath"):
            return Path(state["dirpath"]).parent.name
    return None


def prepare_slurm_fit(fit_config, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """Key a parsed ``fit`` config (in place) by the SLURM job, and resume a requeued job from its
    requeue checkpoint (newer than any ``--ckpt_path`` of the command). Run it before
    ``--ckpt_path last`` is resolved. Returns the job key, or ``None`` outside SLURM."""
    key = slurm_job_key(environ)
    if key is None:
        return None
    trainer = fit_config.trainer
    root = Path(trainer.get("default_root_dir") or "runs") / f"slurm-{key}"
    trainer.default_root_dir = str(root)
    version: Optional[str] = f"slurm-{key}"
    checkpoint = latest_hpc_checkpoint(root)
    if checkpoint is not None:
        fit_config.ckpt_path = str(checkpoint)
        version = run_version(checkpoint) or version
        rank_zero_info(f"SLURM job {key} was requeued: resuming from {checkpoint}")
    elif fit_config.get("ckpt_path") == "last":
        version = None  # the run that --ckpt_path last finds continues in its own folder
    loggers = trainer.get("logger")
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        init_args = getattr(logger, "init_args", None)
        class_name = str(getattr(logger, "class_path", "")).rsplit(".", 1)[-1]
        if version and init_args is not None and class_name in VERSIONED_LOGGERS and init_args.get("version") is None:
            init_args.version = version
    return key


def requeue(key: str) -> None:
    """``scontrol requeue <job>``: the job goes back to the queue and restarts with the same id."""
    try:
        result = subprocess.run(["scontrol", "requeue", key], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as err:
        raise MedtextError(f"SLURM job {key}: scontrol requeue failed: {err}") from None
    if result.returncode != 0:
        raise MedtextError(f"SLURM job {key}: scontrol requeue exited {result.returncode}: "
                           f"{' '.join(result.stderr.split())}")
