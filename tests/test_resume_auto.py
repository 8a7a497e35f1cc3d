"""``fit --ckpt_path auto`` resumes this command's run when there is one (the rules of ``last``, also
ambiguous where ``last`` is) and starts fresh otherwise; a requeue checkpoint of the run wins when it
holds a later step. A completed run's requeue checkpoints are deleted from its job's folder, never
another job's, and kept when the job is requeued. SLURM is simulated as in test_slurm_requeue.py."""

import os
from pathlib import Path

import pytest
import torch
from jsonargparse import Namespace

from cli_helpers import run, tiny_config
from medtext.commands import main
from medtext.core.errors import MedtextError
from medtext.runtime.resume import resolve_last
from medtext.runtime.slurm import prepare_slurm_fit
from slurm_stub import stub_scontrol
from test_resume_last import MODEL, OTHER_MODEL, csv_logger, make_run
from test_resume_last import fit_config as last_config

JOB = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "medtext"}


def auto_config(logger: dict, model: dict = MODEL) -> Namespace:
    config = last_config(logger, model)
    config.ckpt_path = "auto"
    return config


def state(path: Path, step: int, run_checkpoints: Path) -> Path:
    """A checkpoint holding ``step``, saved from the run whose checkpoints folder is ``run_checkpoints``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    callbacks = {"ModelCheckpoint{'monitor': None}": {"dirpath": str(run_checkpoints)}}
    torch.save({"global_step": step, "callbacks": callbacks}, path)
    return path


def test_auto_starts_fresh_when_this_run_has_no_last_ckpt(tmp_path, capsys):
    other = make_run(Path("runs/hoc/version_0"), OTHER_MODEL)
    config = auto_config(csv_logger())
    resolve_last(config)
    assert config.ckpt_path is None and config.trainer.logger.init_args.version is None
    assert capsys.readouterr().out == (f"--ckpt_path auto: no last.ckpt of this model and data below runs/hoc "
                                       f"(only other configs' runs: {other}): starting fresh\n")
    named = auto_config(csv_logger(version=5))
    resolve_last(named)
    assert named.ckpt_path is None and "runs/hoc/version_5/checkpoints" in capsys.readouterr().out


def test_auto_resumes_the_run_last_finds_and_is_ambiguous_where_last_is(tmp_path, capsys):
    ours = make_run(Path("runs/hoc/version_0"), age=60)
    config = auto_config(csv_logger())
    resolve_last(config)
    assert config.ckpt_path == str(ours) and config.trainer.logger.init_args.version == "version_0"
    assert capsys.readouterr().out == f"resuming from {ours}\n"
    make_run(Path("runs/hoc/version_1"))
    with pytest.raises(MedtextError) as error:
        resolve_last(auto_config(csv_logger()))
    assert str(error.value).startswith("--ckpt_path auto is ambiguous: 2 runs") and "\n" not in str(error.value)


def test_auto_takes_a_requeue_checkpoint_of_the_run_holding_a_later_step(tmp_path):
    last = make_run(Path("runs/hoc/version_0"), age=60)
    state(last, 10, last.parent)
    later = state(Path("runs/slurm-5/hpc_ckpt_1.ckpt"), 12, last.parent.resolve())  # a job that was never restarted
    other_run = make_run(Path("runs/hoc/version_1"), OTHER_MODEL)
    state(Path("runs/slurm-6/hpc_ckpt_1.ckpt"), 40, other_run.parent)  # another run's: never taken
    config = auto_config(csv_logger())
    resolve_last(config)
    assert config.ckpt_path == str(later) and config.trainer.logger.init_args.version == "version_0"
    state(later, 8, last.parent)  # older than the last.ckpt now, although written later
    config = auto_config(csv_logger())
    resolve_last(config)
    assert config.ckpt_path == str(last)


def test_auto_under_slurm_starts_fresh_in_the_jobs_folder_or_takes_the_later_state(tmp_path, capsys):
    fresh = auto_config(csv_logger())
    assert prepare_slurm_fit(fresh, JOB) == "7" and fresh.ckpt_path is None
    assert fresh.trainer.logger.init_args.version == "slurm-7", "a requeue continues this folder"
    assert "starting fresh" in capsys.readouterr().out

    run_checkpoints = Path("runs/hoc/slurm-7/checkpoints")
    hpc = state(Path("runs/slurm-7/hpc_ckpt_1.ckpt"), 3, run_checkpoints)
    last = state(run_checkpoints / "last.ckpt", 6, run_checkpoints)  # written after a restart, then requeued again
    requeued = auto_config(csv_logger())
    prepare_slurm_fit(requeued, JOB)
    assert requeued.ckpt_path == str(last) and requeued.trainer.logger.init_args.version == "slurm-7"
    state(last, 2, run_checkpoints)
    requeued = auto_config(csv_logger())
    prepare_slurm_fit(requeued, JOB)
    assert requeued.ckpt_path == str(hpc)


def trial_config() -> Namespace:
    config = last_config(csv_logger())
    config.ckpt_path = None  # a sweep trial's command: no --ckpt_path
    return config


def test_a_sweep_trial_never_resumes_another_trials_requeue_checkpoint(tmp_path, capsys):
    first = {**JOB, "WANDB_SWEEP_ID": "sweep1", "WANDB_RUN_ID": "trial1"}
    run_checkpoints = Path("runs/hoc/slurm-7-trial1/checkpoints")
    hpc = state(Path("runs/slurm-7-trial1/hpc_ckpt_1.ckpt"), 3, run_checkpoints)
    other = trial_config()
    prepare_slurm_fit(other, {**first, "WANDB_RUN_ID": "trial2"})  # the requeued job's agent got another trial
    assert other.ckpt_path is None and other.trainer.default_root_dir == "runs/slurm-7-trial2"
    assert other.trainer.logger.init_args.version == "slurm-7-trial2"
    same = trial_config()
    prepare_slurm_fit(same, first)  # the preempted trial itself, handed out again to this job
    assert same.ckpt_path == str(hpc) and same.trainer.logger.init_args.version == "slurm-7-trial1"
    outside = trial_config()
    prepare_slurm_fit(outside, {**JOB, "WANDB_RUN_ID": "trial1"})  # not a sweep: the job's own folder
    assert outside.trainer.default_root_dir == "runs/slurm-7"


class FakeTrainer(Namespace):
    def __init__(self, root: Path, run_checkpoints: Path, rank: int = 0):
        super().__init__(default_root_dir=str(root), is_global_zero=rank == 0, interrupted=False,
                         checkpoint_callbacks=[Namespace(dirpath=str(run_checkpoints))])


def test_completed_run_deletes_only_its_jobs_superseded_requeue_checkpoints(tmp_path, monkeypatch, capsys):
    from callbacks import SlurmRequeue

    for name, value in JOB.items():
        monkeypatch.setenv(name, value)
    run_checkpoints = Path("runs/hoc/slurm-7/checkpoints")
    ours = [state(Path(f"runs/slurm-7/hpc_ckpt_{n}.ckpt"), n, run_checkpoints) for n in (1, 2)]
    later = state(Path("runs/slurm-7/hpc_ckpt_3.ckpt"), 9, run_checkpoints)  # a later step than last.ckpt
    others = [state(Path("runs/slurm-8/hpc_ckpt_1.ckpt"), 1, Path("x")), Path("runs/slurm-7/notes.txt")]
    others[1].write_text("not a requeue checkpoint")
    last = state(run_checkpoints / "last.ckpt", 6, run_checkpoints)
    callback = SlurmRequeue()
    callback.on_fit_start(None, None)
    try:
        for kept in (FakeTrainer(Path("runs/slurm-7"), run_checkpoints, rank=1),  # not rank zero
                     FakeTrainer(Path("runs/slurm-8"), run_checkpoints),  # not this job's folder
                     FakeTrainer(Path("runs/slurm-7"), Path("runs/hoc/empty"))):  # no last.ckpt
            callback.on_fit_end(kept, None)
            assert all(path.exists() for path in [*ours, later, *others]) and capsys.readouterr().out == ""
        callback.on_fit_end(FakeTrainer(Path("runs/slurm-7"), run_checkpoints), None)
    finally:
        callback.teardown(None, None, "fit")
    assert not any(path.exists() for path in ours) and all(path.exists() for path in [later, *others])
    assert capsys.readouterr().out == (f"SLURM job 7 completed: deleted its requeue checkpoints {ours[0]}, {ours[1]} "
                                       f"({last} holds a later state); kept {later} (a later state)\n")


@pytest.fixture
def fit_yaml(tiny_encoder, tmp_path) -> Path:
    data = {"num_train": 24, "num_val": 8, "num_test": 4, "batch_size": 4,  # 6 steps an epoch
            "data_dir": str(tmp_path / "data")}
    return tiny_config(tmp_path / "fit.yaml", tiny_encoder, data, "data_modules.SyntheticAbstractsDataModule")


def test_auto_fit_starts_fresh_then_resumes_its_run_and_skips_it_once_completed(fit_yaml, capsys):
    first = run("fit", "--config", str(fit_yaml), "--ckpt_path", "auto")
    assert first.trainer.global_step == 6 and "starting fresh" in capsys.readouterr().out
    last = Path("runs/tiny/version_0/checkpoints/last.ckpt")
    record = last.parent / "fit_completed.json"
    before = last.stat().st_mtime_ns
    assert main(["fit", "--config", str(fit_yaml), "--ckpt_path", "auto"]) == 0  # the same command again
    assert capsys.readouterr().out.strip().endswith(f"the run of {last} has completed ({record}): nothing to do")
    assert last.stat().st_mtime_ns == before and sorted(p.name for p in Path("runs/tiny").iterdir()) == ["version_0"]
    again = run("fit", "--config", str(fit_yaml), "--ckpt_path", "auto", "--trainer.max_epochs", "2")
    assert "resuming from runs/tiny/version_0/checkpoints/last.ckpt" in capsys.readouterr().out  # more epochs
    assert again.trainer.global_step == 12 and sorted(p.name for p in Path("runs/tiny").iterdir()) == ["version_0"]
    test_asked = ["fit", "--config", str(fit_yaml), "--ckpt_path", "auto", "--trainer.max_epochs", "2"]
    assert main([*test_asked, "--test_after_fit", "true"]) == 0  # not tested yet: resumes, trains nothing, tests
    assert "resuming from" in capsys.readouterr().out and Path("runs/tiny/version_0/test_metrics.json").is_file()
    assert main([*test_asked, "--test_after_fit", "true"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_requeued_job_resumes_with_auto_and_deletes_its_requeue_checkpoint(fit_yaml, tmp_path, monkeypatch, capfd,
                                                                           caplog):
    monkeypatch.setenv("PATH", f"{stub_scontrol(tmp_path)}{os.pathsep}{os.environ['PATH']}")
    for name, value in {**JOB, "SLURM_JOB_ID": "4242", "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "1",
                        "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODELIST": "127.0.0.1",
                        "SLURM_STEP_ID": "0", "SCONTROL_LOG": str(tmp_path / "scontrol.log")}.items():
        monkeypatch.setenv(name, value)
    other_job = state(Path("runs/slurm-99/hpc_ckpt_1.ckpt"), 1, Path("runs/tiny/slurm-99/checkpoints"))
    args = ["fit", "--config", str(fit_yaml), "--ckpt_path", "auto"]
    signal = ["--trainer.callbacks+=signal_at_step.SignalAtStep", "--trainer.callbacks.step=2"]

    assert main([*args, *signal]) == 0  # a first start: fresh; SIGUSR1 at step 2, requeued
    out = "".join(capfd.readouterr())
    assert "starting fresh" in out and (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
    hpc = Path("runs/slurm-4242/hpc_ckpt_1.ckpt")
    assert torch.load(hpc, weights_only=True, mmap=True)["global_step"] == 3, "kept after the requeue"

    caplog.clear()
    assert main(args) == 0  # SLURM restarts the same command
    out = "".join(capfd.readouterr()) + caplog.text  # Lightning's rank-zero messages are log records
    assert f"resuming from {hpc}" in out and f"deleted its requeue checkpoints {hpc}" in out
    assert not hpc.exists() and other_job.exists(), "only this job's, once completed"
    assert torch.load("runs/tiny/slurm-4242/checkpoints/last.ckpt", weights_only=True, mmap=True)["global_step"] == 6
