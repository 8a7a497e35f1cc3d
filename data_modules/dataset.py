"""The dataset of tokenized abstracts (cached token ids, optional labels) and the collator that pads
its items into a batch.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from .token_cache import TokenizedTexts


class EncodedAbstracts(Dataset):
    """Tokenized abstracts with optional labels; item ``i`` carries its position as ``index``.
    One item per abstract, also with windows (its ``input_ids``: the list of its windows)."""

    def __init__(self, tokens: TokenizedTexts, labels: Optional[np.ndarray] = None,
                 indices: Optional[np.ndarray] = None):
        self.tokens = tokens
        self.labels = labels
        self.indices = np.arange(len(tokens)) if indices is None else np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        row = int(self.indices[i])
        item = {"input_ids": self.tokens[row], "index": row}
        if self.labels is not None:
            item["labels"] = self.labels[row]
        return item

    @property
    def lengths(self) -> np.ndarray:
        return self.tokens.lengths[self.indices]


def is_windows(input_ids) -> bool:
    """Whether an item's ``input_ids`` is a list of windows (``long_text: windows``)."""
    return isinstance(input_ids, (list, tuple)) and len(input_ids) > 0 and np.ndim(input_ids[0]) == 1


class PadCollator:
    """Pad a batch to its longest abstract (optionally to a multiple of ``pad_to_multiple_of``).

    >>> collate = PadCollator(pad_token_id=0)
    >>> batch = collate([{"input_ids": np.array([101, 7, 102]), "index": 0},
    ...                  {"input_ids": np.array([101, 102]), "index": 1}])
    >>> batch["input_ids"].tolist(), batch["attention_mask"].tolist()
    ([[101, 7, 102], [101, 102, 0]], [[1, 1, 1], [1, 1, 0]])

    With ``long_text: windows`` an item's ``input_ids`` is a list of windows; the batch is then
    (abstracts, windows, tokens): each window padded to the longest, an abstract with fewer windows
    padded with all-padding windows:

    >>> batch = collate([{"input_ids": [np.array([101, 7, 102]), np.array([101, 8, 102])], "index": 0},
    ...                  {"input_ids": [np.array([101, 102])], "index": 1}])
    >>> batch["attention_mask"].tolist()
    [[[1, 1, 1], [1, 1, 1]], [[1, 1, 0], [0, 0, 0]]]
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: Optional[int] = None):
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def pad(self, sequences: list) -> tuple[torch.Tensor, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` (sequences, tokens)."""
        width = max(len(ids) for ids in sequences)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(sequences), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, ids in enumerate(sequences):
            ids = torch.as_tensor(ids, dtype=torch.long)
            input_ids[row, :len(ids)] = ids
            attention_mask[row, :len(ids)] = 1
        return input_ids, attention_mask

    def pad_windows(self, abstracts: list[list]) -> tuple[torch.Tensor, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` (abstracts, windows, tokens); missing windows are
        all padding (mask 0)."""
        flat_ids, flat_mask = self.pad([window for windows in abstracts for window in windows])
        counts = torch.tensor([len(windows) for windows in abstracts])
        real = torch.arange(int(counts.max())).unsqueeze(0) < counts.unsqueeze(1)  # (abstracts, windows)
        input_ids = flat_ids.new_full((*real.shape, flat_ids.shape[1]), self.pad_token_id)
        attention_mask = flat_mask.new_zeros((*real.shape, flat_mask.shape[1]))
        input_ids[real], attention_mask[real] = flat_ids, flat_mask  # row-major: each abstract's windows in order
        return input_ids, attention_mask

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        sequences = [item["input_ids"] for item in items]
        input_ids, attention_mask = (self.pad_windows if is_windows(sequences[0]) else self.pad)(sequences)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask,
                 "index": torch.tensor([item["index"] for item in items], dtype=torch.long)}
        if "labels" in items[0]:
            batch["labels"] = torch.as_tensor(np.stack([item["labels"] for item in items]))
        return batch
