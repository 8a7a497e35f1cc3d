"""How an abstract becomes token ids: one resolved, frozen :class:`TokenizationSpec`. The data module
builds it once; the token cache keys on it, checkpoints record it, and export, ONNX predict and explain
rebuild it from the saved settings, so every command cuts an abstract the way training did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from medtext.core.errors import DataError

from .long_text import LongText, Windows, check_long_text, resolve_windows
from .token_cache import TokenizedTexts, Truncation, check_truncation, encode, token_budget

# the data module settings a spec is made of (as in a config, a checkpoint or an export's settings)
SETTINGS = ("max_length", "truncation", "head_tokens", "long_text", "window_stride", "max_windows")
# position-embedding tables of these model types start after the padding index (RoBERTa: 514 rows, 512 tokens)
PADDING_OFFSET_MODELS = {"roberta", "xlm-roberta", "camembert", "mpnet", "longformer", "data2vec-text"}


@dataclass(frozen=True)
class TokenizationSpec:
    """``max_length`` tokens per sequence, ``budget`` of them the abstract's own (the rest the tokenizer's
    special tokens); a longer abstract is cut by ``truncation`` (``head_tail``: its first ``head_tokens``
    and its end) or, with ``long_text: windows``, into at most ``max_windows`` windows sharing
    ``window_stride`` tokens (resolved: a number)."""

    max_length: int
    budget: int
    truncation: Truncation = "head"
    head_tokens: int = 128
    long_text: LongText = "truncate"
    window_stride: Optional[int] = None
    max_windows: int = 8

    @classmethod
    def resolve(cls, tokenizer, max_length: int = 512, truncation: Truncation = "head", head_tokens: int = 128,
                long_text: LongText = "truncate", window_stride: Optional[int] = None, max_windows: int = 8,
                max_positions: Optional[int] = None) -> "TokenizationSpec":
        """The spec of these settings for ``tokenizer`` (the content-token budget counted, the window
        stride resolved); ``max_length`` above ``max_positions`` (the encoder's, :func:`encoder_positions`)
        is lowered to it, with one line saying so."""
        check_truncation(truncation, head_tokens)
        check_long_text(long_text, window_stride, max_windows, truncation)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise DataError(f"max_length must be a whole number >= 1, not {max_length!r}")
        if max_positions and max_length > max_positions:
            from pytorch_lightning.utilities import rank_zero_info

            rank_zero_info(f"max_length {max_length} is more than the encoder's {max_positions} positions: "
                           f"using max_length {max_positions}")
            max_length = max_positions
        budget = token_budget(tokenizer, max_length)
        if long_text == "windows":
            window_stride = resolve_windows(window_stride, max_windows, budget, max_length).stride
        return cls(max_length, budget, truncation, head_tokens, long_text, window_stride, max_windows)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], tokenizer, encoder_name: Optional[str] = None) -> "TokenizationSpec":
        """The spec a checkpoint's or an export's data settings (:data:`SETTINGS`) describe; with
        ``encoder_name``, ``max_length`` within its positions (as the data module resolved it)."""
        given = {key: settings[key] for key in SETTINGS if settings.get(key) is not None}
        return cls.resolve(tokenizer, **given, max_positions=encoder_positions_of(encoder_name) if encoder_name else None)

    @property
    def windows(self) -> Optional[Windows]:
        """``long_text: windows``'s stride and window cap, else ``None``."""
        return Windows(self.window_stride, self.max_windows) if self.long_text == "windows" else None

    @property
    def kept_head(self) -> int:
        """Content tokens ``head_tail`` keeps from the start of a long abstract (all of them: ``head``)."""
        return min(self.head_tokens, self.budget) if self.truncation == "head_tail" else self.budget

    def key_parts(self) -> list[str]:
        """What a token cache's key holds of the spec. ``head`` adds nothing to ``max_length`` (the key
        of caches written before ``truncation`` existed); ``head_tail`` its head length as used."""
        parts = [str(self.max_length)]
        if self.truncation != "head":
            parts += [self.truncation, str(self.kept_head)]
        if self.windows is not None:
            parts += ["windows", str(self.window_stride), str(self.max_windows)]
        return parts

    def encode(self, tokenizer, texts: Sequence[str], count_truncated: bool = True) -> TokenizedTexts:
        """The token ids of ``texts`` (``data_modules.token_cache.encode``)."""
        return encode(tokenizer, texts, self, count_truncated)

    def describe(self) -> str:
        """What a truncated abstract keeps, for the line ``N of M abstracts truncated to ...``.

        >>> TokenizationSpec(max_length=16, budget=14, truncation="head_tail", head_tokens=4).describe()
        '16 tokens (head_tail: first 4 + last 10)'
        """
        if self.windows is not None:
            return f"{self.max_windows} windows of {self.max_length} tokens (stride {self.window_stride})"
        kept = f" (head_tail: first {self.kept_head} + last {self.budget - self.kept_head})" \
            if self.truncation == "head_tail" else ""
        return f"{self.max_length} tokens{kept}"

    def settings(self) -> dict[str, Any]:
        """The spec as data settings (:data:`SETTINGS`, resolved) plus its ``budget``."""
        return dataclasses.asdict(self)


def encoder_positions_of(encoder_name: str) -> Optional[int]:
    """:func:`encoder_positions` of the encoder ``encoder_name``; ``None`` when its config cannot be read
    (a tokenizer-only name): ``max_length`` is then taken as given."""
    from medtext.core.encoders import load_encoder_config
    from medtext.core.errors import EncoderLoadError

    try:
        return encoder_positions(load_encoder_config(encoder_name))
    except (EncoderLoadError, OSError, ValueError):
        return None


def encoder_positions(encoder_config) -> Optional[int]:
    """The longest sequence an encoder's position embeddings take, from its ``transformers`` config."""
    positions = getattr(encoder_config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions < 1:
        return None
    if getattr(encoder_config, "model_type", "") in PADDING_OFFSET_MODELS:
        positions -= (getattr(encoder_config, "pad_token_id", None) or 0) + 1
    return positions
