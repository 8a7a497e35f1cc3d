"""Tokenize abstracts once and cache the token ids on disk, keyed so that an edited file, another
tokenizer or another truncation never reuses stale ids.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional, Sequence

import numpy as np
from filelock import FileLock

from medtext.core.atomic_files import atomic_open
from medtext.core.errors import DataError

from .long_text import window_ids

if TYPE_CHECKING:
    from .tokenization import TokenizationSpec

log = logging.getLogger(__name__)
CACHE_FORMAT = "1"
ENCODE_CHUNK = 1024
Truncation = Literal["head", "head_tail"]
TRUNCATIONS = ("head", "head_tail")


def default_cache_dir() -> str:
    """The token cache's (and medtext's) cache root: ``$MEDTEXT_CACHE_DIR`` or ``~/.cache/medtext``."""
    return os.environ.get("MEDTEXT_CACHE_DIR", str(Path.home() / ".cache" / "medtext"))


@dataclass
class TokenizedTexts:
    """Ragged token ids: sequence ``j`` is ``ids[offsets[j]:offsets[j + 1]]``. Without ``windows``,
    text ``i`` is sequence ``i``; with them (``long_text: windows``), text ``i`` is the list of its
    window sequences ``windows[i]`` up to ``windows[i + 1]``."""

    ids: np.ndarray
    offsets: np.ndarray
    num_truncated: int
    windows: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.offsets if self.windows is None else self.windows) - 1

    def sequence(self, j: int) -> np.ndarray:
        return self.ids[self.offsets[j]:self.offsets[j + 1]]

    def __getitem__(self, i: int) -> np.ndarray | list[np.ndarray]:
        if self.windows is None:
            return self.sequence(i)
        return [self.sequence(j) for j in range(self.windows[i], self.windows[i + 1])]

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per text (with windows: summed over its windows, so longer texts sort later)."""
        return np.diff(self.offsets if self.windows is None else self.offsets[self.windows])


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


def check_truncation(truncation: str, head_tokens: int) -> None:
    """One line for a truncation that is not ``head``/``head_tail`` or a negative ``head_tokens``."""
    if truncation not in TRUNCATIONS:
        raise DataError(f"truncation must be one of {', '.join(TRUNCATIONS)}, not {truncation!r}")
    if isinstance(head_tokens, bool) or not isinstance(head_tokens, int) or head_tokens < 0:
        raise DataError(f"head_tokens must be a whole number >= 0, not {head_tokens!r}")


def token_budget(tokenizer, max_length: int) -> int:
    """Content tokens that fit in ``max_length`` next to the tokenizer's special tokens."""
    return max(max_length - tokenizer.num_special_tokens_to_add(), 0)


