"""A seed loop in one SLURM job, run for real: ``SEEDS="1 2" scripts/slurm/fit.sbatch`` with a stub
``srun`` that runs its command (numbering the job's steps as SLURM does) and a stub ``scontrol``. The
second seed's fit gets SIGUSR1 and requeues the job; the loop stops there. The requeued job runs the
same script: the first seed's completed fit does nothing, the second resumes its requeue checkpoint.
Each seed ends in its own run folder, trained to the end once."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from cli_helpers import tiny_config
from conftest import ROOT
from slurm_stub import stub_scontrol

pytestmark = pytest.mark.slow

SRUN = """#!/bin/bash
# srun: drop its options, give the step the next id of the job, run the command
while [[ "$1" == --* ]]; do shift; done
steps="$SLURM_STEP_LOG"; echo x >> "$steps"
SLURM_STEP_ID=$(( $(wc -l < "$steps") - 1 )) exec "$@"
"""
CPU = ["--trainer.accelerator=cpu", "--trainer.precision=32-true", "--trainer.strategy=auto"]


@pytest.fixture
def job(tiny_encoder, tmp_path):
    """A checkout (the real packages linked in), its tiny config, and the job's environment."""
    repo = tmp_path / "repo"
    (repo / "configs" / "trainer").mkdir(parents=True)
    (repo / "configs" / "trainer" / "multinode.yaml").write_bytes((ROOT / "configs/trainer/multinode.yaml").read_bytes())
    for package in ("medtext", "data_modules", "callbacks"):
        (repo / package).symlink_to(ROOT / package)
    data = {"num_train": 24, "num_val": 8, "num_test": 4, "batch_size": 4, "data_dir": str(tmp_path / "data")}
    tiny_config(repo / "tiny.yaml", str(tiny_encoder), data, "data_modules.SyntheticAbstractsDataModule",
                max_epochs=2)
    bin_dir = stub_scontrol(tmp_path)
    (bin_dir / "srun").write_text(SRUN)
    (bin_dir / "srun").chmod(0o755)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLURM_", "WANDB_", "PL_"))}
    env.update({"PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
                "PYTHONPATH": str(ROOT / "tests"), "MEDTEXT_VENV": "", "SLURM_SUBMIT_DIR": str(repo),
                "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "medtext", "SLURM_NTASKS": "1",
                "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "1", "SLURM_NODEID": "0", "SLURM_PROCID": "0",
                "SLURM_LOCALID": "0", "SLURM_NODELIST": "127.0.0.1", "SEEDS": "1 2",
                "SCONTROL_LOG": str(tmp_path / "scontrol.log"), "SLURM_STEP_LOG": str(tmp_path / "steps")})
    return repo, env


def sbatch(repo: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    Path(env["SLURM_STEP_LOG"]).unlink(missing_ok=True)  # a new start of the job numbers its steps anew
    return subprocess.run(["bash", str(ROOT / "scripts/slurm/fit.sbatch"), "tiny.yaml", *CPU, *args],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=600)


def last_logged_step(run: Path) -> int:
    return max(int(row["step"]) for row in csv.DictReader((run / "metrics.csv").open()))


def test_a_requeued_seed_loop_skips_the_completed_fit_and_resumes_the_stopped_one(job, tmp_path):
    repo, env = job
    signal = ["--trainer.callbacks+=signal_at_step.SignalAtStep", "--trainer.callbacks.step=3",
              "--trainer.callbacks.seed=2"]
    first = sbatch(repo, env, "--ckpt_path", "auto", *signal)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "the fit of seed 2 requeued the job" in first.stdout
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
    runs = repo / "runs" / "tiny"
    folders = sorted(p.name for p in runs.iterdir())
    assert folders[0] == "slurm-4242" and len(folders) == 2 and folders[1].startswith("slurm-4242-")
    steps = last_logged_step(runs / "slurm-4242")
    hpc = repo / "runs" / folders[1] / "hpc_ckpt_1.ckpt"
    assert (runs / "slurm-4242/checkpoints/fit_completed.json").is_file()
    assert steps > 3 and torch.load(hpc, weights_only=True, mmap=True)["global_step"] == 4  # saved after step 3

    again = sbatch(repo, {**env, "SLURM_RESTART_COUNT": "1"}, "--ckpt_path", "auto", *signal)
    assert again.returncode == 0, again.stderr[-3000:]
    out = again.stdout + again.stderr
    assert "slurm-4242/checkpoints/last.ckpt has completed" in out and "nothing to do" in out
    assert f"was requeued: resuming from runs/{folders[1]}/hpc_ckpt_1.ckpt" in out
    assert last_logged_step(runs / folders[1]) == steps  # trained to the end, as the first seed
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n", "the resumed fit is past the signal's step"
    seeds = [yaml.safe_load((runs / folder / "config.yaml").read_text())["seed_everything"] for folder in folders]
    assert seeds == [1, 2]
