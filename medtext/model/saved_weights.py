"""What a weights-only checkpoint holds when a weight-averaging callback trains.

Lightning calls no callback hooks for a weights-only save, so an averaging callback (``callbacks.EMAWeights``)
would leave the raw weights in it. Here the callback swaps its averaged weights in, as it does for a full
checkpoint, and the averaging's own training state is dropped: it is not weights.
"""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import WeightAveraging


def averaged_weights_into_weights_only(trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict) -> None:
    """Make a weights-only ``checkpoint``'s ``state_dict`` the averaged weights; full checkpoints untouched."""
    if "optimizer_states" in checkpoint:  # a full checkpoint: the callback's own hook already ran
        return
    for callback in trainer.callbacks:
        if isinstance(callback, WeightAveraging):
            callback.on_save_checkpoint(trainer, module, checkpoint)
            for key in ("current_model_state", "averaging_state"):
                checkpoint.pop(key, None)
