"""Pool token states into one vector per abstract, ignoring padding.

>>> states, mask = torch.ones(1, 3, 2), torch.tensor([[1, 1, 0]])
>>> pool(states, mask, "mean").tolist()
[[1.0, 1.0]]
"""

from __future__ import annotations

from typing import Literal

import torch

Pooling = Literal["cls", "mean", "max"]


def pool(token_states: torch.Tensor, attention_mask: torch.Tensor, how: Pooling) -> torch.Tensor:
    if how == "cls":
        return token_states[:, 0]
    mask = attention_mask.unsqueeze(-1).to(token_states.dtype)
    if how == "mean":
        return (token_states * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    if how == "max":
        return token_states.masked_fill(mask == 0, torch.finfo(token_states.dtype).min).amax(1)
    raise ValueError(f"unknown pooling {how!r}; use cls, mean or max")
