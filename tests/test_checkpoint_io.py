"""Checkpoints stream to a temporary file and are renamed into place: complete or untouched."""

import pytest
import torch

from medtext.checkpoint_io import StreamingCheckpointIO


def test_checkpoint_round_trip_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "sub" / "last.ckpt"
    state = {"state_dict": {"w": torch.arange(6.0)}, "epoch": 3}
    StreamingCheckpointIO().save_checkpoint(state, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded["epoch"] == 3 and torch.equal(loaded["state_dict"]["w"], state["state_dict"]["w"])
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


def test_failed_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    io = StreamingCheckpointIO()
    io.save_checkpoint({"epoch": 1}, path)
    with pytest.raises(Exception):
        io.save_checkpoint({"epoch": 2, "bad": lambda: None}, path)  # not picklable: fails mid-write
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]

