"""The interface every classification head implements."""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn


class ClassificationHead(nn.Module):
    """Maps encoder token states to one logit per label.

    Subclasses take ``hidden_size`` and ``num_labels`` as their first two arguments (the model
    supplies both; a config sets only the rest) and implement :meth:`forward`. A head that sets
    ``uses_label_descriptions = True`` receives ``label_states``: the encoder's [CLS] state of each
    label's description, shape (num_labels, hidden). The parameters of the modules that
    :meth:`attention_modules` names are trained with the model's ``attention_lr``; the others with
    ``head_lr``. A head with attention weights to show (``explain``) sets ``has_attention_weights``
    and implements :meth:`forward_with_attention`; one that ``torch.export`` cannot trace sets
    ``exports_with_dynamo = False`` (``export`` then uses torch.onnx's TorchScript exporter).
    """

    uses_label_descriptions = False
    has_attention_weights = False
    exports_with_dynamo = True

    def __init__(self, hidden_size: int, num_labels: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_labels = num_labels

    def forward(self, token_states: torch.Tensor, attention_mask: torch.Tensor,
                label_states: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``token_states`` (batch, tokens, hidden), ``attention_mask`` (batch, tokens) with 1 for
        real tokens; returns logits (batch, num_labels)."""
        raise NotImplementedError

    def forward_with_attention(self, token_states: torch.Tensor, attention_mask: torch.Tensor,
                               label_states: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and attention weights (batch, num_labels, tokens), for heads with ``has_attention_weights``."""
        raise TypeError(f"{type(self).__name__} has no attention weights to show")

    def attention_modules(self) -> list[nn.Module]:
        """The head's attention layers (trained with ``attention_lr``); none by default."""
        return []


# What a config's ``head:`` entry becomes: a callable completed with (hidden_size, num_labels).
HeadFactory = Callable[[int, int], ClassificationHead]
