"""The LightningModule: a Hugging Face encoder plus an injected classification head.

Example config (``--model`` of ``python -m medtext fit``)::

    model:
      class_path: medtext.TextClassifier
      init_args:
        encoder_name: sentence-transformers/all-MiniLM-L6-v2
        head: {class_path: medtext.heads.MLPHead, init_args: {pooling: mean}}
"""

from __future__ import annotations

from typing import Optional, Sequence

import pytorch_lightning as pl
import torch
from transformers import get_linear_schedule_with_warmup

from .checkpoint_config import CHECKPOINT_KEY, data_config_for_checkpoint
from .encoders import load_encoder
from .heads import HeadFactory, MLPHead
from .metrics import flatten
from .tasks import SingleLabelTask

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


class TextClassifier(pl.LightningModule):
    """Fine-tunes ``encoder_name`` with ``head`` to classify abstracts into ``label_names``.

    Args:
        encoder_name: hub id or local folder of any ``AutoModel`` encoder.
        label_names: class names in id order (the CLI links them from the data module).
        head: a head class completed with (hidden_size, num_labels); default ``MLPHead``.
        encoder_lr, head_lr: AdamW learning rates of the encoder and of the head.
        warmup_ratio: fraction of all optimizer steps with linear warm-up, then linear decay.
        class_weights: one cross-entropy weight per class; label_smoothing as in PyTorch.
        gradient_checkpointing: trade compute for memory in the encoder.
    """

    def __init__(self, encoder_name: str, label_names: Sequence[str] = (), head: HeadFactory = MLPHead,
                 encoder_lr: float = 2e-5, head_lr: float = 1e-3, weight_decay: float = 0.01,
                 warmup_ratio: float = 0.1, class_weights: Optional[list[float]] = None,
                 label_smoothing: float = 0.0, gradient_checkpointing: bool = False):
        super().__init__()
        self.save_hyperparameters()
        if len(label_names) < 2:
            raise ValueError("label_names needs at least two classes (the CLI links them from the data module)")
        self.label_names = list(label_names)
        self.encoder = load_encoder(encoder_name).train()  # from_pretrained returns eval mode (no dropout)
        if gradient_checkpointing:
            self.encoder.gradient_checkpointing_enable()
        self.head = head(self.encoder.config.hidden_size, len(self.label_names))
        self.task = SingleLabelTask(len(self.label_names), class_weights, label_smoothing)
        self.val_metrics = self.task.metrics()
        self.test_metrics = self.task.metrics()
        self.results: dict[str, dict] = {}  # stage -> last epoch's computed metrics, for callbacks

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(states, attention_mask)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.task.loss(self(batch["input_ids"], batch["attention_mask"]), batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def _evaluation_step(self, batch: dict, stage: str, metrics) -> None:
        logits = self(batch["input_ids"], batch["attention_mask"])
        self.log(f"{stage}/loss", self.task.loss(logits, batch["labels"]), sync_dist=True,
                 batch_size=len(batch["labels"]))
        metrics.update(self.task.probabilities(logits), batch["labels"])

    def _evaluation_epoch_end(self, stage: str, metrics) -> None:
        results = {name: value.detach().cpu() for name, value in metrics.compute().items()}
        metrics.reset()
        self.results[stage] = results
        flat = flatten(results, self.label_names, stage)
        headline = f"{stage}/macro_f1"
        self.log(headline, flat.pop(headline), prog_bar=True)
        self.log_dict(flat)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluation_step(batch, "val", self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        self._evaluation_epoch_end("val", self.val_metrics)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluation_step(batch, "test", self.test_metrics)

    def on_test_epoch_end(self) -> None:
        self._evaluation_epoch_end("test", self.test_metrics)

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        probabilities = self.task.probabilities(self(batch["input_ids"], batch["attention_mask"]))
        return {"index": batch["index"], "probabilities": probabilities}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "label_map"):
            checkpoint[CHECKPOINT_KEY] = data_config_for_checkpoint(datamodule)

    def configure_optimizers(self):
        groups = []
        for module, lr in ((self.encoder, self.hparams.encoder_lr), (self.head, self.hparams.head_lr)):
            named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
            decay = [p for n, p in named if not n.endswith(NO_DECAY)]
            no_decay = [p for n, p in named if n.endswith(NO_DECAY)]
            groups += [{"params": decay, "lr": lr, "weight_decay": self.hparams.weight_decay},
                       {"params": no_decay, "lr": lr, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]])
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.hparams.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
