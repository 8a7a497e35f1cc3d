"""Tokenize abstracts once and cache the token ids on disk.

The cache key covers the file's bytes, the text column, the tokenizer (vocabulary, normaliser and
special tokens) and the max length, so an edited file or another tokenizer never reuses stale ids.
Ids are stored ragged (one flat ``int32`` array plus offsets) in an ``.npz`` written atomically.

>>> from transformers import AutoTokenizer  # doctest: +SKIP
>>> ids = load_or_encode(AutoTokenizer.from_pretrained("bert-base-uncased"), ["An abstract."],
...                      cache_dir="/tmp/cache", content_key="demo", max_length=32)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from filelock import FileLock

from medtext.atomic_files import atomic_open

log = logging.getLogger(__name__)
CACHE_FORMAT = "1"
ENCODE_CHUNK = 1024


@dataclass
class TokenizedTexts:
    """Ragged token ids: text ``i`` is ``ids[offsets[i]:offsets[i + 1]]``."""

    ids: np.ndarray
    offsets: np.ndarray
    num_truncated: int

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i]:self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def tokenizer_fingerprint(tokenizer) -> str:
    """A digest of everything that decides which ids a tokenizer produces."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        state.pop("truncation", None)  # left over from the last call, not part of the vocabulary
        state.pop("padding", None)
        digest.update(json.dumps(state, sort_keys=True).encode())
    else:
        digest.update(repr(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(repr(sorted(tokenizer.special_tokens_map.items())).encode())
    return digest.hexdigest()


def cache_key(content_key: str, tokenizer, max_length: int) -> str:
    parts = [CACHE_FORMAT, content_key, tokenizer_fingerprint(tokenizer), str(max_length)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def encode(tokenizer, texts: Sequence[str], max_length: int) -> TokenizedTexts:
    """Tokenize with truncation to ``max_length`` and count the abstracts that were truncated."""
    chunks: list[np.ndarray] = []
    truncated = 0
    for start in range(0, len(texts), ENCODE_CHUNK):
        batch = list(texts[start:start + ENCODE_CHUNK])
        enc = tokenizer(batch, truncation=True, max_length=max_length, return_overflowing_tokens=True,
                        return_attention_mask=False, return_token_type_ids=False)
        mapping = enc.get("overflow_to_sample_mapping", list(range(len(batch))))
        previous, overflowed = -1, False
        for sample, ids in zip(mapping, enc["input_ids"]):
            if sample == previous:  # an overflow window: this text was longer than max_length
                truncated += not overflowed
                overflowed = True
                continue
            previous, overflowed = sample, False
            chunks.append(np.asarray(ids, dtype=np.int32))
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum([len(c) for c in chunks], out=offsets[1:])
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    return TokenizedTexts(ids=ids, offsets=offsets, num_truncated=truncated)


def load_or_encode(tokenizer, texts: Sequence[str], cache_dir: str | Path, content_key: str,
                   max_length: int) -> TokenizedTexts:
    """Return cached ids for these texts, tokenizing (under a file lock) only on a cache miss."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"tokens-{cache_key(content_key, tokenizer, max_length)}.npz"
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            with np.load(path, allow_pickle=False) as stored:
                return TokenizedTexts(stored["ids"], stored["offsets"], int(stored["num_truncated"]))
        tokenized = encode(tokenizer, texts, max_length)
        with atomic_open(path, "wb") as handle:
            np.savez(handle, ids=tokenized.ids, offsets=tokenized.offsets,
                     num_truncated=np.int64(tokenized.num_truncated))
        log.info("tokenized %d texts into %s", len(texts), path)
        return tokenized
