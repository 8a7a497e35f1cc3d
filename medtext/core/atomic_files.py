"""Atomic file writes: a reader never sees a half-written output, a crash never leaves one."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterator, Optional


def current_umask(status_file: str = "/proc/self/status") -> int:
    """The process umask, read without changing it (``Umask:`` in ``/proc/self/status``, Linux 4.7+).

    Elsewhere it falls back to setting and restoring it, which is racy only against other threads
    creating files at that instant.
    """
    try:
        with open(status_file, encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # the strictest value for the instant it is set
    os.umask(mask)
    return mask


def new_file_mode(path: Path) -> int:
    """The permissions ``open(path, "w")`` would leave: the existing file's, else ``0o666 & ~umask``."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode) & 0o777
    except FileNotFoundError:
        return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    Permissions are those ``open()`` would give: a new file gets ``0o666 & ~umask`` (0644 under
    the usual umask 022, not the 0600 of a bare temporary file); a file that is replaced keeps its
    permission bits (not its owner or group).

    >>> with atomic_open("/tmp/example.txt") as f:
    ...     _ = f.write("done")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            os.chmod(tmp, new_file_mode(path))
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT) and not err.filename:
            raise OSError(err.errno, err.strerror, str(path)) from err  # a full disk: say which output
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, replaceable: Optional[Callable[[Path], None]] = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``path`` to fill; on success it becomes ``path``.

    A non-empty ``path`` is refused (``FileExistsError``) unless ``replaceable`` accepts it: that is
    called on it before the yield, and again once it is moved aside, just before the new folder is
    renamed in (to refuse it raises, and the old folder is put back). The old folder is deleted only
    after the rename. The current directory and its parents are never replaced. Folders and files get
    the permissions ``mkdir`` and ``open()`` would give under the user's umask. A failure leaves
    ``path`` as it was. ``medtext/deploy/output_folders.py`` adds manifests, so that only medtext's own
    earlier output is replaced.

    >>> with atomic_folder("/tmp/example_folder", replaceable=lambda old: None) as tmp:
    ...     _ = (tmp / "a.txt").write_text("done")
    """
    out = Path(path).expanduser().absolute()
    if out.resolve() == Path.cwd().resolve() or out.resolve() in Path.cwd().resolve().parents:
        raise FileExistsError(f"{out} is the current directory or holds it")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if replaceable is None:
            raise FileExistsError(f"{out} exists and is not empty")
        replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    old = None
    try:
        yield tmp
        umask = current_umask()  # mkdtemp's folder is 0700, some writers' files 0600
        for item in [tmp, *tmp.rglob("*")]:
            os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~umask)
        if out.is_dir() and any(out.iterdir()):
            if replaceable is None:  # filled while ``tmp`` was written
                raise FileExistsError(f"{out} exists and is not empty")
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
            os.replace(out, old / out.name)
            replaceable(old / out.name)  # as moved aside: nothing can be added to it any more
        os.replace(tmp, out)  # an empty folder at ``path`` is replaced too
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            if not out.exists() and (old / out.name).exists():
                os.replace(old / out.name, out)
            with contextlib.suppress(OSError):
                old.rmdir()  # empty once the old folder is back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
