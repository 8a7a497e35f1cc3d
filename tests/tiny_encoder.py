"""Tiny randomly initialised BERT encoders (and their tokenizers) saved to a folder, for fast tests."""

from __future__ import annotations

import string
from pathlib import Path

from transformers import BertConfig, BertModel, BertTokenizerFast

from data_modules.synthetic import CONDITIONS, GENERIC, TOPIC_TEMPLATES

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _vocabulary() -> list[str]:
    words = set()
    for text in [*GENERIC, *TOPIC_TEMPLATES, *(t for terms in CONDITIONS.values() for t in terms)]:
        words.update(w.strip(".,{}").lower() for w in text.split())
    chars = string.ascii_lowercase + string.digits + string.punctuation
    tokens = SPECIAL + sorted(w for w in words if w) + list(chars) + [f"##{c}" for c in chars]
    return list(dict.fromkeys(tokens))


def build_tiny_encoder(folder: Path, hidden_size: int = 32, seed: int = 0) -> Path:
    """Save a 2-layer BERT with ``hidden_size`` and a WordPiece tokenizer into ``folder``."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    vocabulary = _vocabulary()
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocabulary)}, do_lower_case=True).save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocabulary), hidden_size=hidden_size, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=2 * hidden_size, max_position_embeddings=512)
    BertModel(config).save_pretrained(folder)
    return folder
