"""Stop ``fit`` at the first non-finite training loss, before a checkpoint of that step is saved."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from medtext.core.divergence import NonFiniteError, lower_rates_hint


class StopOnDivergence(pl.Callback):
    """Raises :class:`medtext.core.divergence.NonFiniteError` when the training loss is NaN or infinite: one
    line naming the step and the learning rates to lower (``python -m medtext`` exits with status 2)."""

    def __init__(self):
        self.step = 0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        self.step = trainer.global_step  # this batch's step as metrics.csv counts it (before its update)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        """Lightning runs ``ModelCheckpoint`` callbacks after all others, so this sees the step's loss
        before the every-N-steps save of that step, and its error ends the run before the next
        validation and its save."""
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs  # None: a skipped batch
        here = torch.is_tensor(loss) and not bool(torch.isfinite(loss.detach()).all())
        # any rank's NaN stops every rank at the same step (DDP: no rank left waiting in a collective)
        if trainer.strategy.reduce_boolean_decision(here, all=False):
            value = ("nan" if bool(loss.isnan().any()) else "infinite") if here else "not finite in another process"
            raise NonFiniteError(f"training diverged at step {self.step} (epoch {trainer.current_epoch}): the loss is "
                                 f"{value}; {lower_rates_hint(pl_module)}; the checkpoints saved before it are kept")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """No ``save_on_exception`` of non-finite weights; ``TextClassifier.on_save_checkpoint`` refuses
        any other save of them (``medtext/core/divergence.py``)."""
        if isinstance(exception, NonFiniteError):  # the weights are not finite: no checkpoint of them
            for callback in trainer.checkpoint_callbacks:
                if isinstance(callback, ModelCheckpoint):
                    callback.save_on_exception = False
