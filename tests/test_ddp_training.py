"""DDP training on CPU (2 processes, gloo) for every head, and with a frozen first epoch.

The tiny encoder carries a pooler, as MiniLM and BiomedBERT checkpoints do, which no head reads:
DDP's default (no unused-parameter search) must still train. Each run takes 2 epochs of 2 steps
per rank; snapshots of every rank's parameters show what trained when, and that ranks agree.
"""

from pathlib import Path

import pytest
import torch

from cli_helpers import run_medtext, tiny_config

HEADS = {
    "mlp": ["--model.head=medtext.heads.MLPHead"],
    "bilstm_xattn": ["--model.head=medtext.heads.BiLSTMCrossAttentionHead", "--model.head.lstm_hidden_size=8",
                     "--model.head.num_heads=2"],
    "label_attention": ["--model.head=medtext.heads.LabelAttentionHead", "--model.head.num_heads=2"],
}
# 2 ranks x 2 batches of 4 per epoch: every rank takes 2 optimizer steps per epoch, 4 in all
DATA = {"num_train": 16, "num_val": 6, "num_test": 4, "batch_size": 4}


def load(folder: Path, rank: int, when: str) -> dict:
    return torch.load(folder / f"rank{rank}_{when}.pt", map_location="cpu", weights_only=True)


def changed(before: dict, after: dict, prefix: str) -> list[str]:
    return [name for name, value in after.items() if name.startswith(prefix) and not torch.equal(value, before[name])]


# Without a frozen epoch each head's own parameters must all get gradients (DDP does not search for
# unused ones then); the frozen first epoch's strategy switch does not depend on the head, so one
# head, the one that also encodes its label descriptions, covers it.
RUNS = [(head, 0) for head in sorted(HEADS)] + [("label_attention", 1)]


@pytest.mark.slow
@pytest.mark.parametrize("head, freeze_encoder_epochs", RUNS)
def test_ddp_trains_every_head_and_a_frozen_first_epoch(tiny_encoder, tmp_path, head, freeze_encoder_epochs):
    config = tiny_config(tmp_path / "ddp.yaml", tiny_encoder, {**DATA, "data_dir": str(tmp_path / "data")},
                         "data_modules.SyntheticAbstractsDataModule", max_epochs=2)
    snapshots = tmp_path / "snapshots"
    result = run_medtext(
        "fit", "--config", str(config), *HEADS[head], f"--model.freeze_encoder_epochs={freeze_encoder_epochs}",
        "--model.encoder_lr=1e-2", "--trainer.accelerator=cpu", "--trainer.strategy=ddp", "--trainer.devices=2",
        "--trainer.callbacks+=parameter_snapshots.ParameterSnapshots", f"--trainer.callbacks.folder={snapshots}",
        cwd=tmp_path)
    assert "MEMBER: 2/2" in result.stdout + result.stderr, "two processes trained"

    start, first, second = (load(snapshots, 0, when) for when in ("start", "epoch0", "epoch1"))
    assert (first["global_step"], second["global_step"]) == (2, 4)
    assert changed(start["state"], first["state"], "head."), "the head trains from the first epoch"
    pooler = [name for name in start["state"] if name.startswith("encoder.pooler.")]
    assert pooler and not changed(start["state"], second["state"], "encoder.pooler."), "no head reads the pooler"
    trained_in_first = changed(start["state"], first["state"], "encoder.")
    if freeze_encoder_epochs:
        assert trained_in_first == [], "the frozen epoch left the encoder as it was"
    else:
        assert "encoder.embeddings.word_embeddings.weight" in trained_in_first
    assert "encoder.encoder.layer.0.attention.self.query.weight" in changed(first["state"], second["state"],
                                                                               "encoder.")
    other_rank = load(snapshots, 1, "epoch1")["state"]
    for name, value in second["state"].items():
        assert torch.equal(value, other_rank[name]), f"ranks disagree on {name}: gradients were not all-reduced"
