"""Parameters that take no part in the loss, and what DistributedDataParallel needs to know of them.

DDP all-reduces the gradient of every parameter that requires one, and by default fails at the
second step when some parameter got none ("parameters that were not used in producing the loss").
Two cases arise in medtext:

- a part of the encoder no head reads, such as the pooler that BERT, RoBERTa and MiniLM
  checkpoints carry: :func:`freeze_unused_parameters` finds such parameters with one tiny
  forward/backward pass and stops them requiring gradients, so DDP ignores them at no cost;
- an encoder frozen for the first epochs (``freeze_encoder_epochs``) and trained after: DDP must
  keep its parameters, so :func:`find_unused_parameters_while_frozen` turns on DDP's detection of
  unused parameters for that run only (every other run keeps DDP's faster default).

>>> import torch
>>> model = torch.nn.ModuleDict({"used": torch.nn.Linear(2, 2), "unused": torch.nn.Linear(2, 2)})
>>> freeze_unused_parameters(model, lambda: model["used"](torch.ones(1, 2)).sum())
['unused.weight', 'unused.bias']
"""

from __future__ import annotations

from typing import Callable

import torch
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities import rank_zero_info

from .errors import MedtextError


def freeze_unused_parameters(module: torch.nn.Module, loss_fn: Callable[[], torch.Tensor]) -> list[str]:
    """Run ``loss_fn`` once (a forward pass returning a scalar) and backward; every trainable
    parameter of ``module`` that received no gradient stops requiring one. Returns their names.

    The pass leaves the random number generators, gradients and training mode as they were."""
    trainable = {name: p for name, p in module.named_parameters() if p.requires_grad}
    saved_grads = {name: p.grad for name, p in trainable.items()}
    for p in trainable.values():
        p.grad = None
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        loss_fn().backward()
    unused = [name for name, p in trainable.items() if p.grad is None]
    for name, p in trainable.items():
        p.grad = saved_grads[name]
        if name in unused:
            p.requires_grad_(False)
    return unused


def find_unused_parameters_while_frozen(strategy, reason: str) -> None:
    """Turn on DDP's unused-parameter detection for this run (parameters that are frozen for a
    while must stay in DDP's reduction, to be all-reduced once they train)."""
    if not isinstance(strategy, DDPStrategy):
        return
    kwargs = getattr(strategy, "_ddp_kwargs", None)
    if not isinstance(kwargs, dict):  # a Lightning without this attribute: say what to do instead
        raise MedtextError(f"{reason} under DDP needs --trainer.strategy ddp_find_unused_parameters_true")
    if not kwargs.get("find_unused_parameters"):
        kwargs["find_unused_parameters"] = True
        rank_zero_info(f"{reason}: DDP detects unused parameters in this run (find_unused_parameters=True)")
