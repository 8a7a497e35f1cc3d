"""Encode label descriptions with the classifier's own encoder: one [CLS] state per label.

>>> ids, mask = tokenize_descriptions("sentence-transformers/all-MiniLM-L6-v2", ["Neoplasms: tumours."])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Sequence

import torch

from .encoders import load_tokenizer


def tokenize_descriptions(encoder_name: str, descriptions: Sequence[str],
                          max_length: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask (labels, tokens) of the descriptions, padded to the longest."""
    encoded = load_tokenizer(encoder_name)(list(descriptions), padding=True, truncation=True,
                                           max_length=max_length, return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


def cls_states(encoder: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The encoder's first-token ([CLS]) state of each description: (labels, hidden)."""
    return encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]
