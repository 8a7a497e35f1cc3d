"""AdamW parameter groups with per-module learning rates, and the warm-up/decay schedule."""

from __future__ import annotations

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from medtext.core.errors import MedtextError


def parameter_groups(modules: dict[str, tuple[nn.Module | list[nn.Parameter], float]], weight_decay: float) -> list[dict]:
    """Two groups per named module, each with its own lr: weight decay on matrices (linear,
    embedding, LSTM and query weights), none on vectors (biases, norms: ``ndim < 2``).

    >>> import torch.nn as nn
    >>> groups = parameter_groups({"head": (nn.Linear(2, 2), 1e-3)}, weight_decay=0.01)
    >>> [(g["lr"], g["weight_decay"], len(g["params"])) for g in groups]
    [(0.001, 0.01, 1), (0.001, 0.0, 1)]
    """
    groups = []
    for name, (module, lr) in modules.items():
        parameters = [p for p in (module if isinstance(module, list) else module.parameters()) if p.requires_grad]
        groups += [{"params": [p for p in parameters if p.ndim >= 2], "lr": lr, "weight_decay": weight_decay,
                    "name": name},
                   {"params": [p for p in parameters if p.ndim < 2], "lr": lr, "weight_decay": 0.0,
                    "name": f"{name}/no_decay"}]
    return [group for group in groups if group["params"]]


def encoder_groups(encoder: nn.Module, lr: float, layer_decay: float | None = None
                   ) -> dict[str, tuple[nn.Module | list[nn.Parameter], float]]:
    """The encoder's named modules and learning rates for :func:`parameter_groups`. Without
    ``layer_decay`` (or 1.0): ``{"encoder": (encoder, lr)}``. With decay d and L layers (layer-wise
    learning-rate decay): ``encoder/layer_{i}`` at ``lr * d**(L-1-i)`` (the top layer at ``lr``),
    ``encoder/embeddings`` at ``lr * d**L``, anything else (pooler ...) ``encoder`` at ``lr``."""
    if layer_decay is None or layer_decay == 1.0:
        return {"encoder": (encoder, lr)}
    if not 0.0 < layer_decay <= 1.0:
        raise MedtextError(f"layer_decay must be in (0, 1], not {layer_decay}")
    layers = encoder_layers(encoder)
    embeddings = input_embeddings(encoder, layers)
    depth = len(layers)
    named = {f"encoder/layer_{i}": (list(layer.parameters()), lr * layer_decay ** (depth - 1 - i))
             for i, layer in enumerate(layers)}
    named["encoder/embeddings"] = (list(embeddings.parameters()), lr * layer_decay ** depth)
    taken = {id(p) for parameters, _ in named.values() for p in parameters}
    return {"encoder": ([p for p in encoder.parameters() if id(p) not in taken], lr), **named}


def encoder_layers(encoder: nn.Module) -> nn.ModuleList:
    """The transformer layers of a Hugging Face encoder: the ``nn.ModuleList`` (the largest, if
    several) whose length is ``config.num_hidden_layers``."""
    depth = getattr(getattr(encoder, "config", None), "num_hidden_layers", None)
    lists = [m for m in encoder.modules() if isinstance(m, nn.ModuleList) and depth and len(m) == depth]
    if not lists:
        raise MedtextError(f"layer_decay: {type(encoder).__name__} has no list of {depth} layers "
                           "(config.num_hidden_layers) to decay the learning rate over")
    return max(lists, key=lambda m: sum(p.numel() for p in m.parameters()))


def input_embeddings(encoder: nn.Module, layers: nn.Module) -> nn.Module:
    """The module holding the encoder's ``get_input_embeddings()`` (word, position, token-type
    embeddings and their norm in BERTs), or the embedding alone if that module also holds the layers."""
    embedding = encoder.get_input_embeddings() if hasattr(encoder, "get_input_embeddings") else None
    names = {id(m): name for name, m in encoder.named_modules()}
    if embedding is None or id(embedding) not in names:
        raise MedtextError(f"layer_decay: {type(encoder).__name__} has no input embeddings (get_input_embeddings)")
    parent = names[id(embedding)].rpartition(".")[0]
    holder = encoder.get_submodule(parent)
    return embedding if any(m is layers for m in holder.modules()) else holder


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


def adamw_for_classifier(encoder: nn.Module, head: nn.Module, hparams, total_steps: int) -> dict:
    """``TextClassifier``'s optimizer: the encoder's groups (layer-wise decay), the head's attention
    parameters at ``attention_lr`` (default ``head_lr``) and the rest of the head at ``head_lr``."""
    attention, other = split_attention(head)
    groups = parameter_groups({
        **encoder_groups(encoder, hparams.encoder_lr, hparams.get("layer_decay")),
        "head": (other, hparams.head_lr),
        "attention": (attention, hparams.attention_lr or hparams.head_lr),
    }, hparams.weight_decay)
    return adamw_with_linear_warmup(groups, total_steps, hparams.warmup_ratio)
