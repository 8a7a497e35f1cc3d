"""A stand-in ``scontrol`` for the SLURM simulations: it appends its arguments to ``$SCONTROL_LOG``."""

from pathlib import Path


def stub_scontrol(folder: Path) -> Path:
    """Write ``folder/bin/scontrol``; returns ``folder/bin``, to put first on ``PATH``."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "scontrol"
    stub.write_text('#!/bin/sh\necho "$@" >> "$SCONTROL_LOG"\n')
    stub.chmod(0o755)
    return bin_dir
