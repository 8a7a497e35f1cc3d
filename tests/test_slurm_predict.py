"""SLURM's signal before the time limit, outside ``fit``: ``predict`` stops after the chunks it has written,
requeues the job, and the requeued job (the same command) predicts only the missing chunks, each row once;
``validate`` and ``test`` alone finish their run (SIGUSR1 does not kill them) and do not requeue.

SLURM is simulated as in test_slurm_requeue.py: each task started with the variables ``srun`` sets, a stub
``scontrol`` recording the requeue, the signal sent by each task to itself at a chosen batch (as
``#SBATCH --signal`` sends it to every task). Each command runs in its own process: SIGUSR1's default
action is to kill, which is what a regression would do."""

from __future__ import annotations

from pathlib import Path

import pytest

import test_corpus_predict
from test_corpus_predict import listing, read_rows
from test_slurm_requeue import run_tasks

trained = test_corpus_predict.trained  # the fixture: a tiny checkpoint and a corpus of 57 abstracts

JOB = "4343"
PREDICT = ["--data.id_column", "pmid", "--data.skip_invalid_rows", "true", "--predictions.keep_columns", "journal",
           "--predictions.chunk_rows", "4"]  # 57 rows: 15 chunks of one batch each


def signal_at(during: str, step: int = 0, rank: int = 0) -> list[str]:
    return ["--trainer.callbacks+=signal_at_step.SignalAtStep", f"--trainer.callbacks.step={step}",
            f"--trainer.callbacks.during={during}", f"--trainer.callbacks.rank={rank}"]


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
    run_tasks(one.parent, JOB, 1, *base, "--predictions.output_file", str(one))  # the same rows, one process
    predict = [*base, "--predictions.output_file", str(out), "--trainer.accelerator", "cpu",
               "--trainer.strategy", "ddp", "--trainer.devices", "2"]
    first = run_tasks(tmp_path, JOB, 2, *predict, *signal_at("predict", 2, rank=0), *signal_at("predict", 2, rank=1))
    assert requeues(tmp_path) == f"requeue {JOB}\n", "rank zero requeued the job, once"
    assert all("requeued on rank" in task.stderr for task in first)
    written = sorted(p.name for p in Path(f"{out}.parts").glob("chunk-*"))
    assert not out.exists() and 2 <= len(written) < 15, written  # each rank stopped after its third batch
    second = run_tasks(tmp_path, JOB, 2, *predict, restarts=1)
    assert "resuming" in second[0].stdout and requeues(tmp_path) == f"requeue {JOB}\n", "no second requeue"
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
    task, = run_tasks(tmp_path, JOB, 1, command, "--ckpt_path", str(checkpoint), "--trainer.default_root_dir", str(reports),
                      *signal_at(during))
    assert f"the signal came during {command}; finished without a requeue" in task.stdout + task.stderr
    finished = len(list(reports.glob("**/test_metrics.json"))) == 1 if command == "test" else "val/macro_f1" in task.stdout
    assert finished, task.stdout[-2000:]
    assert requeues(tmp_path) == ""
