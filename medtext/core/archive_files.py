"""Files read as one: a seekable view of a split archive's pieces, and a check of a safetensors file.

    with ConcatenatedFile([Path("a.zip.001"), Path("a.zip.002")]) as stream, zipfile.ZipFile(stream) as archive:
        archive.namelist()
"""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path


class ConcatenatedFile(io.RawIOBase):
    """Read-only, seekable view of files one after another (the pieces of a split archive)."""

    def __init__(self, paths: list[Path]):
        super().__init__()
        self._files = [open(p, "rb") for p in paths]  # noqa: SIM115 (closed by close())
        self._starts, total = [], 0
        for f in self._files:
            self._starts.append(total)
            total += os.fstat(f.fileno()).st_size
        self._size, self._pos = total, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view, done = memoryview(buffer).cast("B"), 0
        while done < len(view) and self._pos < self._size:
            index = max(i for i, start in enumerate(self._starts) if start <= self._pos)
            f = self._files[index]
            f.seek(self._pos - self._starts[index])
            n = f.readinto(view[done:])
            if not n:  # the piece is shorter than at open
                raise OSError(f"unexpected end of {f.name}")
            done, self._pos = done + n, self._pos + n
        return done

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def check_safetensors(path: Path) -> int:
    """The number of tensors in a safetensors file whose header parses and spans the file exactly."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > min(size - 8, 100 << 20):
            raise ValueError(f"{path.name}: bad safetensors header length {length}")
        header = json.loads(f.read(length))
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    end = max((v["data_offsets"][1] for v in tensors.values()), default=0)
    if not tensors or 8 + length + end != size:
        raise ValueError(f"{path.name}: {len(tensors)} tensors ending at byte {8 + length + end}, file has {size}")
    return len(tensors)
