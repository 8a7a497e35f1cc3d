"""Folders that medtext writes whole (an ONNX or Hugging Face export, a pretrained encoder), each with a
manifest, ``.medtext_manifest.json``, naming the command that wrote it and every file and folder it wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from medtext.core.version import VERSION
from medtext.core.atomic_files import atomic_folder, atomic_write_text
from medtext.core.errors import MedtextError

MANIFEST = ".medtext_manifest.json"
FORMAT_VERSION = 1
PathLike = Union[str, os.PathLike]


class OutputFolderError(MedtextError, FileExistsError):
    """An output folder medtext will not write: not empty, not its own, or holding the cwd or an input."""


def listing(folder: Path, prefix: str = "") -> list[str]:
    """Every file and folder under ``folder`` as a relative POSIX path, sorted, a folder before its
    contents; symbolic links are listed, not followed."""
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        found.append(prefix + entry.name)
        if entry.is_dir(follow_symlinks=False):
            found += listing(Path(entry.path), f"{prefix}{entry.name}/")
    return found


def first_unlisted(folder: Path, listed: set[str], prefix: str = "") -> Optional[str]:
    """The first entry under ``folder`` (sorted) not in ``listed``, the manifest aside; an unlisted
    folder is named itself, not searched."""
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name = prefix + entry.name
        if name == MANIFEST:
            continue
        if name not in listed:
            return name
        if entry.is_dir(follow_symlinks=False):
            inner = first_unlisted(Path(entry.path), listed, name + "/")
            if inner is not None:
                return inner
    return None


def write_manifest(folder: Path, written_by: str) -> None:
    """List everything in ``folder`` (just written by ``written_by``) in its manifest."""
    manifest = {"format_version": FORMAT_VERSION, "written_by": written_by, "medtext_version": VERSION,
                "files": listing(folder)}
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def read_manifest(folder: Path) -> Optional[set[str]]:
    """The entries listed in ``folder``'s manifest; None if it has none or it is unreadable."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        return None
    return set(files)


def check_replaceable(folder: Path, out: PathLike, label: str) -> None:
    """Refuse ``folder`` unless every entry in it is listed in its manifest; messages name it ``label``
    and its entries as under ``out`` (``folder`` may be ``out`` moved aside)."""
    listed = read_manifest(folder)
    if listed is None:
        blocking = first_unlisted(folder, set()) if not (folder / MANIFEST).exists() else MANIFEST
        reason = f"no {MANIFEST} says medtext wrote it" if blocking != MANIFEST else "it is not a readable manifest"
        raise OutputFolderError(f"refusing to replace {label}: it holds {Path(out) / blocking}, and {reason}")
    blocking = first_unlisted(folder, listed)
    if blocking is not None:
        raise OutputFolderError(f"refusing to replace {label}: it holds {Path(out) / blocking}, "
                                f"which its {MANIFEST} does not list (medtext did not write it)")


def check_location(out: Path, label: str, inputs: Iterable[tuple[str, Optional[PathLike]]] = ()) -> None:
    """Refuse ``out`` if it is (or holds) the current directory or one of ``inputs``: (what, path) pairs."""
    target = out.expanduser().resolve()
    cwd = Path.cwd().resolve()
    if target == cwd:
        raise OutputFolderError(f"refusing to write {label}: it is the current directory")
    if target in cwd.parents:
        raise OutputFolderError(f"refusing to write {label}: it holds the current directory {cwd}")
    for what, path in inputs:
        if path is None:
            continue
        resolved = Path(path).expanduser().resolve()
        if resolved == target or target in resolved.parents:
            where = "it is" if resolved == target else "it holds"
            raise OutputFolderError(f"refusing to write {label}: {where} {what} {path}")


def check_output_folder(out: PathLike, overwrite: bool, label: Optional[str] = None, hint: str = "",
                        inputs: Iterable[tuple[str, Optional[PathLike]]] = ()) -> None:
    """Refuse ``out`` as an output folder: a file, the cwd or an input's folder (or a parent of either),
    and a non-empty folder unless ``overwrite`` and medtext's manifest lists all of it.

    Args:
        out: the folder to write.
        overwrite: replace an earlier output of medtext's in ``out``.
        label: how messages name ``out`` (default: ``out`` as given).
        hint: appended to the "not empty" message (how to overwrite).
        inputs: (description, path) pairs that must not be in ``out``, e.g. ("the input checkpoint", ckpt).
    """
    out = Path(out)
    label = str(out) if label is None else label
    check_location(out, label, inputs)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{label} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputFolderError(f"{label} exists and is not empty{hint}")
        check_replaceable(out, out, label)


@contextlib.contextmanager
def output_folder(path: PathLike, written_by: str, overwrite: bool = False, label: Optional[str] = None,
                  hint: str = "", inputs: Iterable[tuple[str, Optional[PathLike]]] = ()) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it gets a manifest and becomes ``path``.

    ``path`` is checked first (:func:`check_output_folder`); with ``overwrite`` an earlier folder is
    checked again once moved aside, just before the new one is renamed in, then deleted. The new folder
    is built beside ``path`` and renamed in (``medtext/core/atomic_files.py``): a refusal or failure leaves
    the old one as it was.

    >>> with output_folder("/tmp/example_output", "an example", overwrite=True) as tmp:
    ...     _ = (tmp / "a.txt").write_text("done")
    """
    label = str(Path(path)) if label is None else label
    check_output_folder(path, overwrite, label, hint, inputs)

    def replaceable(old: Path) -> None:
        check_replaceable(old, path, label)

    with atomic_folder(path, replaceable if overwrite else None) as tmp:
        yield tmp
        write_manifest(tmp, written_by)
