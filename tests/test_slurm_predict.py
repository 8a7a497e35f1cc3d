"""SLURM's signal before the time limit, outside ``fit``: ``predict`` stops after the chunks it has written,
requeues the job, and the requeued job (the same command) predicts only the missing chunks, each row once;
``validate`` and ``test`` alone finish their run (SIGUSR1 does not kill them) and do not requeue.

SLURM is simulated as in test_slurm_requeue.py: each task started with the variables ``srun`` sets, a stub
``scontrol`` recording the requeue, the signal sent by each task to itself at a chosen batch (as
``#SBATCH --signal`` sends it to every task). Each command runs in its own process: SIGUSR1's default
action is to kill, which is what a regression would do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from slurm_stub import stub_scontrol
import test_corpus_predict
from test_corpus_predict import listing, read_rows
from test_slurm_requeue import free_port

trained = test_corpus_predict.trained  # the fixture: a tiny checkpoint and a corpus of 57 abstracts

JOB = {"SLURM_JOB_ID": "4343", "SLURM_JOB_NAME": "medtext", "SLURM_NNODES": "1", "SLURM_NODEID": "0",
       "SLURM_NODELIST": "127.0.0.1", "SLURM_STEP_ID": "0"}
PREDICT = ["--data.id_column", "pmid", "--data.skip_invalid_rows", "true", "--predictions.keep_columns", "journal",
           "--predictions.chunk_rows", "4"]  # 57 rows: 15 chunks of one batch each


def signal_at(during: str, step: int = 0, rank: int = 0) -> list[str]:
    return ["--trainer.callbacks+=signal_at_step.SignalAtStep", f"--trainer.callbacks.step={step}",
            f"--trainer.callbacks.during={during}", f"--trainer.callbacks.rank={rank}"]


def run_tasks(folder: Path, tasks: int, *args: str, restarts: int = 0) -> list[subprocess.CompletedProcess]:
    """``srun python -m medtext ARGS`` in a job of ``tasks`` tasks on one node; waits for every task."""
    stub_scontrol(folder)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]),
           "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ['PATH']}", "SCONTROL_LOG": str(folder / "scontrol.log"),
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), **JOB, "SLURM_NTASKS": str(tasks),
           "SLURM_NTASKS_PER_NODE": str(tasks), "SLURM_RESTART_COUNT": str(restarts)}
    command = [sys.executable, "-m", "medtext", *args]
    started = [subprocess.Popen(command, cwd=folder, env={**env, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(tasks)]
    results = []
    for task in started:
        out, err = task.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(command, task.returncode, out, err))
    for result in results:
        assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-3000:]}"  # -10: killed by SIGUSR1
    return results


def requeues(folder: Path) -> str:
    log = folder / "scontrol.log"
    return log.read_text() if log.exists() else ""


@pytest.mark.slow
def test_a_signalled_ddp_predict_requeues_and_the_requeued_job_writes_each_row_once(trained, tmp_path):
    checkpoint, corpus = trained
    out = tmp_path / "labels.csv"
    base = ["predict", "--ckpt_path", str(checkpoint), "--data.predict_file", str(corpus), *PREDICT]
    one = tmp_path / "one" / "labels.csv"
    one.parent.mkdir()
    run_tasks(one.parent, 1, *base, "--predictions.output_file", str(one))  # the same rows, one process
    predict = [*base, "--predictions.output_file", str(out), "--trainer.accelerator", "cpu",
               "--trainer.strategy", "ddp", "--trainer.devices", "2"]
    first = run_tasks(tmp_path, 2, *predict, *signal_at("predict", 2, rank=0), *signal_at("predict", 2, rank=1))
    assert requeues(tmp_path) == "requeue 4343\n", "rank zero requeued the job, once"
    assert all("requeued on rank" in task.stderr for task in first)
    written = sorted(p.name for p in Path(f"{out}.parts").glob("chunk-*"))
    assert not out.exists() and 2 <= len(written) < 15, written  # each rank stopped after its third batch
    second = run_tasks(tmp_path, 2, *predict, restarts=1)
    assert "resuming" in second[0].stdout and requeues(tmp_path) == "requeue 4343\n", "no second requeue"
    rows = read_rows(out)
    assert [r["pmid"] for r in rows] == [f"P{i}" for i in range(57)], "each id exactly once, in input order"
    assert [r["label"] for r in rows] == [r["label"] for r in read_rows(one)]
    assert listing(tmp_path) == ["bin", "labels.csv", "one", "scontrol.log"], "the chunks became the output"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["validate", "test"])
def test_a_signal_during_validate_or_test_alone_finishes_it_without_a_requeue(trained, tmp_path, command):
    checkpoint, _ = trained
    during = "validation" if command == "validate" else "test"
    reports = tmp_path / "reports"
    task, = run_tasks(tmp_path, 1, command, "--ckpt_path", str(checkpoint), "--trainer.default_root_dir", str(reports),
                      *signal_at(during))
    assert f"the signal came during {command}; finished without a requeue" in task.stdout + task.stderr
    finished = len(list(reports.glob("**/test_metrics.json"))) == 1 if command == "test" else "val/macro_f1" in task.stdout
    assert finished, task.stdout[-2000:]
    assert requeues(tmp_path) == ""
