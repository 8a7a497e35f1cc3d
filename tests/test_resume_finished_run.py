"""Resuming a run that has already finished trains nothing: no table from the sanity check's two
batches is printed as the last epoch's validation; and resuming deletes the temporary files that writes
interrupted by SIGKILL left in the run folder and its checkpoints/ folder, nothing else."""

import os
import shutil
from pathlib import Path

import pytest

from cli_helpers import in_folder, run
from test_run_lock import RUN, fit_args, killed_write


@pytest.fixture(scope="module")
def finished_run(tiny_encoder, tmp_path_factory) -> Path:
    """A folder whose ``runs/`` holds a one-epoch run, finished (``max_epochs`` reached)."""
    folder = tmp_path_factory.mktemp("finished")
    with in_folder(folder):
        run(*fit_args(folder, tiny_encoder))
    return folder


def test_resuming_a_finished_run_prints_no_sanity_check_table(finished_run, tiny_encoder, tmp_path, capsys):
    shutil.copytree(finished_run / "runs", "runs")
    capsys.readouterr()
    cli = run(*fit_args(tmp_path, tiny_encoder, "--ckpt_path", "last"))
    out = capsys.readouterr().out
    assert cli.trainer.current_epoch == 1 and "resuming from" in out  # nothing trained
    assert "validation (last epoch)" not in out


def test_resuming_deletes_leftover_temporary_files(finished_run, tiny_encoder, tmp_path):
    shutil.copytree(finished_run / "runs", "runs")
    leftovers = [killed_write(RUN / "metrics.csv"), killed_write(RUN / "checkpoints" / "last.ckpt")]
    others = [RUN / "checkpoints" / "notes.tmp", RUN / "reports" / leftovers[0].name]
    for path in others:
        path.parent.mkdir(exist_ok=True)
        path.write_text("not a leftover of medtext's")
    for path in [*leftovers, *others]:
        os.utime(path, (0, 0))  # written long ago
    run(*fit_args(tmp_path, tiny_encoder, "--ckpt_path", "last"))
    assert not any(path.exists() for path in leftovers) and all(path.is_file() for path in others)
