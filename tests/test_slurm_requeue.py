"""A SLURM job requeued before its time limit continues the same run, on CPU (2 tasks, gloo).

SLURM is simulated: each task is started with the variables ``srun`` sets, ``scontrol`` is a stub
that records the requeue, and one task gets SIGUSR1 mid-epoch, as ``#SBATCH --signal`` sends it.
The requeued job runs the same command again; a job that follows another in the same folder starts fresh.
"""

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from cli_helpers import tiny_config
from conftest import ROOT
from medtext.core.slurm_jobs import slurm_job_key
from slurm_stub import stub_scontrol

DATA = {"num_train": 48, "num_val": 12, "num_test": 8, "batch_size": 4}  # 6 steps per epoch on each of 2 ranks
WANDB = {"class_path": "pytorch_lightning.loggers.WandbLogger",
         "init_args": {"project": "medtext", "save_dir": "runs", "offline": True}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_tasks(folder: Path, job_id: str, tasks: int, *args: str, restarts: int = 0) -> list[subprocess.CompletedProcess]:
    """``srun python -m medtext ARGS`` in job ``job_id`` of ``tasks`` tasks on one node, ``scontrol`` stubbed
    (``folder/scontrol.log``); waits for every task and requires each to exit 0 (-10: killed by SIGUSR1)."""
    stub_scontrol(folder)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}  # no W&B service of pytest's
    env = {**inherited, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]),
           "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ['PATH']}", "SCONTROL_LOG": str(folder / "scontrol.log"),
           "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(folder),
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "SLURM_JOB_ID": job_id, "SLURM_JOB_NAME": "medtext", "SLURM_NTASKS": str(tasks),
           "SLURM_NTASKS_PER_NODE": str(tasks), "SLURM_NNODES": "1", "SLURM_NODEID": "0", "SLURM_NODELIST": "127.0.0.1",
           "SLURM_STEP_ID": "0", "SLURM_RESTART_COUNT": str(restarts)}
    command = [sys.executable, "-m", "medtext", *args]
    started = [subprocess.Popen(command, cwd=folder, env={**env, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(tasks)]
    results = []
    for task in started:
        out, err = task.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(command, task.returncode, out, err))
    for result in results:
        assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-3000:]}"
    return results


def run_job(folder: Path, job_id: str, *extra: str, restarts: int = 0) -> list[subprocess.CompletedProcess]:
    """The job's two tasks, as ``srun python -m medtext fit ...`` starts them; waits for both."""
    return run_tasks(folder, job_id, 2, "fit", "--config", str(folder / "fit.yaml"), "--test_after_fit=true",
                     "--trainer.callbacks+=parameter_snapshots.ParameterSnapshots",
                     f"--trainer.callbacks.folder={folder / 'snapshots' / job_id}", *extra, restarts=restarts)


def final_state(run: Path) -> tuple[int, str, dict]:
    """(step and metrics of the last validation, W&B run id) of a run folder."""
    rows = [r for r in csv.DictReader(open(run / "metrics.csv")) if r.get("val/loss")]
    metrics = {k: float(v) for k, v in rows[-1].items() if k.startswith("val/") and v}
    run_id = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["medtext_wandb_run_id"]
    return int(rows[-1]["step"]), run_id, metrics


def best_score(run: Path) -> tuple[str, float]:
    """The best checkpoint's folder and score, as the final last.ckpt's ModelCheckpoint holds them."""
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["callbacks"]
    tracker = next(v for k, v in state.items() if k.startswith("ModelCheckpoint") and "val/macro_f1" in k)
    return Path(tracker["best_model_path"]).parent.parent.name, float(tracker["best_model_score"])


@pytest.fixture
def cluster(tiny_encoder, tmp_path):
    stub_scontrol(tmp_path)
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {**DATA, "data_dir": str(tmp_path / "data")},
                         "data_modules.SyntheticAbstractsDataModule", max_epochs=2, accelerator="cpu",
                         devices=2, strategy="ddp")
    settings = yaml.safe_load(config.read_text())
    settings["trainer"]["logger"] = [settings["trainer"]["logger"], WANDB]
    config.write_text(yaml.safe_dump(settings))
    return tmp_path


