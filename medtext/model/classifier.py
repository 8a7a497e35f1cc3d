"""The LightningModule: a Hugging Face encoder plus an injected classification head.

In a config (``--model`` of ``python -m medtext fit``): ``class_path: medtext.TextClassifier`` with
``init_args`` such as ``encoder_name: sentence-transformers/all-MiniLM-L6-v2`` and
``head: {class_path: medtext.heads.MLPHead, init_args: {pooling: mean}}``.
"""

from __future__ import annotations

from functools import partial
from typing import Literal, Optional, Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch import nn
from torchmetrics import CatMetric, MeanMetric

from medtext.model.calibration import (CalibrationMetrics, CalibrationMode, Logits, TemperatureScaling, fit_on_validation,
                          report_test_calibration)
from medtext.core.divergence import check_checkpoint, check_outputs, check_weights
from medtext.core.encoders import cls_states, load_encoder, register_label_descriptions
from medtext.heads import HeadFactory, MLPHead
from medtext.core.metrics import log_epoch_results
from medtext.model.optim import adamw_for_classifier, encoder_groups
from medtext.model.saved_weights import averaged_weights_into_weights_only
from medtext.model.tasks import MultiLabelTask, SingleLabelTask
from medtext.model.unused_parameters import check_unused_parameter_search, freeze_unused_parameters
from medtext.model.windows import WindowPooling, check_window_pooling, pool_windows


