"""A test-only callback: each rank saves the model's parameters at the start of fit and at every
epoch end, to ``<folder>/rank<r>_<when>.pt``, so a test can compare ranks and epochs."""

from pathlib import Path

import pytorch_lightning as pl
import torch


class ParameterSnapshots(pl.Callback):
    def __init__(self, folder: str):
        self.folder = Path(folder)

    def _save(self, trainer, pl_module, when: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {name: p.detach().cpu().clone() for name, p in pl_module.named_parameters()}
        torch.save({"state": state, "global_step": trainer.global_step},
                   self.folder / f"rank{trainer.global_rank}_{when}.pt")

    def on_train_start(self, trainer, pl_module) -> None:
        self._save(trainer, pl_module, "start")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._save(trainer, pl_module, f"epoch{trainer.current_epoch}")
