"""A SLURM signal at any point of ``fit`` is acted on: during a validation inside an epoch the job saves
at that validation's end and requeues; during the final validation it saves once training has ended
and requeues, and the requeued job trains nothing and only tests; during the test after fit the test
finishes and the job completes (no requeue, no death by SIGUSR1). SLURM is simulated as in
test_slurm_requeue.py: ``SLURM_*`` variables, a stub ``scontrol``, the signal sent by the task itself."""

import csv
import json
import os
import signal
from pathlib import Path

import pytest
import torch

import callbacks.classification_report as classification_report
from callbacks import SlurmRequeue
from cli_helpers import child_env, run_medtext, tiny_config
from medtext.commands import main
from medtext.core.errors import Requeued
from slurm_stub import stub_scontrol

JOB = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "medtext", "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1",
       "SLURM_NNODES": "1", "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
       "SLURM_NODELIST": "127.0.0.1", "SLURM_STEP_ID": "0"}
DATA = {"num_train": 24, "num_val": 8, "num_test": 4, "batch_size": 4}  # 6 steps an epoch


def signal_at(during: str, step: int = 0) -> list[str]:
    return ["--trainer.callbacks+=signal_at_step.SignalAtStep", f"--trainer.callbacks.step={step}",
            f"--trainer.callbacks.during={during}"]


@pytest.fixture
def cluster(tiny_encoder, tmp_path, monkeypatch):
    """This process as task 0 of a one-task SLURM job 4242, with ``scontrol`` stubbed; returns ``fit`` args."""
    monkeypatch.setenv("PATH", f"{stub_scontrol(tmp_path)}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SCONTROL_LOG", str(tmp_path / "scontrol.log"))
    for name, value in JOB.items():
        monkeypatch.setenv(name, value)
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {**DATA, "data_dir": str(tmp_path / "data")},
                         "data_modules.SyntheticAbstractsDataModule")
    return ["fit", "--config", str(config), "--test_after_fit=true"]


@pytest.fixture
def ddp_cluster(tiny_encoder, tmp_path):
    """The folder of a two-task DDP job as test_slurm_requeue.py runs it (``run_job``): 2 epochs of 6 steps."""
    from test_slurm_requeue import DATA as DDP_DATA

    stub_scontrol(tmp_path)
    tiny_config(tmp_path / "fit.yaml", tiny_encoder, {**DDP_DATA, "data_dir": str(tmp_path / "data")},
                "data_modules.SyntheticAbstractsDataModule", max_epochs=2, devices=2, strategy="ddp")
    return tmp_path


@pytest.fixture
def test_reports(monkeypatch) -> list[Path]:
    """The folders ``test_metrics.json`` is written to, one entry a write."""
    written, write = [], classification_report.write_test_report
    monkeypatch.setattr(classification_report, "write_test_report",
                        lambda out, *args: written.append(Path(out)) or write(out, *args))
    return written


def train_rows(run: Path) -> int:
    return sum(1 for row in csv.DictReader(open(run / "metrics.csv")) if row.get("train/loss"))


def last_validation(run: Path) -> dict:
    rows = [row for row in csv.DictReader(open(run / "metrics.csv")) if row.get("val/loss")]
    return {key: float(value) for key, value in rows[-1].items() if key.startswith("val/") and value}


class FakeStrategy:
    @staticmethod
    def reduce_boolean_decision(decision: bool, all: bool = True) -> bool:
        return decision


class FakeTrainer:
    def __init__(self, root: Path):
        self.default_root_dir, self.is_global_zero, self.global_step, self.strategy = str(root), True, 6, FakeStrategy()

    def save_checkpoint(self, path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"global_step": self.global_step}, path)


def test_handler_stays_until_the_command_ends_and_training_end_requeues(cluster, tmp_path):
    """Fast: the handler outlives ``fit``'s teardown while held; a signal that arrived after the last
    training step (the final validation) requeues once training has ended, with a saved state."""
    before = signal.getsignal(signal.SIGUSR1)
    callback = SlurmRequeue()
    callback.hold_handler = True  # as the CLI sets it
    try:
        callback.on_fit_start(None, None)
        callback.signalled = True  # the handler's whole work, as SIGUSR1 during the final validation does
        with pytest.raises(Requeued):
            callback.on_train_end(FakeTrainer(tmp_path / "runs" / "slurm-4242"), None)
        assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
        assert torch.load(tmp_path / "runs/slurm-4242/hpc_ckpt_1.ckpt", weights_only=True)["global_step"] == 6
        callback.teardown(None, None, "fit")
        assert signal.getsignal(signal.SIGUSR1) == callback._handler, "kept for the test after fit"
        callback.release()
        assert signal.getsignal(signal.SIGUSR1) == before, "put back when the command ends"
    finally:
        signal.signal(signal.SIGUSR1, before)