@pytest.mark.slow
def test_requeued_job_continues_the_same_run_to_the_same_result(cluster):
    run_job(cluster, "100")  # the uninterrupted job
    expected = final_state(cluster / "runs" / "tiny" / "slurm-100")

    signal = ["--trainer.callbacks+=signal_at_step.SignalAtStep", "--trainer.callbacks.step=2",
              "--trainer.callbacks.rank=1"]  # only one task gets it: the ranks must agree
    first = run_job(cluster, "4242", *signal)  # job 100's finished run is in the same folder: not resumed
    assert "resuming" not in first[0].stdout + first[0].stderr
    assert (cluster / "scontrol.log").read_text().split("\n")[0] == "requeue 4242"
    saved = torch.load(cluster / "runs" / "slurm-4242" / "hpc_ckpt_1.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == 3, "saved at the step boundary after the signal, mid-epoch"
    run_id = saved["medtext_wandb_run_id"]
    assert run_id != expected[1], "a W&B run of its own, not job 100's"
    assert not (cluster / "runs" / "medtext" / run_id / "test_metrics.json").exists(), "no test when requeued"

    requeued = run_job(cluster, "4242", *signal, restarts=1)  # the same command, as SLURM restarts it
    assert "was requeued: resuming from" in requeued[0].stdout + requeued[0].stderr
    assert sorted(p.name for p in (cluster / "runs" / "tiny").iterdir()) == ["slurm-100", "slurm-4242"]
    rows = list(csv.DictReader(open(cluster / "runs" / "tiny" / "slurm-4242" / "metrics.csv")))
    assert {0, 1} <= {int(r["step"]) for r in rows if r.get("train/loss")}, "rows from before the requeue kept"
    step, resumed_id, metrics = final_state(cluster / "runs" / "tiny" / "slurm-4242")
    assert (cluster / "runs" / "medtext" / run_id / "test_metrics.json").exists(), "tested once finished"
    assert not (cluster / "runs" / "slurm-4242" / "hpc_ckpt_1.ckpt").exists(), "deleted once the run completed"
    assert expected[0] + 1 == 2 * DATA["num_train"] // 2 // DATA["batch_size"], "both epochs ran"
    print(f"requeued job: run folder runs/tiny/slurm-4242, W&B run {run_id} before and {resumed_id} after, "
          f"step {step}; uninterrupted: step {expected[0]}")
    assert resumed_id == run_id and step == expected[0]
    for key, value in expected[2].items():
        print(f"{key}: requeued {metrics[key]} uninterrupted {value}")
        assert metrics[key] == pytest.approx(value, abs=1e-6), key

    best = [best_score(cluster / "runs" / "tiny" / f"slurm-{job}") for job in ("100", "4242")]
    assert best[1] == ("slurm-4242", best[0][1]), "the requeued job kept tracking the best checkpoint, in its folder"
    weights = [torch.load(cluster / "snapshots" / job / "rank1_epoch1.pt", weights_only=True)["state"]
               for job in ("100", "4242")]
    for name, value in weights[0].items():
        assert torch.allclose(weights[1][name], value, atol=1e-6), f"{name} differs after the requeue"



def test_job_key_is_stable_across_requeues_and_absent_outside_slurm():
    job = {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": "2", "SLURM_JOB_NAME": "medtext"}
    assert slurm_job_key(job) == slurm_job_key({**job, "SLURM_RESTART_COUNT": "1"}) == "4242"
    assert slurm_job_key({**job, "SLURM_ARRAY_JOB_ID": "40", "SLURM_ARRAY_TASK_ID": "7"}) == "40_7"
    assert slurm_job_key({"SLURM_JOB_ID": "4242"}) is None, "the batch script itself, not an srun task"
    assert slurm_job_key({**job, "SLURM_JOB_NAME": "interactive"}) is None


def fit_config(tmp_path, ckpt_path=None, version=None):
    from jsonargparse import Namespace

    logger = Namespace(class_path="pytorch_lightning.loggers.CSVLogger",
                       init_args=Namespace(save_dir="runs", name="x", version=version))
    return Namespace(ckpt_path=ckpt_path, trainer=Namespace(default_root_dir=str(tmp_path / "runs"), logger=logger))


def test_requeue_checkpoint_wins_and_keeps_its_run_folder(tmp_path):
    from medtext.runtime.slurm import prepare_slurm_fit

    job = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "medtext"}
    fresh = fit_config(tmp_path)
    assert prepare_slurm_fit(fresh, job) == "7" and fresh.ckpt_path is None
    assert (fresh.trainer.default_root_dir, fresh.trainer.logger.init_args.version) == (
        str(tmp_path / "runs" / "slurm-7"), "slurm-7")
    resuming = fit_config(tmp_path, ckpt_path="last")
    prepare_slurm_fit(resuming, job)
    assert resuming.trainer.logger.init_args.version is None, "--ckpt_path last picks the run folder"

    (tmp_path / "runs" / "slurm-7").mkdir(parents=True, exist_ok=True)  # holds the fit's fingerprint
    state = {"ModelCheckpoint{'monitor': None}": {"dirpath": str(tmp_path / "runs/x/version_3/checkpoints")}}
    for number in (1, 2):
        torch.save({"callbacks": state}, tmp_path / "runs" / "slurm-7" / f"hpc_ckpt_{number}.ckpt")
    requeued = fit_config(tmp_path, ckpt_path="old.ckpt")
    prepare_slurm_fit(requeued, job)
    assert requeued.ckpt_path == str(tmp_path / "runs" / "slurm-7" / "hpc_ckpt_2.ckpt"), "the newest requeue state"
    assert requeued.trainer.logger.init_args.version == "version_3", "the folder it was saved from"
    other = fit_config(tmp_path)
    prepare_slurm_fit(other, {**job, "SLURM_JOB_ID": "8"})
    assert other.ckpt_path is None, "another job never resumes this one's state"
