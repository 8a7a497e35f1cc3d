"""The one place medtext calls ``torch.load`` on a checkpoint file.

Only tensors and plain containers are read (``weights_only=True``: a checkpoint from elsewhere
cannot run code), and a local file is memory-mapped, so looking at a few keys of a 1.3 GB training
state (a step, a label list) does not read it into RAM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional


def load_checkpoint_file(path: str | Path, map_location: Optional[Any] = "cpu", mmap: bool = True,
                         weights_only: bool = True) -> Any:
    """What ``torch.save`` wrote to ``path`` (a Lightning checkpoint: a dictionary); ``weights_only=False``
    only where the user asked for it on the command line."""
    import torch  # here, not at the top: the requeue file helpers that call this are imported before torch is needed

    return torch.load(path, map_location=map_location, weights_only=weights_only, mmap=mmap)
