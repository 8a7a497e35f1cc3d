"""One writer per run folder: a second ``fit`` into a locked run folder stops in one line naming the
holder's pid and host, before writing anything; a lock left by a dead process is taken over with a
warning; the lock is released when the fit ends, also when it fails; only global rank zero locks."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from cli_helpers import run, tiny_config
from conftest import ROOT
from medtext.model.classifier import TextClassifier
from medtext.commands import main
from medtext.core.errors import DataError, MedtextError
from medtext.runtime.run_lock import LOCK_FILE, RunLock, RunLocks
from test_wandb import WANDB_CONFIG, offline_wandb  # noqa: F401 - offline_wandb: a fixture

SYNTHETIC = {"num_train": 24, "num_val": 10, "num_test": 5}
RUN = Path("runs/tiny/version_0")  # tiny_config's CSV logger, with --trainer.logger.init_args.version=0
HOST = socket.gethostname()
HOLD = ("import sys; from medtext.runtime.run_lock import RunLock; RunLock(sys.argv[1]).acquire(); "
        "print('locked', flush=True); sys.stdin.read()")  # holds the lock until its stdin closes
KILLED_WRITE = ("import os, signal, sys; from medtext.core.atomic_files import atomic_open; "
                "writing = atomic_open(sys.argv[1], 'wb'); writing.__enter__().write(b'partial'); "
                "os.kill(os.getpid(), signal.SIGKILL)")


def fit_args(tmp_path: Path, tiny_encoder: str, *extra: str) -> list[str]:
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, SYNTHETIC, "data_modules.SyntheticAbstractsDataModule")
    return ["fit", "--config", str(config), "--trainer.logger.init_args.version=0", *extra]


def dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


def write_record(folder: Path, **record) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_FILE).write_text(json.dumps({"started": "2024-01-01T00:00:00+00:00", **record}))
    return folder / LOCK_FILE


def killed_write(target: Path) -> Path:
    """The temporary file that ``atomic_open`` leaves beside ``target`` when its process gets SIGKILL."""
    target.parent.mkdir(parents=True, exist_ok=True)
    before = set(target.parent.iterdir())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    assert subprocess.run([sys.executable, "-c", KILLED_WRITE, str(target)], env=env).returncode == -signal.SIGKILL
    (leftover,) = set(target.parent.iterdir()) - before
    return leftover


def assert_released(folder: Path) -> None:
    assert not (folder / LOCK_FILE).exists()
    RunLock(folder).acquire().release()  # nothing holds it


def test_a_second_fit_into_a_locked_run_folder_fails_in_one_line(tiny_encoder, tmp_path, capsys):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(RUN)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(fit_args(tmp_path, tiny_encoder)) == 2
    finally:
        holder.communicate("")
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"medtext: error: run folder {RUN} is in use: ")
    assert f"held by pid {holder.pid} on host {HOST}" in error
    assert [p.name for p in RUN.iterdir()] == [LOCK_FILE]  # nothing written: no config.yaml, metrics.csv, checkpoints


def test_a_stale_lock_is_taken_over_with_a_warning_and_released_after_fit(tiny_encoder, tmp_path, recwarn):
    pid = dead_pid()
    write_record(RUN, pid=pid, host=HOST)
    run(*fit_args(tmp_path, tiny_encoder))
    messages = [str(w.message) for w in recwarn]
    assert any(f"taking over the lock of pid {pid} on host {HOST}" in m for m in messages), messages
    assert not any("exists and is not empty" in m for m in messages)  # the lock file is no previous run
    assert (RUN / "config.yaml").is_file() and (RUN / "checkpoints" / "last.ckpt").is_file()
    assert_released(RUN)


@pytest.mark.parametrize("where", ["before_fit", "training_step"])
def test_the_lock_is_released_after_a_failing_fit(tiny_encoder, tmp_path, monkeypatch, where):
    import medtext.runtime.data_report

    def fail(*args, **kwargs):
        assert (RUN / LOCK_FILE).is_file()  # held while the fit runs
        raise DataError("this fit fails")

    monkeypatch.setattr(*((medtext.runtime.data_report, "check_before_fit", fail) if where == "before_fit"
                          else (TextClassifier, "training_step", fail)))
    with pytest.raises(MedtextError, match="this fit fails"):
        run(*fit_args(tmp_path, tiny_encoder))
    assert_released(RUN)


def test_a_locked_wandb_run_is_not_started_again(tiny_encoder, tmp_path, offline_wandb):  # noqa: F811
    """A W&B run given its id (as ``--ckpt_path`` of a W&B run gives it) is locked before W&B starts it."""
    with RunLock(Path("runs/medtext/abc123")):
        with pytest.raises(MedtextError, match=f"held by pid {os.getpid()} on host {HOST}"):
            run(*fit_args(tmp_path, tiny_encoder, "--config", WANDB_CONFIG, "--trainer.logger.init_args.id=abc123"))
    assert not Path("runs/wandb").exists()


def test_lock_rules_without_a_fit(tmp_path):
    folder = tmp_path / "run"
    with RunLock(folder):
        record = json.loads((folder / LOCK_FILE).read_text())
        assert record["pid"] == os.getpid() and record["host"] == HOST and record["started"]
        with pytest.raises(MedtextError, match=f"held by pid {os.getpid()} on host {HOST}"):
            RunLock(folder).acquire()  # another open file: flock refuses it, also in this process
    assert_released(folder)
    write_record(folder, pid=dead_pid(), host="another-host")
    with pytest.raises(MedtextError, match="on host another-host.*if that run has ended, delete the lock file"):
        RunLock(folder).acquire()  # another host's process cannot be checked from here
    write_record(folder, pid=dead_pid(), host="another-host", job="812")
    with pytest.warns(UserWarning, match="SLURM job 812"):
        RunLock(folder, job="812").acquire().release()  # this requeued job's earlier run


def test_only_global_rank_zero_locks(tmp_path):
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"rank 1 looked for its run folder ({name})")

    trainer = SimpleNamespace(is_global_zero=False, fast_dev_run=False, loggers=[Untouchable()],
                              default_root_dir=str(tmp_path))
    RunLocks().lock_folders(trainer).close()
    assert not any(tmp_path.iterdir())


def test_leftover_temporary_files_go_when_the_lock_is_taken_and_released(tmp_path):
    folder = tmp_path / "run"
    leftovers = [killed_write(folder / "config.yaml"), killed_write(folder / "checkpoints" / "last.ckpt")]
    kept = [killed_write(folder / "reports" / "x.csv"),  # another folder
            *(folder / name for name in ("notes.tmp", ".last.ckpt.tmp", ".keep.abc.tmp", "a.12345678.tmp"))]
    for path in kept[1:]:
        path.write_text("not medtext's")
    for path in [*leftovers, *kept]:
        os.utime(path, (0, 0))
    young = killed_write(folder / "checkpoints" / "best.ckpt")  # maybe another command's write in progress
    with RunLock(folder):
        assert not any(path.exists() for path in leftovers)
        assert all(path.exists() for path in [*kept, young])
        os.utime(young, (0, 0))
    assert not young.exists() and all(path.exists() for path in kept)
