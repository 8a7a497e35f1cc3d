"""Download a file once into a cache folder, verifying its sha256, atomically.

>>> fetch("https://example.org/f.csv", Path("/tmp/cache/f.csv"), sha256=None)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from filelock import FileLock

from medtext.core.errors import DataError
from medtext.core.atomic_files import atomic_open


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, target: Path, sha256: Optional[str], timeout: float = 60.0) -> Path:
    """Return ``target``, downloading ``url`` there first if it is missing.

    With ``sha256`` the download (and an existing copy) must match it. Without one, the digest of
    the first download is recorded beside the file (``<name>.sha256``) and later copies must match it.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    recorded = target.with_name(target.name + ".sha256")
    with FileLock(str(target) + ".lock"):
        expected = sha256 or (recorded.read_text().strip() if recorded.is_file() else None)
        if not target.is_file():
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response, atomic_open(target, "wb") as out:
                    while block := response.read(1 << 20):
                        out.write(block)
            except (urllib.error.URLError, OSError) as err:
                raise DataError(f"cannot download {url} ({err})") from None
        actual = sha256_of(target)
        if expected and actual != expected:
            target.unlink()
            raise DataError(f"{target}: sha256 {actual} does not match the expected {expected}; "
                            "the download was removed, try again")
        if not expected:
            with atomic_open(recorded, "w") as handle:
                handle.write(actual + "\n")
    return target
