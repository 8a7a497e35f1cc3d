"""Label attention over token states, queried by encoded label descriptions.

After Nguyen & Ji (2021), "Fine-Tuning Pretrained Language Models With Label Attention for
Biomedical Text Classification".
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from .base import ClassificationHead


class LabelAttentionLayer(nn.Module):
    """Label vectors attend to the tokens; residual + LayerNorm, feed-forward, residual + LayerNorm.

    The attention probabilities themselves are not dropped out (so the returned weights are
    always distributions over the real tokens); dropout acts on the sub-layer outputs.
    """

    def __init__(self, hidden_size: int, num_heads: int, feedforward_size: int, dropout: float):
        super().__init__()
        self.attention = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True)
        self.attended_norm = nn.LayerNorm(hidden_size)
        self.feedforward = nn.Sequential(
            nn.Linear(hidden_size, feedforward_size), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(feedforward_size, hidden_size))
        self.feedforward_norm = nn.LayerNorm(hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries: torch.Tensor, token_states: torch.Tensor, padding: torch.Tensor,
                need_weights: bool = False) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        attended, weights = self.attention(queries, token_states, token_states,
                                           key_padding_mask=padding, need_weights=need_weights)
        x = self.attended_norm(queries + self.dropout(attended))
        return self.feedforward_norm(x + self.dropout(self.feedforward(x))), weights


class LabelAttentionHead(ClassificationHead):
    """Each label's encoded description queries the abstract's tokens; one logit per label.

    The model supplies ``label_states`` (num_labels, hidden): the encoder's [CLS] state of each
    label description. They are the queries of ``num_layers`` stacked attention layers (keys and
    values are the token states, padding masked out), each followed by residual + LayerNorm and a
    feed-forward block (Linear-GELU-Linear) + residual + LayerNorm. Label ``l``'s output vector
    is scored by its own weight row: ``logit[b, l] = <out[b, l], w[l]> + bias[l]``.

    Args:
        hidden_size, num_labels: supplied by the model.
        num_layers: stacked label-attention layers.
        num_heads: attention heads; ``hidden_size`` must be divisible by it.
        feedforward_size: inner width of the feed-forward block; default ``4 * hidden_size``
            (the usual Transformer ratio).
        dropout: on the attention and feed-forward outputs and before scoring.

    >>> head = LabelAttentionHead(8, 3, num_heads=2)
    >>> head(torch.randn(2, 5, 8), torch.ones(2, 5), torch.randn(3, 8)).shape
    torch.Size([2, 3])
    """

    uses_label_descriptions = True
    has_attention_weights = True

    def __init__(self, hidden_size: int, num_labels: int, num_layers: int = 1, num_heads: int = 4,
                 feedforward_size: Optional[int] = None, dropout: float = 0.1):
        super().__init__(hidden_size, num_labels)
        if num_heads < 1 or hidden_size % num_heads:
            raise ValueError(f"hidden_size = {hidden_size} must be divisible by num_heads "
                             f"= {num_heads}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        feedforward_size = feedforward_size or 4 * hidden_size
        self.layers = nn.ModuleList(
            LabelAttentionLayer(hidden_size, num_heads, feedforward_size, dropout)
            for _ in range(num_layers))
        self.dropout = nn.Dropout(dropout)
        bound = 1 / math.sqrt(hidden_size)
        self.label_weight = nn.Parameter(torch.empty(num_labels, hidden_size).uniform_(-bound, bound))
        self.label_bias = nn.Parameter(torch.zeros(num_labels))

    def attention_modules(self) -> list[nn.Module]:
        return [layer.attention for layer in self.layers]

    def forward(self, token_states: torch.Tensor, attention_mask: torch.Tensor,
                label_states: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._run(token_states, attention_mask, label_states, need_weights=False)[0]

    def forward_with_attention(self, token_states: torch.Tensor, attention_mask: torch.Tensor,
                               label_states: Optional[torch.Tensor] = None
                               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the LAST layer's attention weights (batch, num_labels, tokens), averaged
        over heads: each row sums to 1 over the real tokens and is 0 on padding."""
        logits, weights = self._run(token_states, attention_mask, label_states, need_weights=True)
        return logits, weights

    def _run(self, token_states: torch.Tensor, attention_mask: torch.Tensor,
             label_states: Optional[torch.Tensor], need_weights: bool
             ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        if label_states is None:
            raise ValueError("LabelAttentionHead needs label_states (num_labels, hidden): the "
                             "encoded label descriptions")
        if label_states.shape != (self.num_labels, self.hidden_size):
            raise ValueError(f"label_states has shape {tuple(label_states.shape)}; expected "
                             f"({self.num_labels}, {self.hidden_size})")
        padding = attention_mask == 0
        padding = padding & ~padding.all(1, keepdim=True)  # an all-padding row attends to all
        x = label_states.to(token_states.dtype).unsqueeze(0).expand(token_states.shape[0], -1, -1)
        weights = None
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            x, weights = layer(x, token_states, padding, need_weights=need_weights and last)
        x = self.dropout(x)
        return (x * self.label_weight).sum(-1) + self.label_bias, weights
