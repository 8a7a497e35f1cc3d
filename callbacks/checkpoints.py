"""The best checkpoint and early stopping, following the model's selection metric.

With ``monitor=None`` (the default) both callbacks monitor the model's ``selection_metric``, maximised,
so a config names no metric, and the best checkpoint, early stopping and a sweep's metric cannot disagree.
"""

from __future__ import annotations

from typing import Any, Optional

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint

from medtext.core.errors import MedtextError

SELECTION_MODE = "max"  # selection metrics are scores: higher is better


def selection_metric(pl_module: pl.LightningModule, callback: Optional[Callback] = None) -> str:
    """The model's ``selection_metric`` (``medtext.TextClassifier``: ``val/macro_f1``; multi-label
    ``val/tuned_micro_f1``); a clear error if it has none."""
    metric = getattr(pl_module, "selection_metric", None)
    if not isinstance(metric, str) or not metric:
        who = f"{type(callback).__name__}(monitor=None)" if callback is not None else "monitor=None"
        raise ValueError(f"{who} monitors the model's selection_metric, which {type(pl_module).__name__} "
                         "does not have: set the callback's monitor")
    return metric


def monitored_metric(callback: Callback, pl_module: pl.LightningModule) -> Optional[str]:
    """The metric ``callback`` monitors (or will, once set up) with this model; ``None`` if none.

    Lightning sets up checkpoint callbacks after all others: another callback reading ``monitor`` in
    its own ``setup`` sees ``None`` for a ``BestCheckpoint``; this answers at any time."""
    if isinstance(callback, (BestCheckpoint, SelectionEarlyStopping)) and callback.follows_model:
        return selection_metric(pl_module, callback)
    return getattr(callback, "monitor", None)


def _missing_metric(callback: Callback, logged: dict) -> MedtextError:
    """A monitor the run does not log (a typo, another task's metric): one line naming the ones it does,
    at the first validation, instead of Lightning's traceback."""
    scalars = sorted(k for k in logged if k.startswith("val/") and "/f1/" not in k) or sorted(logged)
    return MedtextError(f"{type(callback).__name__} monitors {callback.monitor!r}, which this run does not log; "
                        f"set its monitor to one it does: {', '.join(scalars)} (or val/f1/<class>)")


def _check_mode(monitor: Optional[str], mode: str, name: str) -> None:
    if monitor is None and mode != SELECTION_MODE:
        raise ValueError(f"{name}(monitor=None) maximises the model's selection metric: "
                         f"mode must be {SELECTION_MODE!r}, not {mode!r} (or set monitor)")


def _plain_state_key(callback: Callback, key: str, plain: type) -> str:
    """``key`` as the Lightning class ``plain`` would write it (its name instead of the subclass's):
    ``ModelCheckpoint{'monitor': 'val/macro_f1', 'mode': 'max', ...}``, ``EarlyStopping{...}``.
    Checkpoints saved by configs that named the metric then resume with their best score and patience
    counter, and readers of ``ModelCheckpoint...`` keys find it."""
    own = type(callback).__qualname__
    return plain.__qualname__ + key[len(own):] if key.startswith(own + "{") else key


def _resolve(callback: Callback, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
    """Take the model's metric unless ``monitor`` was given (then kept as given, with its ``mode``).

    Lightning calls ``setup`` before it restores callback states from ``--ckpt_path`` (in ``fit``,
    ``validate``, ``test`` and ``predict``, with every strategy) and before any save, so the monitor
    is known whenever ``state_key`` is read for a checkpoint."""
    if callback.follows_model:
        callback.monitor = selection_metric(pl_module, callback)
    # Lightning checked that state keys are unique before the monitor was known: check again
    key = callback.state_key
    if any(other is not callback and other.state_key == key for other in trainer.callbacks):
        raise ValueError(f"two callbacks would store their state under {key}: give the "
                         f"{type(callback).__name__} different arguments or remove one")


class BestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` of the best model by ``monitor``; ``None`` (default): the model's
    ``selection_metric``, with ``mode`` max. Other arguments are ``ModelCheckpoint``'s."""

    def __init__(self, monitor: Optional[str] = None, mode: str = SELECTION_MODE, **kwargs: Any):
        _check_mode(monitor, mode, type(self).__name__)
        save_top_k = kwargs.pop("save_top_k", 1)
        # ModelCheckpoint refuses top-k > 1 without a monitor; the monitor is known in setup
        super().__init__(monitor=monitor, mode=mode, save_top_k=min(save_top_k, 1) if monitor is None
                         else save_top_k, **kwargs)
        self.save_top_k = save_top_k
        self.follows_model = monitor is None

    @property
    def state_key(self) -> str:
        return _plain_state_key(self, super().state_key, ModelCheckpoint)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        _resolve(self, trainer, pl_module)
        super().setup(trainer, pl_module, stage)

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict) -> None:
        # as Lightning: an error once a validation has run (before that, e.g. a save every N training
        # steps, it warns and saves nothing)
        if (self.save_top_k and self.monitor is not None and self.monitor not in monitor_candidates
                and trainer.fit_loop.epoch_loop.val_loop._has_run):
            raise _missing_metric(self, monitor_candidates)
        super()._save_topk_checkpoint(trainer, monitor_candidates)


class SelectionEarlyStopping(EarlyStopping):
    """``EarlyStopping`` on ``monitor``; ``None`` (default): the model's ``selection_metric``, with
    ``mode`` max. Other arguments are ``EarlyStopping``'s."""

    def __init__(self, monitor: Optional[str] = None, mode: str = SELECTION_MODE, **kwargs: Any):
        _check_mode(monitor, mode, type(self).__name__)
        super().__init__(monitor=monitor, mode=mode, **kwargs)
        self.follows_model = monitor is None

    @property
    def state_key(self) -> str:
        return _plain_state_key(self, super().state_key, EarlyStopping)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        _resolve(self, trainer, pl_module)
        super().setup(trainer, pl_module, stage)

    def _validate_condition_metric(self, logs: dict) -> bool:
        if self.strict and logs.get(self.monitor) is None:
            raise _missing_metric(self, logs)
        return super()._validate_condition_metric(logs)
