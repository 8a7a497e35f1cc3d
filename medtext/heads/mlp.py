"""MLP head over a pooled abstract vector."""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import torch
from torch import nn

from .base import ClassificationHead
from .pooling import Pooling, pool

ACTIVATIONS = {"gelu": nn.GELU, "tanh": nn.Tanh, "relu": nn.ReLU}


class MLPHead(ClassificationHead):
    """Pool ([CLS], mean or max over real tokens), then dropout + Linear(+activation) layers.

    Args:
        hidden_size, num_labels: supplied by the model.
        pooling: ``cls``, ``mean`` or ``max``.
        hidden_dims: widths of hidden layers; ``[]`` is a linear classifier on the pooled vector.
        dropout: before every linear layer.
        activation: after each hidden layer: ``gelu``, ``tanh`` or ``relu``. ``pooling: cls``,
            ``hidden_dims: [hidden_size]`` and ``tanh`` is the architecture of BERT's pooler plus
            classifier (Hugging Face ``BertForSequenceClassification``).

    >>> head = MLPHead(8, 3, hidden_dims=[4])
    >>> head(torch.randn(2, 5, 8), torch.ones(2, 5)).shape
    torch.Size([2, 3])
    """

    def __init__(self, hidden_size: int, num_labels: int, pooling: Pooling = "cls",
                 hidden_dims: Sequence[int] = (), dropout: float = 0.1,
                 activation: Literal["gelu", "tanh", "relu"] = "gelu"):
        super().__init__(hidden_size, num_labels)
        self.pooling = pooling
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; use {', '.join(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        width = hidden_size
        for dim in hidden_dims:
            layers += [nn.Dropout(dropout), nn.Linear(width, dim), ACTIVATIONS[activation]()]
            width = dim
        layers += [nn.Dropout(dropout), nn.Linear(width, num_labels)]
        self.mlp = nn.Sequential(*layers)

    def forward(self, token_states: torch.Tensor, attention_mask: torch.Tensor,
                label_states: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.mlp(pool(token_states, attention_mask, self.pooling))