def cache_key(content_key: str, tokenizer, spec: TokenizationSpec) -> str:
    """The file's content (``content_key``: its bytes and text column), the tokenizer (vocabulary,
    normaliser and special tokens: :func:`tokenizer_fingerprint`) and the spec's
    :meth:`~data_modules.tokenization.TokenizationSpec.key_parts` (max length, truncation, windows)."""
    parts = [CACHE_FORMAT, content_key, tokenizer_fingerprint(tokenizer), *spec.key_parts()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def special_prefix(tokenizer) -> int:
    """How many of the tokenizer's special tokens come before the text (BERT's ``[CLS]``: 1)."""
    mask = tokenizer("a", return_special_tokens_mask=True)["special_tokens_mask"]
    return next((i for i, special in enumerate(mask) if not special), len(mask))


def head_tail_ids(full: Sequence[int], budget: int, head_tokens: int, prefix: int, specials: int) -> list[int]:
    """From a text's untruncated ids (special tokens included, ``prefix`` of its ``specials`` before
    the text), keep the specials in place, the first ``head_tokens`` content ids and the last
    ``budget - head_tokens`` (Sun et al., 2019: head 128 + tail 382 at 512)."""
    full = list(full)
    end = len(full) - (specials - prefix)
    content = full[prefix:end]
    if len(content) > budget:
        head = min(head_tokens, budget)
        content = content[:head] + content[len(content) - (budget - head):]
    return full[:prefix] + content + full[end:]


def ragged(chunks: list[np.ndarray], truncated: int, windows: Optional[np.ndarray] = None) -> TokenizedTexts:
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum([len(c) for c in chunks], out=offsets[1:])
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    return TokenizedTexts(ids=ids, offsets=offsets, num_truncated=truncated, windows=windows)


def silence_length_warning(tokenizer) -> None:
    """No "longer than the specified maximum" warning: for full tokenizations that are cut before any
    model sees them (an internal of transformers: its once-only warning flags; tests/test_truncation.py
    checks the dict is there)."""
    getattr(tokenizer, "deprecation_warnings", {})["sequence-length-is-longer-than-the-specified-maximum"] = True


def full_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    """Untruncated ids, special tokens included; they are cut afterwards, never fed to a model as they are."""
    silence_length_warning(tokenizer)
    return tokenizer(texts, truncation=False, return_attention_mask=False, return_token_type_ids=False)["input_ids"]


def encode_windows(tokenizer, texts: Sequence[str], spec: TokenizationSpec) -> TokenizedTexts:
    """``long_text: windows``: tokenize each text once, in full, and cut it into windows
    (:func:`data_modules.long_text.window_ids`); count the texts with more than ``max_windows``."""
    budget, prefix, windows = spec.budget, special_prefix(tokenizer), spec.windows
    specials = tokenizer.num_special_tokens_to_add()
    chunks: list[np.ndarray] = []
    counts, truncated = [0], 0
    for start in range(0, len(texts), ENCODE_CHUNK):
        for ids in full_ids(tokenizer, list(texts[start:start + ENCODE_CHUNK])):
            cut = window_ids(ids, budget, windows.stride, prefix, specials, windows.max_windows + 1)
            truncated += len(cut) > windows.max_windows
            chunks += [np.asarray(window, dtype=np.int32) for window in cut[:windows.max_windows]]
            counts.append(min(len(cut), windows.max_windows))
    return ragged(chunks, truncated, np.cumsum(counts, dtype=np.int64))


def encode(tokenizer, texts: Sequence[str], spec: TokenizationSpec, count_truncated: bool = True) -> TokenizedTexts:
    """Tokenize with truncation to ``spec.max_length`` and count the abstracts that were truncated.

    ``head`` keeps the start of a long abstract; ``head_tail`` its first ``head_tokens`` and its end
    (same length). Abstracts that fit are tokenized identically by both. With windows, see
    :func:`encode_windows`. Without ``count_truncated`` (a streamed predict says no count), ``head``
    is one plain tokenizer call: counting asks the tokenizer for every overflow window too."""
    if spec.windows is not None:
        return encode_windows(tokenizer, texts, spec)
    if not count_truncated and spec.truncation == "head":
        enc = tokenizer(list(texts), truncation=True, max_length=spec.max_length, return_attention_mask=False,
                        return_token_type_ids=False)
        return ragged([np.asarray(ids, dtype=np.int32) for ids in enc["input_ids"]], 0)
    chunks: list[np.ndarray] = []
    truncated = 0
    max_length, budget = spec.max_length, spec.budget
    for start in range(0, len(texts), ENCODE_CHUNK):
        batch = list(texts[start:start + ENCODE_CHUNK])
        enc = tokenizer(batch, truncation=True, max_length=max_length, return_overflowing_tokens=True,
                        return_attention_mask=False, return_token_type_ids=False)
        mapping = enc.get("overflow_to_sample_mapping", list(range(len(batch))))
        previous, overflowed = -1, False
        long_rows: list[int] = []  # positions in ``chunks`` of this batch's truncated abstracts
        for sample, ids in zip(mapping, enc["input_ids"]):
            if sample == previous:  # an overflow window: this text was longer than max_length
                truncated += not overflowed
                if not overflowed:
                    long_rows.append(len(chunks) - 1)
                overflowed = True
                continue
            previous, overflowed = sample, False
            chunks.append(np.asarray(ids, dtype=np.int32))
        if spec.truncation == "head_tail" and long_rows:  # re-tokenize only the long ones, in full
            first, prefix = len(chunks) - len(batch), special_prefix(tokenizer)
            specials = tokenizer.num_special_tokens_to_add()
            for row, ids in zip(long_rows, full_ids(tokenizer, [batch[row - first] for row in long_rows])):
                kept = head_tail_ids(ids, budget, spec.head_tokens, prefix, specials)
                chunks[row] = np.asarray(kept, dtype=np.int32)
    return ragged(chunks, truncated)


def load_or_encode(tokenizer, texts: Sequence[str], cache_dir: str | Path, content_key: str,
                   spec: TokenizationSpec) -> TokenizedTexts:
    """Return cached ids for these texts, tokenizing (under a file lock) only on a cache miss.

    The ids are stored ragged (:class:`TokenizedTexts`: one flat ``int32`` array plus offsets; with
    windows, one sequence per window plus each text's first window) in an ``.npz`` written atomically.

    >>> from transformers import AutoTokenizer  # doctest: +SKIP
    >>> tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")  # doctest: +SKIP
    >>> ids = load_or_encode(tokenizer, ["An abstract."], cache_dir="/tmp/cache", content_key="demo",
    ...                      spec=TokenizationSpec.resolve(tokenizer, max_length=32))  # doctest: +SKIP
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(content_key, tokenizer, spec)
    path = cache_dir / f"tokens-{key}.npz"
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            with np.load(path, allow_pickle=False) as stored:
                return TokenizedTexts(stored["ids"], stored["offsets"], int(stored["num_truncated"]),
                                      stored["windows"] if "windows" in stored.files else None)
        tokenized = encode(tokenizer, texts, spec)
        extra = {} if tokenized.windows is None else {"windows": tokenized.windows}
        with atomic_open(path, "wb") as handle:
            np.savez(handle, ids=tokenized.ids, offsets=tokenized.offsets,
                     num_truncated=np.int64(tokenized.num_truncated), **extra)
        log.info("tokenized %d texts into %s", len(texts), path)
        return tokenized
