"""One writer per run folder: ``fit`` holds ``run.lock`` in each of its run folders for the run's life.

A second writer stops with one line naming the holder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from medtext.core.errors import MedtextError

LOCK_FILE = "run.lock"
TEMP_FILE = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # atomic_open: mkstemp(prefix=".NAME.", suffix=".tmp")
TEMP_MIN_AGE = 60.0  # seconds; a younger temporary file may be another command's write in progress
TEMP_FOLDERS = ("", "checkpoints")


def clean_temporary_files(folder: Path, min_age: float = TEMP_MIN_AGE) -> list[Path]:
    """Delete ``atomic_open``'s leftover temporary files (older than ``min_age`` seconds) in ``folder``
    and ``folder/checkpoints``, nothing else; returns those deleted."""
    deleted, now = [], time.time()
    for sub in TEMP_FOLDERS:
        with contextlib.suppress(OSError):  # no such folder, or not readable: nothing to clean
            paths = [path for path in (folder / sub).iterdir() if TEMP_FILE.fullmatch(path.name)]
            for path in paths:
                with contextlib.suppress(OSError):  # gone meanwhile, or not ours to delete: left as it is
                    if path.is_file() and not path.is_symlink() and now - path.stat().st_mtime >= min_age:
                        path.unlink()
                        deleted.append(path)
    return deleted


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:  # os.kill(0, ...) would signal our own process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _flock(fd: int) -> Optional[bool]:
    """Take ``fd``'s flock without waiting: True, False when another process holds it, None when the
    file system has no flock."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as err:
        return False if err.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES) else None


def _read_record(fd: int) -> dict:
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def describe(record: dict) -> str:
    return (f"pid {record.get('pid', '?')} on host {record.get('host', '?')}"
            + (f" (SLURM job {record['job']})" if record.get("job") else "")
            + (f", started {record['started']}" if record.get("started") else ""))


class RunLock:
    """``folder/run.lock``, held from :meth:`acquire` to :meth:`release` (or as a context manager).

    The file names its holder (JSON ``pid``, ``host``, ``started``; under SLURM, ``job``) and is held
    with ``fcntl.flock``, which the kernel drops when the holder dies. A lock left by an ended process
    of this host, or by an earlier run of this SLURM job, is taken over with a warning; one left by
    another host is not, as its process cannot be checked. While it is held, ``atomic_open``'s leftover
    temporary files in the folder are deleted: when the run starts or resumes, and when it ends."""

    def __init__(self, folder: str | os.PathLike, job: Optional[str] = None):
        self.folder, self.job = Path(folder), job
        self.path = self.folder / LOCK_FILE
        self.fresh = False  # the folder held nothing (but a lock file) when the lock was taken
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fresh = all(path.name == LOCK_FILE for path in self.folder.iterdir())
        host = socket.gethostname()
        for _ in range(10):  # the holder may delete the file between our open and our flock: retry
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                locked = _flock(fd)
                record = _read_record(fd)
                for _ in range(20):  # a holder that has just taken the flock writes its record next
                    if locked is not False or record:
                        break
                    time.sleep(0.05)
                    record = _read_record(fd)
                if locked is not False and not self._same_file(fd):
                    os.close(fd)
                    continue
                self._check_holder(locked, record, host)
                if record:
                    warnings.warn(f"{self.path}: taking over the lock of {describe(record)}, which ended "
                                  "without releasing it", stacklevel=2)
                self._write_record(fd, host)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            clean_temporary_files(self.folder)
            return self
        raise MedtextError(f"{self.path}: could not take the run folder's lock (it was replaced 10 times)")

    def _check_holder(self, locked: Optional[bool], record: dict, host: str) -> None:
        """Raise :class:`MedtextError` when another run holds the folder."""
        if locked is False:
            held = True
        elif not record:
            held = False
        elif record.get("host") == host:  # flock taken: the holder's ended; else its pid tells
            held = locked is None and _alive(record.get("pid"))
        else:  # another host's process cannot be checked, unless it is an earlier run of this SLURM job
            held = not (self.job and record.get("job") == self.job)
        if not held:
            return
        advice = ("; if that run has ended, delete the lock file" if record.get("host") not in (None, host) else "")
        raise MedtextError(f"run folder {self.folder} is in use: {self.path} is held by {describe(record)}; wait "
                           f"for that fit to end, or give this run its own logger version (W&B: id){advice}")

    def _write_record(self, fd: int, host: str) -> None:
        record = {"pid": os.getpid(), "host": host, "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if self.job:
            record["job"] = self.job
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        os.fsync(fd)

    def _same_file(self, fd: int) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            return False

    def release(self) -> None:
        """Clean the folder's leftover temporary files, delete the lock file and drop the flock."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            clean_temporary_files(self.folder)
            if self._same_file(fd):  # deleted before the flock is dropped: a waiting process retries
                self.path.unlink()
        finally:
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


class RunLocks(contextlib.ExitStack):
    """The locks of a ``fit``'s run folders, taken on global rank zero before anything is written into
    a folder, released by ``close()`` when ``fit`` ends, also on an error."""

    def __init__(self) -> None:
        super().__init__()
        self.folders: set[Path] = set()

    def lock_folders(self, trainer) -> "RunLocks":
        """Lock the run folders known so far that are not locked yet: a W&B run's is known once it has
        started or been given an id. Other ranks, and ``fast_dev_run`` (no run folder), lock nothing."""
        if not trainer.is_global_zero or trainer.fast_dev_run:
            return self
        from medtext.core.slurm_jobs import slurm_job_key
        from medtext.core.trainer_loggers import file_loggers, run_folder, run_folders

        locks = [self.enter_context(RunLock(folder, slurm_job_key())) for folder in run_folders(trainer)
                 if folder not in self.folders]
        self.folders.update(lock.folder for lock in locks)
        fresh = {lock.folder for lock in locks if lock.fresh}
        with warnings.catch_warnings():  # the lock file is all a new run folder holds: no "not empty" warning
            warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
            for logger in file_loggers(trainer):
                if run_folder(trainer, logger) in fresh:
                    _ = logger.experiment  # a CSV logger's folder check, done now, while the folder is empty
        return self
