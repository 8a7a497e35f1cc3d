"""AdamW parameter groups with per-module learning rates, and the warm-up/decay schedule.

>>> import torch.nn as nn
>>> groups = parameter_groups({"head": (nn.Linear(2, 2), 1e-3)}, weight_decay=0.01)
>>> [(g["lr"], g["weight_decay"], len(g["params"])) for g in groups]
[(0.001, 0.01, 1), (0.001, 0.0, 1)]
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight", "_norm.weight")


def parameter_groups(modules: dict[str, tuple[nn.Module | list[tuple[str, nn.Parameter]], float]],
                     weight_decay: float) -> list[dict]:
    """Two groups (decay, no decay on biases and norms) per named module, each with its own lr."""
    groups = []
    for name, (module, lr) in modules.items():
        named = module if isinstance(module, list) else list(module.named_parameters())
        named = [(n, p) for n, p in named if p.requires_grad]
        decay = [p for n, p in named if not n.endswith(NO_DECAY)]
        no_decay = [p for n, p in named if n.endswith(NO_DECAY)]
        groups += [{"params": decay, "lr": lr, "weight_decay": weight_decay, "name": name},
                   {"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{name}/no_decay"}]
    return [group for group in groups if group["params"]]


def split_attention(head: nn.Module) -> tuple[list, list]:
    """A head's parameters split into (attention, other) by whether the name contains ``attention``."""
    named = list(head.named_parameters())
    return [(n, p) for n, p in named if "attention" in n], [(n, p) for n, p in named if "attention" not in n]


def adamw_with_linear_warmup(groups: list[dict], total_steps: int, warmup_ratio: float) -> dict:
    """AdamW (fused on CUDA and CPU: one kernel per step) and a linear warm-up then linear decay to zero."""
    devices = {p.device.type for g in groups for p in g["params"]}
    optimizer = torch.optim.AdamW(groups, fused=True if devices in ({"cuda"}, {"cpu"}) else None)
    total_steps = max(1, int(total_steps))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
