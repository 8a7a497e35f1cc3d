"""``slurm_launch_problem``: one line when a SLURM launch hangs or trains on fewer devices than asked,
from environments as ``sbatch`` (the batch script) and ``srun`` (a job step) set them. torchrun inside
a SLURM allocation is Lightning's TorchElastic launch, which it prefers to SLURM: no problem, and the
trainer takes torchrun's ranks."""

import os
import warnings

import pytest
from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

from medtext.runtime.launch_checks import requested_devices, slurm_launch_problem, torchrun_launched

# sbatch --nodes=2 --ntasks-per-node=4: the batch script's environment (no SLURM_STEP_ID, but PROCID 0)
BATCH = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "medtext", "SLURM_NNODES": "2", "SLURM_NTASKS": "8",
         "SLURM_NPROCS": "8", "SLURM_NTASKS_PER_NODE": "4", "SLURM_TASKS_PER_NODE": "4(x2)",
         "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}
# srun in that script: task 5 of the job step 0
STEP = {**BATCH, "SLURM_STEP_ID": "0", "SLURM_STEPID": "0", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
        "SLURM_NODEID": "1", "SLURM_STEP_NUM_TASKS": "8"}
# what torchrun --nproc-per-node=2 sets in its second process (torch.distributed.run)
TORCHRUN = {"TORCHELASTIC_RUN_ID": "none", "RANK": "1", "LOCAL_RANK": "1", "GROUP_RANK": "0", "ROLE_RANK": "1",
            "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
# sbatch --nodes=1 --ntasks-per-node=1 --gpus-per-node=2: one task, in which torchrun starts two processes
ONE_TASK = {"SLURM_JOB_ID": "77", "SLURM_JOB_NAME": "medtext", "SLURM_NNODES": "1", "SLURM_NTASKS": "1",
            "SLURM_NTASKS_PER_NODE": "1", "SLURM_TASKS_PER_NODE": "1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
            "SLURM_NODEID": "0"}


@pytest.mark.parametrize("devices", [4, "4", [0, 1, 2, 3], "0,1,2,3", "auto", -1])
def test_srun_with_one_task_per_device_is_fine(devices):
    assert slurm_launch_problem(STEP, devices, 2) is None


def test_an_old_slurm_step_id_name_counts_as_srun():
    step = dict(STEP)
    del step["SLURM_STEP_ID"]
    assert slurm_launch_problem(step, 4, 2) is None


@pytest.mark.parametrize("devices", [4, "auto", 1])
def test_no_srun_in_a_multi_task_job_says_it_hangs(devices):
    line = slurm_launch_problem(BATCH, devices, 2)
    assert line is not None and "\n" not in line
    assert "SLURM job 4242 has 8 tasks" in line and "not started by srun" in line
    assert "hang" in line and "srun python -m medtext" in line


def test_one_node_without_srun_says_it_hangs():
    one_node = {**BATCH, "SLURM_NNODES": "1", "SLURM_NTASKS": "4", "SLURM_TASKS_PER_NODE": "4"}
    assert "waits forever for the other 3 (a hang)" in slurm_launch_problem(one_node, 4, 1)


@pytest.mark.parametrize("extra", [{}, {"SLURM_STEP_ID": "0"}])
def test_one_task_with_several_devices_says_one_device(extra):
    """--ntasks=1 --gres=gpu:4, then devices=4: Lightning runs one rank, on one GPU, and says nothing."""
    job = {"SLURM_JOB_ID": "9", "SLURM_JOB_NAME": "medtext", "SLURM_NNODES": "1", "SLURM_NTASKS": "1",
           "SLURM_PROCID": "0", **extra}
    line = slurm_launch_problem(job, 4, 1)
    assert "trains on 1 device(s), not 4" in line and "--ntasks-per-node=4" in line
    assert ("(started by srun)" in line) == bool(extra)


def test_more_tasks_than_devices():
    line = slurm_launch_problem(STEP, 2, 2)
    assert "runs 8 processes for 4 device(s)" in line and "--nodes=2 --ntasks-per-node=2" in line


@pytest.mark.parametrize("environ", [
    {},  # not in SLURM
    {"SLURM_JOB_ID": "5", "SLURM_NNODES": "1", "SLURM_JOB_NAME": "medtext"},  # --gres=gpu:4, no task count
    {**BATCH, "SLURM_JOB_NAME": "interactive"},  # Lightning ignores SLURM in such jobs
    {**BATCH, **TORCHRUN},  # torchrun inside the job
    {**BATCH, "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "1"},  # one task, one device
])
def test_launches_lightning_handles_are_fine(environ):
    assert slurm_launch_problem(environ, 1 if environ.get("SLURM_NTASKS") == "1" else 4, 1) is None


@pytest.mark.parametrize(("devices", "count"), [
    (3, 3), ("3", 3), (" 2 ", 2), ([0, 2], 2), ((1,), 1), ("0,2,", 2), ("1, 3", 2),
    ("auto", None), (-1, None), ("-1", None), (0, None), ("0", None), ([], None), (None, None), (True, None),
])
def test_requested_devices(devices, count):
    assert requested_devices(devices) == count


def test_lightning_treats_the_batch_script_as_srun_and_stays_silent(monkeypatch, tmp_path):
    """The premise: in the batch script of an --ntasks-per-node job Lightning detects SLURM (so it
    starts no processes) with SLURM_NTASKS ranks, and its own srun warning stays silent."""
    srun = tmp_path / "srun"
    srun.write_text("#!/bin/sh\n")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for key in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(key)
    for key, value in BATCH.items():
        monkeypatch.setenv(key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SLURMEnvironment.detect()
        environment = SLURMEnvironment()
    assert environment.creates_processes_externally and environment.world_size() == 8
    assert environment.global_rank() == 0
    monkeypatch.delenv("SLURM_NTASKS")  # then Lightning starts the processes itself (and warns)
    with pytest.warns(UserWarning, match="srun"):
        assert not SLURMEnvironment.detect()
    assert slurm_launch_problem(os.environ, 4, 2) is None


@pytest.mark.parametrize(("environ", "devices", "num_nodes"), [
    ({**ONE_TASK, **TORCHRUN}, 2, 1),  # torchrun in the batch script of a one-task job (issue 27)
    ({**ONE_TASK, **TORCHRUN, "SLURM_STEP_ID": "0"}, 2, 1),  # srun torchrun, one task per node
    ({**BATCH, **TORCHRUN}, 2, 1),  # eight SLURM tasks, none of them started by srun: not what runs
    ({**STEP, "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1", **TORCHRUN, "WORLD_SIZE": "8"}, 4, 2),
])
def test_torchrun_inside_slurm_is_not_a_problem(environ, devices, num_nodes):
    assert slurm_launch_problem(environ, devices, num_nodes) is None


@pytest.mark.parametrize("environ", [{**ONE_TASK, **TORCHRUN}, ONE_TASK, TORCHRUN, {}])
def test_torchrun_is_detected_as_lightning_does(environ, monkeypatch):
    for key in [k for k in os.environ if k.startswith("SLURM_") or k in TORCHRUN]:
        monkeypatch.delenv(key)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert torchrun_launched(environ) == TorchElasticEnvironment.detect() == ("TORCHELASTIC_RUN_ID" in environ)


@pytest.mark.parametrize(("torchrun", "environment"), [(True, TorchElasticEnvironment), (False, SLURMEnvironment)])
def test_the_trainer_takes_torchruns_ranks_inside_slurm(torchrun, environment, tiny_encoder, tmp_path, monkeypatch):
    """torchrun --nproc-per-node=2 in a one-task SLURM job: the trainer is built with torchrun's two ranks
    (a SLURMEnvironment would refuse devices=2 for --ntasks-per-node=1); without torchrun, SLURM's one
    task, and medtext's SLURMEnvironment without Lightning's requeue handler (callbacks.SlurmRequeue)."""
    from cli_helpers import tiny_config
    from medtext.commands.cli import build_cli

    for key in [k for k in os.environ if k.startswith("SLURM_") or k in TORCHRUN]:
        monkeypatch.delenv(key)
    for key, value in {**ONE_TASK, **(TORCHRUN if torchrun else {}), "RANK": "0", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(key, value)
    devices = 2 if torchrun else 1
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {"num_train": 8, "num_val": 4},
                         "data_modules.SyntheticAbstractsDataModule", devices=devices, strategy="ddp")
    trainer = build_cli(["--config", str(config)], run=False).trainer
    cluster = trainer.strategy.cluster_environment
    assert type(cluster) is environment and trainer.world_size == devices
    cluster.validate_settings(num_devices=devices, num_nodes=1)  # Lightning's launcher at fit: the ValueError
    assert getattr(cluster, "auto_requeue", False) is False
