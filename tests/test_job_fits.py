"""Several fits in one SLURM job are kept apart, and a job SLURM restarted without a requeue
checkpoint (SIGTERM, node failure, preemption) resumes its own fit's ``last.ckpt`` (medtext/runtime/job_fits.py,
medtext/runtime/slurm.py). Simulated: ``SLURM_*`` variables, no scheduler."""

import csv
from pathlib import Path

import pytorch_lightning as pl
import torch

from cli_helpers import shipped_checkpoints, tiny_config
from medtext.commands import main
from medtext.runtime.job_fits import fit_fingerprint
from medtext.runtime.slurm import prepare_slurm_fit
from test_resume_auto import state
from test_resume_last import MODEL, OTHER_MODEL, csv_logger, make_run, namespace

JOB = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "medtext"}


def job_config(model: dict = MODEL, seed: int = 1, ckpt_path=None):
    return namespace({"ckpt_path": ckpt_path, "seed_everything": seed, "model": model,
                      "trainer": {"default_root_dir": "runs", "logger": csv_logger(), "max_epochs": 3},
                      "data": {"class_path": "data_modules.AbstractsDataModule", "init_args": {"batch_size": 8}}})


def test_fits_of_one_job_get_their_own_folders_and_never_resume_each_other(tmp_path, caplog):
    first, second, trial = job_config(seed=1), job_config(seed=2), job_config(OTHER_MODEL, seed=1)
    for config in (first, second, trial):
        prepare_slurm_fit(config, JOB)
    folders = [config.trainer.logger.init_args.version for config in (first, second, trial)]
    assert folders[0] == "slurm-7" and len(set(folders)) == 3 and all(f.startswith("slurm-7-") for f in folders[1:])
    assert "holds another fit of this job" in caplog.text  # Lightning's rank-zero lines are log records
    hpc = state(Path("runs/slurm-7/hpc_ckpt_1.ckpt"), 3, Path("runs/hoc/slurm-7/checkpoints"))  # the first fit's

    requeued = {**JOB, "SLURM_RESTART_COUNT": "1"}
    again = [job_config(seed=1), job_config(seed=2), job_config(OTHER_MODEL, seed=1)]
    for config in again:
        prepare_slurm_fit(config, requeued)
    assert again[0].ckpt_path == str(hpc), "the first fit resumes its own requeue checkpoint"
    assert again[1].ckpt_path is None and again[2].ckpt_path is None, "the others never take it"
    assert [config.trainer.logger.init_args.version for config in again] == folders, "the same folders again"


def test_the_fingerprint_is_the_experiment_not_where_it_writes():
    base = fit_fingerprint(job_config(), {})
    moved = job_config(ckpt_path="auto")
    moved.trainer.default_root_dir, moved.trainer.logger.init_args.version = "elsewhere", "v9"
    assert fit_fingerprint(moved, {}) == base
    assert fit_fingerprint(job_config(seed=2), {}) != base and fit_fingerprint(job_config(OTHER_MODEL), {}) != base
    assert fit_fingerprint(job_config(), {"SLURM_STEP_ID": "1"}) != fit_fingerprint(job_config(), {"SLURM_STEP_ID": "0"})


def test_a_restart_without_a_requeue_checkpoint_resumes_this_fits_last_ckpt(tmp_path, caplog):
    fresh = job_config()
    prepare_slurm_fit(fresh, JOB)
    last = make_run(Path("runs/hoc/slurm-7"))  # what the run saved before SIGTERM or a node failure
    restarted = job_config()
    prepare_slurm_fit(restarted, {**JOB, "SLURM_RESTART_COUNT": "2"})
    assert restarted.ckpt_path == str(last) and restarted.trainer.logger.init_args.version == "slurm-7"
    assert "restarted (2) without a requeue checkpoint" in caplog.text
    not_restarted = job_config()
    prepare_slurm_fit(not_restarted, JOB)
    assert not_restarted.ckpt_path is None, "a first start never resumes"
    other_fit = job_config(seed=5)
    prepare_slurm_fit(other_fit, {**JOB, "SLURM_RESTART_COUNT": "1"})
    assert other_fit.ckpt_path is None, "another fit of the job has no last.ckpt of its own: it starts fresh"


class CrashAtStep(pl.Callback):
    """A node failure at a training step: the process ends with an error, no requeue checkpoint."""

    def __init__(self, step: int = 4):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            raise RuntimeError("node failure")


def test_a_restarted_fit_continues_from_last_ckpt_and_appends_its_logs(tiny_encoder, tmp_path, monkeypatch):
    data = {"num_train": 24, "num_val": 8, "num_test": 4, "batch_size": 4, "data_dir": str(tmp_path / "data")}
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, data, "data_modules.SyntheticAbstractsDataModule",
                         callbacks=shipped_checkpoints(every_n_train_steps=2))
    for name, value in {**JOB, "SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0"}.items():
        monkeypatch.setenv(name, value)
    args = ["fit", "--config", str(config)]
    try:
        main([*args, "--trainer.callbacks+=test_job_fits.CrashAtStep"])
    except RuntimeError as crash:
        assert str(crash) == "node failure"
    run_dir = Path("runs/tiny/slurm-4242")
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, mmap=True)["global_step"] == 2
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # SLURM runs the same command again
    assert main(args) == 0
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, mmap=True)["global_step"] == 6
    with open(run_dir / "metrics.csv", newline="") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle) if row.get("train/loss")]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 5, "the first start's rows kept"
    assert sorted(p.name for p in Path("runs/tiny").iterdir()) == ["slurm-4242"]
