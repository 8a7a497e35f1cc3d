"""An exponential moving average (EMA) of the weights: Lightning's ``EMAWeightAveraging``, with the
model's buffers left to the model.

    python -m medtext fit --config configs/medical_abstracts/minilm_mlp.yaml \\
        --trainer.callbacks+=callbacks.EMAWeights --trainer.callbacks.decay=0.999
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EMAWeightAveraging


class EMAWeights(EMAWeightAveraging):
    """``EMAWeightAveraging(decay, update_every_n_steps, update_starting_at_step, ...)`` over the
    model's parameters only (``use_buffers`` is always ``False``: buffers stay the model's own).

    Lightning's callback swaps the averaged weights in for every validation epoch, copies them into
    the model when training ends, and saves them as the checkpoint's ``state_dict`` (the raw weights
    in ``current_model_state``, from which a resumed run continues). It treats buffers like weights:
    it averages them (``use_buffers=True``) or keeps a copy from the last training step. medtext's
    buffers change outside training steps: the per-label ``thresholds`` that each validation epoch
    tunes (after the callback swapped the raw weights back), the ``static_label_states``. So this
    averages, swaps and saves parameters only; every buffer in the checkpoint is the model's own."""

    def __init__(self, decay: float = 0.999, update_every_n_steps: int = 1,
                 update_starting_at_step: int | None = None, update_starting_at_epoch: int | None = None,
                 device: str | None = None):
        super().__init__(device=device, use_buffers=False, decay=decay, update_every_n_steps=update_every_n_steps,
                         update_starting_at_step=update_starting_at_step,
                         update_starting_at_epoch=update_starting_at_epoch)
        self._trained: list | None = None  # the raw parameters, once training ended

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._trained = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Lightning copies the average into the model before the checkpoint callbacks save ``last.ckpt``;
        the raw weights are kept for its ``current_model_state``, so a run resumed from it
        (``--trainer.max_epochs`` raised) continues the raw weights, not the average."""
        self._trained = [p.detach().clone() for p in pl_module.parameters()]
        super().on_train_end(trainer, pl_module)  # the model now holds the average

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        """Lightning's (``state_dict``: the averaged model; ``current_model_state``: the model), with
        the model's buffers (tuned thresholds ...) in ``state_dict``.

        Weights-only checkpoints (``BestCheckpoint``) skip callbacks' checkpoint hooks:
        ``TextClassifier.on_save_checkpoint`` calls this for them, so ``best.ckpt`` holds the averaged
        weights too (and ``predict --ckpt_path best.ckpt`` uses them)."""
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        if "current_model_state" in checkpoint:
            names = [name for name, _ in pl_module.named_parameters()]
            current = checkpoint["current_model_state"]
            if self._trained is not None:  # saved after training ended
                current.update(zip(names, self._trained))
            parameters = set(names)
            checkpoint["state_dict"] = {name: checkpoint["state_dict"][name] if name in parameters else value
                                        for name, value in current.items()}

    # Lightning's WeightAveraging swaps and copies through these two (tests/test_lightning_internals.py
    # checks it); here they move parameters only.
    def _swap_models(self, pl_module: pl.LightningModule) -> None:
        assert self._average_model is not None
        for average, current in zip(self._average_model.module.parameters(), pl_module.parameters()):
            swapped = average.data.clone()
            average.data.copy_(current.data)
            current.data.copy_(swapped)

    def _copy_average_to_current(self, pl_module: pl.LightningModule) -> None:
        assert self._average_model is not None
        for average, current in zip(self._average_model.module.parameters(), pl_module.parameters()):
            current.data.copy_(average.data)
