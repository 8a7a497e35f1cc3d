"""The dataset of tokenized abstracts (cached token ids, optional labels) and the collator that pads
its items into a batch.

>>> collate = PadCollator(pad_token_id=0)
>>> batch = collate([{"input_ids": np.array([101, 7, 102]), "index": 0},
...                  {"input_ids": np.array([101, 102]), "index": 1}])
>>> batch["input_ids"].tolist(), batch["attention_mask"].tolist()
([[101, 7, 102], [101, 102, 0]], [[1, 1, 1], [1, 1, 0]])
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from .token_cache import TokenizedTexts


class EncodedAbstracts(Dataset):
    """Tokenized abstracts with optional labels; item ``i`` carries its position as ``index``."""

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


class PadCollator:
    """Pad a batch to its longest abstract (optionally to a multiple of ``pad_to_multiple_of``)."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: Optional[int] = None):
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(item["input_ids"]) for item in items)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(items), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, item in enumerate(items):
            ids = torch.as_tensor(item["input_ids"], dtype=torch.long)
            input_ids[row, :len(ids)] = ids
            attention_mask[row, :len(ids)] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask,
                 "index": torch.tensor([item["index"] for item in items], dtype=torch.long)}
        if "labels" in items[0]:
            batch["labels"] = torch.as_tensor(np.stack([item["labels"] for item in items]))
        return batch
