"""The folder where a corpus ``predict`` keeps its finished chunks until they become one output file.

``OUT.parts/`` beside ``OUT`` holds ``manifest.json`` (what run the chunks belong to) and one file per
finished chunk, each written whole or not at all. A run killed at any point and started again with the
same arguments finds its chunks and predicts only the rest; a run with other inputs (another file, model
or setting) starts again. When every chunk is there they are merged, in file order, into ``OUT``
(atomically) and the folder goes. A record in medtext's cache says that ``OUT`` is this run's output:
the same command again has nothing to do, and a file at ``OUT`` that medtext did not write is never
replaced unless asked (``--predictions.overwrite true``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Callable, Optional

from .atomic_files import atomic_open, atomic_write_text
from .errors import MedtextError, PredictionsComplete
from .split_packages import default_cache_dir

MANIFEST, LOCK = "manifest.json", ".lock"
MARK = "medtext predict parts"
CHUNK_FILE = re.compile(r"chunk-(\d{6,})\.(csv|jsonl|parquet)")


def fingerprint_of(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def file_identity(path: str | Path) -> dict:
    """A file as a run's input: its path, size, modification time and the hash of its first MiB
    (hashing a corpus of gigabytes whole would cost more than a chunk of predictions)."""
    path = Path(path)
    stat = path.stat()
    with open(path, "rb") as handle:
        head = hashlib.sha256(handle.read(1 << 20)).hexdigest()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head_sha256": head}


class PredictionParts:
    """``output``'s chunk folder for the run described by ``settings`` (a JSON-able dict)."""

    def __init__(self, output: str | Path, settings: dict, fmt: str, overwrite: bool = False,
                 say: Callable[[str], None] = print):
        self.output = Path(output).absolute()
        self.folder = self.output.with_name(self.output.name + ".parts")
        self.settings, self.fmt, self.overwrite, self.say = settings, fmt, overwrite, say
        self.fingerprint = fingerprint_of(settings)
        self._lock: Optional[int] = None

    def __getstate__(self) -> dict:  # a worker process writes chunks; the lock stays with its holder
        return {**self.__dict__, "_lock": None}

    # ------------------------------------------------------------------ before
    def prepare(self) -> None:
        """On one process (rank zero), before any chunk: refuse a foreign output, stop when the output is
        already complete, lock the folder, and keep the chunks of the same run or clear another run's."""
        self.check_output()
        if self.folder.exists() and not self._ours(self.folder):
            raise MedtextError(f"{self.folder} exists and is not a medtext predict folder; move it away or "
                               "choose another --predictions.output_file")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        manifest = self._manifest()
        if manifest is not None and manifest.get("fingerprint") != self.fingerprint:
            changed = [key for key in self.settings if manifest.get("settings", {}).get(key) != self.settings[key]]
            self.say(f"{self.folder}: chunks of another run ({', '.join(changed) or 'settings'} changed); starting again")
            self._clear()
            manifest = None
        if manifest is None:
            atomic_write_text(self.folder / MANIFEST, json.dumps(
                {"medtext": MARK, "fingerprint": self.fingerprint, "settings": self.settings}, indent=1, default=str))
        elif self.done():
            self.say(f"{self.folder}: resuming; {len(self.done())} chunks were written before")

    def check_output(self) -> None:
        """Stop (:class:`PredictionsComplete`) when ``output`` is already this run's; refuse a file medtext
        did not write. Every DDP rank checks, so that all stop alike."""
        if not self.output.exists():
            return
        record = self._record()
        ours = record is not None and record.get("size") == self.output.stat().st_size \
            and record.get("mtime_ns") == self.output.stat().st_mtime_ns
        if ours and record.get("fingerprint") == self.fingerprint and not self.overwrite:
            raise PredictionsComplete(f"{self.output}: already written by this command with the same input, model "
                                      f"and settings ({record.get('rows')} rows); nothing to do "
                                      "(--predictions.overwrite true predicts again)")
        if not ours and not self.overwrite:
            raise MedtextError(f"{self.output} exists and is not a predictions file this medtext wrote (or it "
                               "changed since); choose another --predictions.output_file or pass "
                               "--predictions.overwrite true to replace it")

    def _ours(self, folder: Path) -> bool:
        names = {p.name for p in folder.iterdir()}
        if not names:
            return True
        try:
            marked = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("medtext") == MARK
        except (OSError, ValueError, AttributeError):
            return False
        return marked and all(n in (MANIFEST, LOCK) or CHUNK_FILE.fullmatch(n) or n.startswith(".chunk-")
                              for n in names)

    def _manifest(self) -> Optional[dict]:
        with contextlib.suppress(OSError, ValueError):
            return json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
        return None

    def _take_lock(self) -> None:
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise MedtextError(f"{self.output}: another predict is writing it now ({self.folder} is locked); "
                               "wait for it or choose another --predictions.output_file") from None
        self._lock = fd

    def _clear(self) -> None:
        for path in self.folder.iterdir():
            if CHUNK_FILE.fullmatch(path.name) or path.name.startswith(".chunk-") or path.name == MANIFEST:
                path.unlink()

    # ------------------------------------------------------------------ during
    def done(self) -> set[int]:
        """The chunks already written (by this run or the interrupted one it continues)."""
        if not self.folder.is_dir():
            return set()
        return {int(m.group(1)) for p in self.folder.iterdir() if (m := CHUNK_FILE.fullmatch(p.name))
                and m.group(2) == self.fmt}

    def chunk_path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:06d}.{self.fmt}"

    def write(self, index: int, write: Callable[[Path], None]) -> None:
        """``write(path)`` fills a temporary file, renamed to the chunk's file once complete."""
        final = self.chunk_path(index)
        tmp = self.folder / f".{final.name}.{os.getpid()}.tmp"
        try:
            write(tmp)
            os.replace(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    # ------------------------------------------------------------------ after
    def finish(self, chunks: int, merge: Callable[[list[Path], object], None], rows: int) -> None:
        """Merge chunks ``0 .. chunks - 1`` into the output (all must be there), record it, remove the folder."""
        missing = sorted(set(range(chunks)) - self.done())
        if missing:
            raise MedtextError(f"{self.folder}: chunks {missing[:5]} of {chunks} are missing (a rank on another "
                               "machine without a shared filesystem?); run the same command again to predict them")
        with atomic_open(self.output, "wb") as handle:
            merge([self.chunk_path(i) for i in range(chunks)], handle)
        self._write_record(rows)
        self._clear()
        self.close()

    def close(self) -> None:
        """Unlock; a folder without a finished chunk (a run that failed at its start) goes."""
        if self._lock is None:
            return
        os.close(self._lock)
        self._lock = None
        if self.folder.is_dir() and not self.done():
            self._clear()
            with contextlib.suppress(OSError):
                (self.folder / LOCK).unlink()
                self.folder.rmdir()

    def _record_path(self) -> Path:
        return default_cache_dir() / "predictions" / (hashlib.sha256(str(self.output).encode()).hexdigest()[:32] + ".json")

    def _record(self) -> Optional[dict]:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(self._record_path().read_text(encoding="utf-8"))
        return None

    def _write_record(self, rows: int) -> None:
        stat = self.output.stat()
        try:
            atomic_write_text(self._record_path(), json.dumps({
                "output": str(self.output), "fingerprint": self.fingerprint, "rows": rows,
                "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
        except OSError as err:  # the output is complete; only a rerun's shortcut is lost
            self.say(f"medtext: warning: cannot record {self.output} in the cache ({err.strerror}); "
                     "running the command again will ask for --predictions.overwrite true")
