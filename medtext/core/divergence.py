"""Diverged training and non-finite models stop a command with one line (exit status 2).

``fit`` stops at the first non-finite training loss (:class:`callbacks.StopOnDivergence`); no checkpoint
is written with non-finite weights; ``validate``, ``test`` and ``predict`` refuse them.
"""

from __future__ import annotations

from typing import Mapping, Optional

import torch

from medtext.core.errors import MedtextError

STAGES = {"val": "validation", "test": "test", "predict": "predict"}


class NonFiniteError(MedtextError):
    """A NaN or infinite training loss, weight or model output (a learning rate far too high makes the
    training loss, then the weights, NaN or infinite)."""


def lower_rates_hint(module) -> str:
    """What to try, with the module's current learning rates (its ``*_lr`` hyperparameters)."""
    hparams = getattr(module, "hparams", {}) or {}
    rates = [f"{name}={value:.3g}" for name, value in sorted(hparams.items())
             if name.endswith("_lr") and isinstance(value, (int, float)) and not isinstance(value, bool)]
    return f"try lower learning rates (now {', '.join(rates)})" if rates else "try a lower learning rate"


def non_finite(tensors: Mapping[str, object]) -> list[str]:
    """The names of the floating-point tensors holding a NaN or an infinity."""
    return [name for name, value in tensors.items()
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())]


def _trainer(module):
    return getattr(module, "_trainer", None)  # the ``trainer`` property raises when none is attached


def _fitting(module) -> bool:
    trainer = _trainer(module)
    return trainer is not None and trainer.state.fn == "fit"


def _some(names: list[str]) -> str:
    return f"non-finite weights ({len(names)} tensor{'s, first' if len(names) > 1 else ':'} {names[0]})"


def check_weights(module, ckpt_path: Optional[str] = None) -> None:
    """At the start of validation, test and predict, and when a command loads a checkpoint
    (``ckpt_path``): refuse a model with non-finite weights (a checkpoint of a diverged run; its
    temperatures and thresholds are weights too)."""
    names = non_finite(module.state_dict())
    if not names:
        return
    trainer = _trainer(module)
    if _fitting(module):
        raise NonFiniteError(f"training diverged before step {trainer.global_step}: the model has {_some(names)}; "
                             f"{lower_rates_hint(module)}")
    ckpt_path = ckpt_path or getattr(trainer, "ckpt_path", None)
    source = f"the checkpoint {ckpt_path}" if ckpt_path else "the model"
    raise NonFiniteError(f"{source} has {_some(names)}: the run that wrote it diverged; "
                         "use a checkpoint saved before the divergence")


def check_checkpoint(module, checkpoint: dict) -> None:
    """Before any checkpoint is written (every N steps, after validation, on an exception, at the end
    of training): refuse non-finite weights, so they never replace a good ``last.ckpt``: the one saved
    before the divergence is kept to resume from."""
    names = non_finite(checkpoint.get("state_dict") or {})
    if names:
        step = checkpoint.get("global_step", 0)
        raise NonFiniteError(f"training diverged at step {max(step - 1, 0)}: its update left {_some(names)}, not "
                             f"saved (the checkpoints saved before are kept); {lower_rates_hint(module)}")


def check_outputs(module, logits: torch.Tensor, stage: str) -> None:
    """Refuse logits (abstracts first) with a NaN or an infinity: they would become NaN probabilities
    and class 0, or misalign a collection that drops NaN."""
    finite = torch.isfinite(logits.detach())
    finite = finite.flatten(1).all(-1) if finite.dim() > 1 else finite  # one flag per abstract
    if bool(finite.all()):
        return
    count = f"{int((~finite).sum())} of {len(finite)} abstracts"
    if _fitting(module):
        raise NonFiniteError(f"training diverged: the model's {STAGES.get(stage, stage)} outputs are not finite "
                             f"for {count} at step {_trainer(module).global_step}; {lower_rates_hint(module)}")
    ckpt_path: Optional[str] = getattr(_trainer(module), "ckpt_path", None)
    raise NonFiniteError(f"{STAGES.get(stage, stage)}: the model's outputs are not finite for {count} "
                         f"(weights of a diverged run{' in ' + str(ckpt_path) if ckpt_path else ''}): "
                         "use a checkpoint saved before the divergence")
