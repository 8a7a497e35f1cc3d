"""Parameters that take no part in the loss, and what DistributedDataParallel needs to know of them.

DDP all-reduces the gradient of every parameter that requires one, and by default fails at the
second step when some parameter got none ("parameters that were not used in producing the loss").
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities import rank_zero_info

from medtext.core.errors import MedtextError


def freeze_unused_parameters(module: torch.nn.Module, loss_fn: Callable[[], torch.Tensor]) -> list[str]:
    """Run ``loss_fn`` once (a forward pass returning a scalar) and backward; every trainable
    parameter of ``module`` that received no gradient stops requiring one. Returns their names.

    The pass leaves the random number generators, gradients and training mode as they were. It is for
    a part of the encoder no head reads, such as the pooler that BERT, RoBERTa and MiniLM checkpoints
    carry: DDP then ignores those parameters at no cost.

    >>> import torch
    >>> model = torch.nn.ModuleDict({"used": torch.nn.Linear(2, 2), "unused": torch.nn.Linear(2, 2)})
    >>> freeze_unused_parameters(model, lambda: model["used"](torch.ones(1, 2)).sum())
    ['unused.weight', 'unused.bias']
    """
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


# Lightning's registered DDP strategies and their twins that search for unused parameters
FINDING_UNUSED = {name: f"{name}_find_unused_parameters_true" for name in ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")}


def several_processes(trainer_config) -> bool:
    """Whether Lightning's ``strategy: auto`` runs these trainer settings with DDP (more than one device)."""
    devices, nodes = trainer_config.get("devices", "auto"), trainer_config.get("num_nodes") or 1
    if nodes > 1:
        return True
    if isinstance(devices, (list, tuple)):
        return len(devices) > 1
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()]) > 1
    if devices in ("auto", -1, "-1"):
        accelerator = str(trainer_config.get("accelerator") or "auto")
        return accelerator in ("auto", "gpu", "cuda") and torch.cuda.device_count() > 1
    return int(devices) > 1


def strategy_finding_unused_parameters(trainer_config) -> Optional[Any]:
    """The ``trainer.strategy`` that keeps frozen-for-a-while parameters in DDP's reduction, chosen at
    config time (``ddp`` becomes ``ddp_find_unused_parameters_true``), or ``None`` when none is needed
    (no DDP) or the configured strategy already searches (or is one medtext does not know).

    For an encoder frozen for the first epochs (``freeze_encoder_epochs``) and trained after: DDP must
    keep its parameters. Only that run searches; every other run keeps DDP's faster default."""
    strategy = trainer_config.get("strategy") or "auto"
    if strategy == "auto":
        return FINDING_UNUSED["ddp"] if several_processes(trainer_config) else None
    if isinstance(strategy, str):
        return FINDING_UNUSED.get(strategy)
    class_path = str(strategy.get("class_path", "")) if hasattr(strategy, "get") else ""
    init_args = dict(strategy.get("init_args") or {}) if class_path else {}
    if class_path.rpartition(".")[2] == "DDPStrategy" and not init_args.get("find_unused_parameters"):
        return {**dict(strategy), "init_args": {**init_args, "find_unused_parameters": True}}
    return None


def find_unused_parameters_while_frozen(trainer_config) -> None:
    """A frozen-then-trained encoder under DDP: ``trainer_config.strategy`` becomes the one that keeps
    its parameters in DDP's reduction (:func:`strategy_finding_unused_parameters`), said in one line."""
    strategy = strategy_finding_unused_parameters(trainer_config)
    if strategy is not None:
        trainer_config.strategy = strategy
        rank_zero_info("freeze_encoder_epochs: DDP detects unused parameters in this run (find_unused_parameters=True)")


def check_unused_parameter_search(strategy, reason: str) -> None:
    """A DDP run whose parameters are frozen for a while and then train fails at its second step
    unless DDP searches for unused parameters: say so in one line, before training starts (a strategy
    object built in Python, which config-time choice cannot change)."""
    if isinstance(strategy, DDPStrategy) and not getattr(strategy, "_ddp_kwargs", {}).get("find_unused_parameters"):
        raise MedtextError(f"{reason} under DDP needs --trainer.strategy ddp_find_unused_parameters_true")
