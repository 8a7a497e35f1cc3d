"""Checkpoints stream to a temporary file and are renamed into place: complete or untouched."""

import pytest
import torch

from medtext.runtime.checkpoint import StreamingCheckpointIO


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


def test_loaded_checkpoint_is_memory_mapped_and_private(tmp_path):
    path = tmp_path / "best.ckpt"
    io = StreamingCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.arange(6.0)}, "epoch": 1}, path)
    loaded = io.load_checkpoint(path)
    assert torch.equal(loaded["state_dict"]["w"], torch.arange(6.0))
    loaded["state_dict"]["w"].mul_(10)  # e.g. AdamW updating a restored moment in place
    io.save_checkpoint({"state_dict": {"w": torch.ones(6)}, "epoch": 2}, path)  # a newer last.ckpt
    assert torch.equal(loaded["state_dict"]["w"], 10 * torch.arange(6.0)), "the old mapping survives the rename"
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.ones(6))


def test_loaded_tensors_never_write_back_to_the_file(tmp_path):
    path = tmp_path / "best.ckpt"
    io = StreamingCheckpointIO()
    io.save_checkpoint({"w": torch.arange(4.0)}, path)
    io.load_checkpoint(path)["w"].add_(1)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(4.0))


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        StreamingCheckpointIO().load_checkpoint(tmp_path / "missing.ckpt")


def test_import_class_names_the_class_path_that_does_not_import():
    from medtext.runtime.checkpoint import import_class
    from medtext.core.errors import MedtextError

    assert import_class("MLPHead", default_module="medtext.heads").__name__ == "MLPHead"
    assert import_class("torch.nn.Linear") is torch.nn.Linear
    for bad, says in [("nope.Head", "No module named 'nope'"), ("torch.nn.NoSuchHead", "no attribute"),
                      ("torch.nn.functional.relu", "names function, not a class")]:
        with pytest.raises(MedtextError, match=f"class_path '{bad}'.*{says}"):
            import_class(bad)
