"""Files medtext writes get the permissions ``open()`` would give (umask), not mkstemp's 0600."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from medtext.runtime.checkpoint import StreamingCheckpointIO
from medtext.core.atomic_files import atomic_open, atomic_write_text, current_umask


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing_it(umask, tmp_path):
    assert current_umask() == umask
    assert current_umask(str(tmp_path / "no_proc_status")) == umask  # the set-and-restore fallback
    assert current_umask() == umask


def test_new_text_file_respects_umask(umask, tmp_path):
    path = tmp_path / "report.json"
    atomic_write_text(path, "{}\n")
    assert mode(path) == 0o666 & ~umask
    with open(tmp_path / "plain.json", "w") as handle:  # what open() gives, for comparison
        handle.write("{}\n")
    assert mode(path) == mode(tmp_path / "plain.json")


def test_new_binary_file_in_new_folder_respects_umask(umask, tmp_path):
    path = tmp_path / "reports" / "matrix.png"
    with atomic_open(path, "wb") as handle:
        handle.write(b"\x89PNG")
    assert mode(path) == 0o666 & ~umask


def test_checkpoint_respects_umask(umask, tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    StreamingCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 0}, path)
    assert mode(path) == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


@pytest.mark.parametrize("existing", [0o600, 0o664])
def test_replaced_file_keeps_its_mode(umask, tmp_path, existing):
    path = tmp_path / "predictions.csv"
    path.write_text("old\n")
    os.chmod(path, existing)
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert mode(path) == existing
