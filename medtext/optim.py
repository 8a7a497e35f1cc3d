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

def parameter_groups(modules: dict[str, tuple[nn.Module | list[nn.Parameter], float]], weight_decay: float) -> list[dict]:
    """Two groups per named module, each with its own lr: weight decay on matrices (linear,
    embedding, LSTM and query weights), none on vectors (biases, norms: ``ndim < 2``)."""
    groups = []
    for name, (module, lr) in modules.items():
        parameters = [p for p in (module if isinstance(module, list) else module.parameters()) if p.requires_grad]
        groups += [{"params": [p for p in parameters if p.ndim >= 2], "lr": lr, "weight_decay": weight_decay,
                    "name": name},
                   {"params": [p for p in parameters if p.ndim < 2], "lr": lr, "weight_decay": 0.0,
                    "name": f"{name}/no_decay"}]
    return [group for group in groups if group["params"]]


def split_attention(head: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """A head's parameters split into (attention, other): attention is what the head's
    ``attention_modules()`` holds."""
    modules = head.attention_modules() if hasattr(head, "attention_modules") else []
    attention = {id(p): p for module in modules for p in module.parameters()}
    return list(attention.values()), [p for p in head.parameters() if id(p) not in attention]


def adamw_with_linear_warmup(groups: list[dict], total_steps: int, warmup_ratio: float) -> dict:
    """AdamW (fused on CUDA and CPU: one kernel per step) and a linear warm-up then linear decay to zero."""
    devices = {p.device.type for g in groups for p in g["params"]}
    optimizer = torch.optim.AdamW(groups, fused=True if devices in ({"cuda"}, {"cpu"}) else None)
    total_steps = max(1, int(total_steps))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