class TextClassifier(pl.LightningModule):
    """Fine-tunes ``encoder_name`` with ``head`` to classify abstracts into ``label_names``.

    Args:
        encoder_name: hub id or local folder of any ``AutoModel`` encoder.
        label_names, multi_label, label_descriptions: linked from the data module by the CLI.
        head: a head class completed with (hidden_size, num_labels); default ``MLPHead``.
        label_encoding: for heads that read label descriptions: ``static`` encodes them once with
            the pretrained encoder (no gradient, saved in the checkpoint); ``reencode`` encodes them
            with the current encoder at every step (gradients flow into the encoder).
        encoder_lr, head_lr, attention_lr: AdamW learning rates of the encoder, the head, and the
            head's attention parameters (default ``head_lr``).
        layer_decay: layer-wise learning-rate decay d: the top encoder layer trains at ``encoder_lr``,
            each layer below at d times the one above, the embeddings at ``encoder_lr * d**layers``
            (groups ``encoder/layer_{i}``, ``encoder/embeddings``); ``None`` or 1.0: one ``encoder_lr``.
        freeze_encoder_epochs: train only the head for this many first epochs.
        warmup_ratio: fraction of all optimizer steps with linear warm-up, then linear decay.
        class_weights, label_smoothing: single-label cross-entropy options.
        pos_weight, threshold, tune_thresholds: multi-label BCE weight of positives per label; the
            global decision threshold; and whether each validation epoch of ``fit`` tunes per-label
            thresholds for F1 (stored in the checkpoint, used by test and predict).
        gradient_checkpointing: trade compute for memory in the encoder.
        attention_dropout: dropout on the encoder's attention probabilities; ``None`` keeps the
            encoder's own (0.1 in BERTs). At 0, training uses PyTorch's fused attention kernel,
            which on CPU has no dropout: MiniLM trains about 1.6x faster (BENCHMARKS.md).
        window_pooling: with ``data.long_text: windows`` (3-D input), how an abstract's logits come
            from its windows': ``mean`` or ``max`` over its real windows (``medtext/model/windows.py``).
        calibration: ``temperature``: each validation epoch of ``fit`` fits temperatures on its logits, which
            test, predict and explain apply (validate reports fit's uncalibrated validation numbers); ``none``: not fitted (fit) or not applied (``medtext/model/calibration.py``).
    """

    ensemble: Optional[nn.Module] = None  # validate/test/predict --ensemble: use_ensemble()

    def __init__(self, encoder_name: str, label_names: Sequence[str] = (), head: HeadFactory = MLPHead,
                 multi_label: bool = False, label_descriptions: Optional[list[str]] = None,
                 label_encoding: Literal["static", "reencode"] = "static", encoder_lr: float = 2e-5,
                 head_lr: float = 1e-3, attention_lr: Optional[float] = None,
                 layer_decay: Optional[float] = None, weight_decay: float = 0.01,
                 warmup_ratio: float = 0.1, freeze_encoder_epochs: int = 0,
                 class_weights: Optional[list[float]] = None, label_smoothing: float = 0.0,
                 pos_weight: Optional[list[float]] = None, threshold: float = 0.5, tune_thresholds: bool = True,
                 gradient_checkpointing: bool = False, attention_dropout: Optional[float] = None,
                 window_pooling: WindowPooling = "mean", calibration: CalibrationMode = "temperature"):
        super().__init__()
        self.save_hyperparameters()
        check_window_pooling(window_pooling)
        if len(label_names) < 2:
            raise ValueError("label_names needs at least two classes (the CLI links them from the data module)")
        self.label_names = list(label_names)
        num_labels = len(self.label_names)
        self.encoder = load_encoder(encoder_name, attention_dropout).train()  # from_pretrained returns eval mode (no dropout)
        if gradient_checkpointing:
            self.encoder.gradient_checkpointing_enable()
        self.head = head(self.encoder.config.hidden_size, num_labels)
        encoder_groups(self.encoder, encoder_lr, layer_decay)  # a bad layer_decay fails here, not after setup
        self.task = MultiLabelTask(num_labels, pos_weight) if multi_label else SingleLabelTask(
            num_labels, class_weights, label_smoothing)
        self.register_buffer("thresholds", torch.full((num_labels,), float(threshold)))
        if self.head.uses_label_descriptions:
            register_label_descriptions(self, encoder_name, label_descriptions or self.label_names, label_encoding)
        self.val_metrics, self.test_metrics = self.task.metrics(), self.task.metrics()
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()  # exact under DDP: sums and counts
        self.calibrator = TemperatureScaling(num_labels, multi_label, calibration)  # buffer calibrator.temperature
        # fit's validation epoch, for fit_on_validation; NaN kept (the default drops it, misaligning rows)
        self.val_logits, self.val_targets = CatMetric(nan_strategy="disable"), CatMetric(nan_strategy="disable")
        self.test_calibration = CalibrationMetrics(num_labels, multi_label)
        self._results: dict[str, dict] = {}  # stage -> last epoch's computed metrics
        self.unused_parameters: list[str] = []  # found by setup("fit"); they never train

    @property
    def selection_metric(self) -> str:
        """The validation metric that picks the best checkpoint (``val/macro_f1``; multi-label:
        ``val/tuned_micro_f1``); :class:`callbacks.BestCheckpoint` and early stopping follow it."""
        return self.task.selection_metric

    def label_states(self) -> Optional[torch.Tensor]:
        """Per-label description vectors for heads that use them, else ``None``."""
        if not self.head.uses_label_descriptions:
            return None
        if self.hparams.label_encoding == "static":
            return self.static_label_states
        return cls_states(self.encoder, self.description_ids, self.description_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if input_ids.dim() == 3:  # long_text: windows (abstracts, windows, tokens); per window: this class's forward
            return pool_windows(partial(TextClassifier.forward, self), input_ids, attention_mask, self.hparams.window_pooling)
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(states, attention_mask, self.label_states())

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Logits:
        """The batch's logits and temperature-scaled logits; with ``--ensemble``, the ensemble's."""
        raw = self(input_ids, attention_mask)
        scored = Logits(raw, self.calibrator(raw, enabled=True))
        return scored if self.ensemble is None else self.ensemble(scored, input_ids, attention_mask)

    def use_ensemble(self, ensemble: Optional[nn.Module]) -> None:
        """Average this model's probabilities with an :class:`medtext.runtime.ensemble.EnsembleClassifier`'s members.
        Kept out of the module tree: not in ``state_dict`` (Lightning restores this model's checkpoint
        strictly) and not moved by ``.to`` (the ensemble follows each batch's device)."""
        self.__dict__["ensemble"] = ensemble

    @torch.no_grad()
    def explain(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the head's attention weights (batch, labels, tokens), for heads that have them."""
        if not getattr(self.head, "has_attention_weights", False):
            raise TypeError(f"{type(self.head).__name__} has no attention weights to show")
        if input_ids.dim() == 3:
            raise NotImplementedError("explain() takes one window per abstract (2-D input), not long_text: windows")
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits, weights = self.head.forward_with_attention(states, attention_mask, self.label_states())
        return self.calibrator(logits), weights

    # ------------------------------------------------------------------ steps
    def setup(self, stage: str) -> None:
        """Before fitting (and before DDP wraps the model): parameters the loss never reaches, such
        as the encoder's pooler, stop requiring gradients, so DDP needs no unused-parameter search."""
        if stage != "fit":
            return
        unused = freeze_unused_parameters(self, self._probe_loss)
        if unused:
            rank_zero_info(f"not trained (no head reads them): {', '.join(unused)}")
        self.unused_parameters += [name for name in unused if name not in self.unused_parameters]
        if self.hparams.freeze_encoder_epochs > 0:
            check_unused_parameter_search(self.trainer.strategy, "freeze_encoder_epochs")

    def _probe_loss(self) -> torch.Tensor:
        """A scalar that depends on every parameter a training step uses: one 4-token abstract."""
        device = next(self.parameters()).device
        input_ids = torch.arange(1, 1 + min(4, self.encoder.config.vocab_size - 1), device=device).unsqueeze(0)
        return self(input_ids, torch.ones_like(input_ids)).float().sum()

    def on_train_epoch_start(self) -> None:
        frozen = self.current_epoch < self.hparams.freeze_encoder_epochs
        for name, parameter in self.encoder.named_parameters():
            if f"encoder.{name}" not in self.unused_parameters:
                parameter.requires_grad_(not frozen)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.task.loss(self(batch["input_ids"], batch["attention_mask"]), batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def _decision_thresholds(self, stage: str) -> torch.Tensor:
        """Model selection during fit uses the global threshold; everything else the tuned ones."""
        fitting = self.trainer.state.fn == "fit"
        return torch.full_like(self.thresholds, self.hparams.threshold) if stage == "val" and fitting \
            else self.thresholds

    def _evaluation_step(self, batch: dict, stage: str, metrics) -> dict[str, torch.Tensor]:
        scored, labels = self.logits(batch["input_ids"], batch["attention_mask"]), batch["labels"]
        raw = scored.raw
        fitting = stage == "val" and self.trainer.state.fn == "fit"
        if not fitting:  # fit's validation: checked gathered, on every rank alike (fit_on_validation)
            check_outputs(self, raw, stage)
        # validate reproduces fit's validation: uncalibrated
        logits = raw if stage == "val" else scored.calibrated(self.calibrator.enabled)
        getattr(self, f"{stage}_loss").update(self.task.loss(logits, labels), weight=len(labels))
        probabilities = self.task.probabilities(logits)
        if fitting:
            self.val_logits.update(raw.float())
            self.val_targets.update(labels.float())
        elif stage == "test":
            self.test_calibration.update(self.task.probabilities(raw), probabilities, labels)
        if self.task.multi_label:  # decided at the thresholds of the calibrated probabilities, applied or not
            decided = probabilities if fitting else self.task.probabilities(scored.scaled)
            predicted = self.task.predictions(decided, self._decision_thresholds(stage))
            metrics.update(predicted, labels.long())
        else:
            predicted = probabilities.argmax(-1)
            metrics.update(probabilities, labels)
        return {"index": batch["index"], "probabilities": probabilities.detach(), "predictions": predicted,
                "labels": labels}

    def _evaluation_epoch_end(self, stage: str, metrics) -> None:
        self._results[stage] = log_epoch_results(self, stage, metrics, getattr(self, f"{stage}_loss"))

    def evaluation_results(self, stage: str) -> Optional[dict[str, torch.Tensor]]:
        """The metrics of the last ``val`` or ``test`` epoch (global under DDP), for reports:
        ``accuracy``/``exact_match``, ``macro_f1``, ``micro_f1``, per-class ``f1``, ``precision``,
        ``recall`` (one value per class, in ``label_names`` order) and ``confusion_matrix``;
        ``None`` before the first such epoch."""
        return self._results.get(stage)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluation_step(batch, "val", self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        self._evaluation_epoch_end("val", self.val_metrics)
        fit_on_validation(self)  # multi-label thresholds, temperatures: medtext/model/calibration.py

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        """Per abstract: ``index``, ``probabilities``, ``predictions`` and ``labels``, for ``test_predictions.csv``."""
        return self._evaluation_step(batch, "test", self.test_metrics)

    def on_test_epoch_end(self) -> None:
        self._evaluation_epoch_end("test", self.test_metrics)
        report_test_calibration(self)  # test/ece, test/brier (and _uncalibrated), reliability bins

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        """Per abstract: its ``index`` in the data, the class ``probabilities`` and the
        ``predictions`` (class ids; multi-label: 0/1 per label at the checkpoint's thresholds)."""
        if not len(batch["index"]):  # a streamed chunk whose rows were all skipped: it still says so
            return {}
        scored = self.logits(batch["input_ids"], batch["attention_mask"])
        check_outputs(self, scored.raw, "predict")  # no NaN probabilities, no class 0 from NaN
        decided = self.task.probabilities(scored.scaled)  # decisions: calibration on or off, the same
        return {"index": batch["index"],
                "probabilities": self.task.probabilities(scored.calibrated(self.calibrator.enabled)),
                "predictions": self.task.predictions(decided, self.thresholds)}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        averaged_weights_into_weights_only(self.trainer, self, checkpoint)
        check_checkpoint(self, checkpoint)  # non-finite weights never replace a saved checkpoint

    on_validation_start = on_test_start = on_predict_start = check_weights  # diverged weights: refused at once

    # ------------------------------------------------------------------ optimizer
    def configure_optimizers(self):
        return adamw_for_classifier(self.encoder, self.head, self.hparams, self.trainer.estimated_stepping_batches)