@pytest.mark.slow
def test_signal_during_an_in_epoch_validation_saves_at_its_end_and_resumes_to_the_same_result(cluster, tmp_path,
                                                                                              monkeypatch):
    args = [*cluster, "--trainer.val_check_interval=3"]  # a validation after step 3 and one after step 6
    monkeypatch.setenv("SLURM_JOB_ID", "100")
    assert main(args) == 0  # the uninterrupted job
    expected = last_validation(Path("runs/tiny/slurm-100"))
    expected_test = json.loads(next(Path("runs/tiny/slurm-100").glob("**/test_metrics.json")).read_text())

    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    assert main([*args, *signal_at("validation", step=3)]) == 0
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
    hpc = Path("runs/slurm-4242/hpc_ckpt_1.ckpt")
    assert torch.load(hpc, weights_only=True, mmap=True)["global_step"] == 3, "saved at the validation's end"
    assert not list(Path("runs/tiny/slurm-4242").glob("**/test_metrics.json")), "no test when requeued"

    assert main([*args, *signal_at("validation", step=3)]) == 0  # SLURM restarts the same command
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n", "not requeued again"
    assert not hpc.exists(), "deleted once the run completed"
    run = Path("runs/tiny/slurm-4242")
    assert train_rows(run) == train_rows(Path("runs/tiny/slurm-100")) == 6
    for key, value in expected.items():
        assert last_validation(run)[key] == pytest.approx(value, abs=1e-6), key
    tested = json.loads(next(run.glob("**/test_metrics.json")).read_text())
    assert tested == pytest.approx(expected_test, abs=1e-6)


@pytest.mark.slow
def test_signal_during_the_final_validation_requeues_and_the_requeued_job_only_tests(cluster, tmp_path,
                                                                                     test_reports, capfd, caplog):
    args = [*cluster, *signal_at("validation", step=6)]  # the one epoch's validation: after the last step
    assert main(args) == 0
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n", "the signal was not ignored"
    hpc = Path("runs/slurm-4242/hpc_ckpt_1.ckpt")
    assert torch.load(hpc, weights_only=True, mmap=True)["global_step"] == 6
    assert test_reports == [], "no test when requeued"
    run = Path("runs/tiny/slurm-4242")
    rows = train_rows(run)
    assert rows == 6 and (run / "checkpoints" / "best.ckpt").exists(), "the final validation's bookkeeping done"
    capfd.readouterr()
    caplog.clear()

    assert main(args) == 0  # the requeued job: the same command
    assert f"resuming from {hpc}" in "".join(capfd.readouterr()) + caplog.text  # Lightning's: log records
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n", "not requeued again"
    assert train_rows(run) == rows, "nothing retrained"
    assert len(test_reports) == 1 and (test_reports[0] / "test_metrics.json").exists(), "tested exactly once"
    assert not hpc.exists(), "deleted once the run completed"


@pytest.mark.slow
def test_signal_during_the_test_after_fit_finishes_the_test_without_a_requeue(cluster, tmp_path):
    """A subprocess: on the default action (the handler already put back) SIGUSR1 kills the task."""
    task = run_medtext(*cluster, *signal_at("test"), cwd=tmp_path, check=False, env=child_env(WANDB_MODE="offline"))
    assert task.returncode == 0, f"exit {task.returncode}: {task.stderr[-3000:]}"  # -10: killed by SIGUSR1
    assert "the signal came after training; finished without a requeue" in task.stdout + task.stderr
    assert len(list(Path("runs/tiny/slurm-4242").glob("**/test_metrics.json"))) == 1, "the test finished"
    assert not (tmp_path / "scontrol.log").exists(), "complete: no requeue, so no second test"
    assert not list(Path("runs/slurm-4242").glob("hpc_ckpt_*.ckpt"))


@pytest.mark.slow
def test_ddp_ranks_agree_on_signals_during_validations(ddp_cluster):
    """Two tasks (gloo); only rank 1 gets each signal: during a validation inside the first epoch, then
    (in the requeued job) during the final validation. The third start only tests."""
    from test_slurm_requeue import run_job

    signals = ["--trainer.val_check_interval=3"]  # 6 steps an epoch on each rank: validations every 3 steps
    for step in (3, 12):
        signals += [*signal_at("validation", step), "--trainer.callbacks.rank=1"]
    runs = [run_job(ddp_cluster, "4242", *signals, restarts=restart) for restart in range(3)]
    assert (ddp_cluster / "scontrol.log").read_text() == "requeue 4242\nrequeue 4242\n"
    reports = ["".join(task.stdout + task.stderr for task in tasks).count("test report written to") for tasks in runs]
    assert reports == [0, 0, 1], "tested once, by the job that started after training had ended"
    # kept: last.ckpt is older (Lightning writes it only with a new best), hpc_ckpt_2 holds the final state
    job_folder = ddp_cluster / "runs" / "slurm-4242"
    assert [path.name for path in job_folder.glob("hpc_ckpt_*.ckpt")] == ["hpc_ckpt_2.ckpt"]
    assert torch.load(job_folder / "hpc_ckpt_2.ckpt", weights_only=True, mmap=True)["global_step"] == 12
    rows = list(csv.DictReader(open(ddp_cluster / "runs" / "tiny" / "slurm-4242" / "metrics.csv")))
    assert sorted(int(row["step"]) for row in rows if row.get("train/loss")) == list(range(12)), "each step once"


def test_sigterm_outside_a_slurm_requeue_exits_143(tiny_encoder, tmp_path, capsys):
    """SIGTERM ends the run early: a script must not read that as a finished fit (Lightning exits 0)."""
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {**DATA, "data_dir": str(tmp_path / "data")},
                         "data_modules.SyntheticAbstractsDataModule")
    code = main(["fit", "--config", str(config), *signal_at("train", step=2),
                 "--trainer.callbacks.signal_name=SIGTERM"])
    assert code == 143
    assert "medtext: stopped by SIGTERM; exit status 143" in capsys.readouterr().err
