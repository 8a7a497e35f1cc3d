"""SLURM jobs that survive requeueing: a stable identity, a folder of their own, and the resume.

A SLURM job keeps its id when it is requeued; under SLURM, ``fit`` keys everything by that id.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

from pytorch_lightning.utilities import rank_zero_info

from medtext.runtime.job_fits import fit_fingerprint, fit_folder
from medtext.core.requeue_files import latest_hpc_checkpoint, newest_state, saved_checkpoint_dir
from medtext.core.requeue_files import newest_last
from medtext.runtime.resume import VERSIONED_LOGGERS, resolve_last
from medtext.core.slurm_jobs import job_folder, slurm_job_key


def prepare_slurm_fit(fit_config, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """Key a parsed ``fit`` config (in place) by the SLURM job, and resume a requeued job from its
    requeue checkpoint (newer than any ``--ckpt_path`` of the command; ``auto``: the newest state of
    its run). Run it before ``--ckpt_path last`` is resolved; it resolves ``auto`` itself. Returns the
    job key, or ``None`` outside SLURM.

    ``trainer.default_root_dir`` becomes ``<default_root_dir>/slurm-<job>`` (:func:`job_folder`,
    ``medtext.runtime.job_fits``): the requeue checkpoint (``hpc_ckpt_<n>.ckpt``, written by
    :class:`callbacks.SlurmRequeue`) lands there, so no other job (a later run, a sweep trial) ever finds
    it. A CSV or TensorBoard logger without a ``version`` logs to ``<save_dir>/<name>/slurm-<job>``, so
    the requeued job continues the same run folder and checkpoint folder (``ModelCheckpoint`` keeps its
    best score); a W&B run continues through the run id stored in the checkpoint. With ``auto``, that
    run's ``last.ckpt`` is taken instead of the requeue checkpoint when it holds a later step (the job
    was requeued again after it, by a node failure say); with no requeue checkpoint, ``auto`` resumes
    the run that ``last`` would find, else starts fresh in ``slurm-<job>`` (``medtext.runtime.resume``)."""
    key = slurm_job_key(environ)
    if key is None:
        return None
    environ = os.environ if environ is None else environ
    trainer = fit_config.trainer
    base = Path(trainer.get("default_root_dir") or "runs")
    folder, moved = fit_folder(base, job_folder(key, environ), fit_fingerprint(fit_config, environ))
    if moved:
        rank_zero_info(f"SLURM job {key}: {moved}")
    root = base / folder
    trainer.default_root_dir = str(root)
    version: Optional[str] = folder
    checkpoint = latest_hpc_checkpoint(root)
    option = fit_config.get("ckpt_path")
    if checkpoint is None and option is None and restarted(environ) and _name_run(trainer, folder):
        # requeued with no requeue checkpoint (SIGTERM, a node failure, preemption): this fit's own
        # run folder (named above) holds its newest state, if it saved one
        rank_zero_info(f"SLURM job {key} was restarted ({environ.get('SLURM_RESTART_COUNT')}) without a requeue "
                       "checkpoint: resuming this fit's last.ckpt if it has one (as --ckpt_path auto)")
        fit_config.ckpt_path = option = "auto"
    if checkpoint is not None:
        run_checkpoints = saved_checkpoint_dir(checkpoint)
        version = run_checkpoints.parent.name if run_checkpoints is not None else version
        if option == "auto" and run_checkpoints is not None:
            checkpoint = newest_state([checkpoint, newest_last(run_checkpoints)])
        fit_config.ckpt_path = str(checkpoint)
        rank_zero_info(f"SLURM job {key} was requeued: resuming from {checkpoint}")
    elif option == "last":
        version = None  # the run that --ckpt_path last finds continues in its own folder
    elif option == "auto":
        resolve_last(fit_config, requeue_root=base)  # the jobs' folders are <base>/slurm-*
        version = None if fit_config.get("ckpt_path") else version  # nothing found: a fresh run in slurm-<job>
    if version:
        _name_run(trainer, version)
    return key


def restarted(environ: Mapping[str, str]) -> bool:
    """Whether SLURM restarted this job (``SLURM_RESTART_COUNT`` > 0: requeued by a signal, ``scontrol``,
    a node failure or preemption)."""
    count = environ.get("SLURM_RESTART_COUNT") or "0"
    return count.isdigit() and int(count) > 0


def _name_run(trainer, version: str) -> bool:
    """Give the CSV/TensorBoard loggers that name no run ``version``; whether this fit's run folder is
    known (a W&B run's id is not, before it resumes: it is never guessed from other jobs' runs)."""
    loggers = trainer.get("logger")
    named = loggers is False
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        init_args = getattr(logger, "init_args", None)
        class_name = str(getattr(logger, "class_path", "")).rsplit(".", 1)[-1]
        if init_args is not None and class_name in VERSIONED_LOGGERS:
            if init_args.get("version") is None:
                init_args.version = version
            named = named or logger is (loggers[0] if isinstance(loggers, list) else loggers)
    return named
