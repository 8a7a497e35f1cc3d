"""Logits of abstracts split into windows (``data.long_text: windows``), pooled over their windows.

Loss, metrics, thresholds and predictions see (abstracts, labels) logits, as with truncated abstracts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

WindowPooling = Literal["mean", "max"]
WINDOW_POOLINGS = ("mean", "max")


def check_window_pooling(how: str) -> None:
    if how not in WINDOW_POOLINGS:
        raise ValueError(f"window_pooling must be one of {', '.join(WINDOW_POOLINGS)}, not {how!r}")


def pool_windows(forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], input_ids: torch.Tensor,
                 attention_mask: torch.Tensor, how: WindowPooling = "mean") -> torch.Tensor:
    """Logits (abstracts, labels) of windowed ``input_ids``/``attention_mask`` (abstracts, windows,
    tokens): ``forward`` (2-D ids and mask -> logits) on the real windows (a window is real when its
    mask has a one), the logits pooled over each abstract's real windows (``mean`` or ``max``).

    An abstract with fewer windows than the batch's most is padded with all-padding windows (attention
    mask all zero): they cost no compute and never change a result.

    >>> ids = torch.tensor([[[5, 6], [7, 0]], [[8, 0], [0, 0]]])
    >>> logits = pool_windows(lambda i, m: i[:, :1].float(), ids, ids.ne(0).long(), "mean")
    >>> logits.tolist()
    [[6.0], [8.0]]
    """
    check_window_pooling(how)
    abstracts, windows, tokens = input_ids.shape
    real = attention_mask.reshape(abstracts, windows, tokens).ne(0).any(-1)  # (abstracts, windows)
    if not real.any(1).all():
        raise ValueError("every abstract needs at least one window with a real token")
    flat_real = real.reshape(-1)
    logits = forward(input_ids.reshape(-1, tokens)[flat_real], attention_mask.reshape(-1, tokens)[flat_real])
    placed = logits.new_zeros((abstracts * windows, logits.shape[-1]))
    placed = placed.index_copy(0, flat_real.nonzero().squeeze(1), logits).view(abstracts, windows, -1)
    present = real.unsqueeze(-1)
    if how == "max":
        return placed.masked_fill(~present, torch.finfo(placed.dtype).min).amax(1)
    return (placed * present).sum(1) / real.sum(1, keepdim=True).to(placed.dtype)
