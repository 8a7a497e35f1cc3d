"""BiLSTM over the encoder's token states, then multi-head cross-attention with class queries."""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .base import ClassificationHead

Query = Literal["labels", "cls"]


class BiLSTMCrossAttentionHead(ClassificationHead):
    """Token states -> BiLSTM -> cross-attention over the BiLSTM states -> dropout -> logits.

    The BiLSTM reads only the real tokens (sequences are packed by the lengths in the mask, which
    assumes right padding, as the tokenizers produce), and padding is masked out of the attention
    keys, so padding never affects the logits. The LSTM runs in float32 even under autocast.

    Queries (``query``):
        ``labels`` (default): one learned query vector per class. Each class attends to the
            tokens relevant to it, and its attended vector is scored by that class's own weight
            row: ``logit[l] = <attended[l], w[l]> + b[l]``.
        ``cls``: the encoder's [CLS] state (token 0), projected to the BiLSTM width, is a single
            query; its attended vector goes through ``Linear(2 * lstm_hidden_size, num_labels)``.

    Args:
        hidden_size, num_labels: supplied by the model.
        lstm_hidden_size: per direction; the attention width is ``2 * lstm_hidden_size``, which
            must be divisible by ``num_heads``.
        lstm_layers: stacked BiLSTM layers (with ``dropout`` between them).
        num_heads: attention heads.
        dropout: in the attention and before the classifier.
        query: ``labels`` or ``cls``, see above.

    >>> head = BiLSTMCrossAttentionHead(8, 3, lstm_hidden_size=4, num_heads=2)
    >>> head(torch.randn(2, 5, 8), torch.tensor([[1] * 5, [1, 1, 0, 0, 0]])).shape
    torch.Size([2, 3])
    """

    has_attention_weights = True
    exports_with_dynamo = False  # torch.export unrolls the LSTM over a fixed length (medtext/deploy/onnx_export.py)

    def __init__(self, hidden_size: int, num_labels: int, lstm_hidden_size: int = 256,
                 lstm_layers: int = 1, num_heads: int = 4, dropout: float = 0.1,
                 query: Query = "labels"):
        super().__init__(hidden_size, num_labels)
        width = 2 * lstm_hidden_size
        if num_heads < 1 or width % num_heads:
            raise ValueError(f"2 * lstm_hidden_size = {width} must be divisible by num_heads "
                             f"= {num_heads}")
        if query not in ("labels", "cls"):
            raise ValueError(f"unknown query {query!r}; use labels or cls")
        self.query = query
        self.lstm = nn.LSTM(hidden_size, lstm_hidden_size, num_layers=lstm_layers,
                            batch_first=True, bidirectional=True,
                            dropout=dropout if lstm_layers > 1 else 0.0)
        self.cross_attention = nn.MultiheadAttention(width, num_heads, dropout=dropout,
                                                     batch_first=True)
        self.dropout = nn.Dropout(dropout)
        if query == "labels":
            self.label_queries = nn.Parameter(torch.randn(num_labels, width) / math.sqrt(width))
            bound = 1 / math.sqrt(width)
            self.label_weight = nn.Parameter(torch.empty(num_labels, width).uniform_(-bound, bound))
            self.label_bias = nn.Parameter(torch.zeros(num_labels))
        else:
            self.cls_projection = nn.Linear(hidden_size, width)
            self.classifier = nn.Linear(width, num_labels)

    def attention_modules(self) -> list[nn.Module]:
        return [self.cross_attention]

    def forward(self, token_states: torch.Tensor, attention_mask: torch.Tensor,
                label_states: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._run(token_states, attention_mask, need_weights=False)[0]

    def forward_with_attention(self, token_states: torch.Tensor, attention_mask: torch.Tensor,
                               label_states: torch.Tensor | None = None
                               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the cross-attention weights averaged over heads: (batch, num_labels, tokens) with
        ``query: labels``, (batch, 1, tokens) with ``query: cls``; 0 on padding."""
        logits, weights = self._run(token_states, attention_mask, need_weights=True)
        return logits, weights

    def _run(self, token_states: torch.Tensor, attention_mask: torch.Tensor, need_weights: bool
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, tokens, _ = token_states.shape
        lengths = attention_mask.ne(0).sum(1).clamp_min(1).to("cpu", torch.int64)
        lstm_dtype = self.lstm.weight_ih_l0.dtype  # float32 unless the whole model was cast
        with torch.autocast(device_type=token_states.device.type, enabled=False):
            packed = pack_padded_sequence(token_states.to(lstm_dtype), lengths, batch_first=True,
                                          enforce_sorted=False)
            states, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True,
                                            total_length=tokens)
        positions = torch.arange(tokens, device=token_states.device)
        padding = positions.unsqueeze(0) >= lengths.to(token_states.device).unsqueeze(1)
        if self.query == "labels":
            queries = self.label_queries.unsqueeze(0).expand(batch, -1, -1)
        else:
            queries = self.cls_projection(token_states[:, :1])
        attended, weights = self.cross_attention(queries, states, states, key_padding_mask=padding,
                                                 need_weights=need_weights)
        attended = self.dropout(attended)
        if self.query == "labels":
            return (attended * self.label_weight).sum(-1) + self.label_bias, weights
        return self.classifier(attended[:, 0]), weights
