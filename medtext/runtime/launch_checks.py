"""Start-up checks: how a run was launched on a cluster, and which mixed precision the GPU supports."""

from __future__ import annotations

import re
from typing import Mapping, Optional, Sequence, Union

import torch

INTERACTIVE_JOB_NAMES = ("bash", "interactive")  # Lightning ignores SLURM in jobs so named
Devices = Union[int, str, Sequence[int], None]


def requested_devices(devices: Devices) -> Optional[int]:
    """How many devices per node ``trainer.devices`` asks for; ``None`` when Lightning decides
    (``auto``, ``-1``: every visible device) or the value is not a count."""
    if isinstance(devices, bool) or devices is None:
        return None
    if isinstance(devices, int):
        return devices if devices > 0 else None
    if isinstance(devices, str):
        text = devices.strip()
        if re.fullmatch(r"\d+", text):
            return int(text) or None
        if re.fullmatch(r"\d+\s*(,\s*\d+\s*)*,?", text):  # "0,1,3": device indices
            return len([part for part in text.split(",") if part.strip()])
        return None
    if isinstance(devices, Sequence):
        return len(devices) or None
    return None


def torchrun_launched(environ: Mapping[str, str]) -> bool:
    """Lightning's ``TorchElasticEnvironment.detect`` on ``environ``: torchrun sets ``TORCHELASTIC_RUN_ID``
    in every process it starts (``torch.distributed.is_torchelastic_launched``)."""
    return torch.distributed.is_available() and environ.get("TORCHELASTIC_RUN_ID") is not None


def slurm_launch_problem(environ: Mapping[str, str], devices: Devices, num_nodes: Optional[int]) -> Optional[str]:
    """One line saying why this launch will hang or train on fewer devices than asked under SLURM,
    or ``None`` when it looks right (or Lightning does not treat the process as SLURM's).

    Under SLURM, Lightning starts no processes of its own: as soon as ``SLURM_NTASKS`` is set (and the
    job is not named ``bash`` or ``interactive``) it takes each SLURM task for one rank, with
    ``SLURM_NTASKS`` ranks in all (``SLURMEnvironment.detect``). ``sbatch --ntasks-per-node=N`` sets
    ``SLURM_NTASKS`` in the batch script itself, so ``python -m medtext fit --trainer.devices=N`` run
    there without ``srun`` is rank 0 of N ranks that never start: DDP waits for them forever. Lightning
    warns only when ``SLURM_NTASKS`` is absent (then it does start the processes itself, correctly). A
    process that ``srun`` started is a job step, with ``SLURM_STEP_ID`` (and the older ``SLURM_STEPID``)
    set; the batch script (and an ``salloc`` shell) has neither, although it has ``SLURM_PROCID=0``.
    Lightning gives torchrun priority over SLURM (``_choose_and_init_cluster_environment``): a process
    that torchrun started takes torchrun's ranks, also inside a SLURM allocation.

    >>> slurm_launch_problem({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_NTASKS_PER_NODE": "4"}, 4, 1)[:40]
    'SLURM job 7 has 4 tasks but this process'
    >>> slurm_launch_problem({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_STEP_ID": "0"}, 4, 1) is None
    True
    >>> slurm_launch_problem({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1", "TORCHELASTIC_RUN_ID": "7"}, 2, 1) is None
    True
    """
    if torchrun_launched(environ):
        return None  # checked first, as Lightning does: torchrun's ranks, whatever SLURM's task count
    if "SLURM_NTASKS" not in environ or environ.get("SLURM_JOB_NAME") in INTERACTIVE_JOB_NAMES:
        return None  # Lightning launches the processes itself
    try:
        ntasks = int(environ["SLURM_NTASKS"])
    except ValueError:
        return None
    job = f"SLURM job {environ.get('SLURM_JOB_ID', '?')}"
    in_step = "SLURM_STEP_ID" in environ or "SLURM_STEPID" in environ
    if not in_step and ntasks > 1:
        return (f"{job} has {ntasks} tasks but this process was not started by srun, so it is the only one "
                f"of {ntasks} ranks: DDP waits forever for the other {ntasks - 1} (a hang) and a "
                f"one-device run leaves their GPUs idle; start it with `srun python -m medtext ...` "
                f"(scripts/slurm/fit.sbatch)")
    per_node = requested_devices(devices)
    if per_node is None:
        return None
    wanted = per_node * (num_nodes or 1)
    if wanted == ntasks:
        return None
    how = "started by srun" if in_step else "not started by srun"
    effect = (f"trains on {ntasks} device(s), not {wanted}" if ntasks < wanted
              else f"runs {ntasks} processes for {wanted} device(s)")
    return (f"{job} runs {ntasks} task(s) ({how}) but trainer.devices x trainer.num_nodes = "
            f"{per_node} x {num_nodes or 1} = {wanted}: Lightning runs one rank per SLURM task, so this "
            f"{effect}; ask for --nodes={num_nodes or 1} --ntasks-per-node={per_node} (one task per GPU) and "
            f"start it with `srun python -m medtext ...`")


def choose_precision(precision: Optional[str], cuda_available: Optional[bool] = None,
                     bf16_supported: Optional[bool] = None) -> Optional[str]:
    """``bf16-mixed`` becomes ``16-mixed`` (with loss scaling) on CUDA GPUs without bf16 (pre-Ampere)."""
    if str(precision) != "bf16-mixed":
        return precision
    cuda_available = torch.cuda.is_available() if cuda_available is None else cuda_available
    if not cuda_available:
        return precision  # CPU autocast supports bf16
    bf16_supported = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
    return precision if bf16_supported else "16-mixed"


def settle_precision(trainer_config) -> None:
    """Apply :func:`choose_precision` to a parsed ``trainer`` config, saying so when it changes."""
    precision = choose_precision(trainer_config.get("precision"))
    if precision != trainer_config.get("precision"):
        print(f"this GPU has no bf16: using trainer.precision={precision}")
        trainer_config.precision = precision


def with_streaming_checkpoints(plugins) -> list:
    """A config's ``trainer.plugins`` (``None``, one or a list) as a list with medtext's
    :class:`~medtext.runtime.checkpoint.StreamingCheckpointIO` (atomic writes, no in-memory copy), unless it
    brings a ``CheckpointIO`` of its own."""
    from pytorch_lightning.plugins.io import CheckpointIO

    from medtext.runtime.checkpoint import StreamingCheckpointIO

    plugins = [] if plugins is None else list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
    if not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(StreamingCheckpointIO())
    return plugins
