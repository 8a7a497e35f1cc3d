"""``long_text: windows``: an abstract longer than ``max_length`` becomes overlapping windows, each a
well-formed sequence of at most ``max_length`` tokens (the tokenizer's special tokens in place, BERT:
``[CLS] ... [SEP]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from medtext.core.errors import DataError

LongText = Literal["truncate", "windows"]
LONG_TEXTS = ("truncate", "windows")


@dataclass(frozen=True)
class Windows:
    """Resolved ``long_text: windows`` settings: ``stride`` content tokens shared by consecutive
    windows (as Hugging Face's ``stride``), at most ``max_windows`` windows per abstract (the tokens
    beyond are dropped, and the abstract counts as truncated)."""

    stride: int
    max_windows: int


def _whole(value, least: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= least


def check_long_text(long_text: str, window_stride: int | None, max_windows: int, truncation: str) -> None:
    """One line for a bad ``long_text``, ``window_stride`` or ``max_windows`` (checked without the
    tokenizer; :func:`resolve_windows` checks the stride against the window size)."""
    if long_text not in LONG_TEXTS:
        raise DataError(f"long_text must be one of {', '.join(LONG_TEXTS)}, not {long_text!r}")
    if window_stride is not None and not _whole(window_stride, 0):
        raise DataError(f"window_stride must be a whole number >= 0, not {window_stride!r}")
    if not _whole(max_windows, 1):
        raise DataError(f"max_windows must be a whole number >= 1, not {max_windows!r}")
    if long_text == "windows" and truncation != "head":
        raise DataError(f"truncation: {truncation} is for long_text: truncate; long_text: windows keeps "
                        "an abstract's first max_windows windows (use truncation: head)")


def resolve_windows(window_stride: int | None, max_windows: int, budget: int, max_length: int) -> Windows:
    """The windows of ``budget`` content tokens (``max_length`` minus the special tokens); the default
    stride (``None``) is a quarter of them. A stride must leave each window a new token."""
    stride = budget // 4 if window_stride is None else window_stride
    if not 0 <= stride < budget:
        raise DataError(f"window_stride must be >= 0 and below the {budget} content tokens of a window "
                        f"(max_length {max_length} minus the special tokens), not {stride}")
    return Windows(stride, max_windows)


def window_ids(full: Sequence[int], budget: int, stride: int, prefix: int, specials: int,
               max_windows: int | None = None) -> list[list[int]]:
    """The windows of a text's full ids (``prefix`` of its ``specials`` special tokens before the
    text): content windows of ``budget`` tokens starting every ``budget - stride`` tokens, until one
    reaches the end (the last may be shorter), each wrapped in the specials; at most ``max_windows``
    (pass ``max_windows + 1`` to learn whether some were dropped). A text that fits: one window, its
    ids unchanged. Cut from the full ids, so the tokenizer runs once per text.

    >>> window_ids([101, 1, 2, 3, 4, 5, 102], budget=3, stride=1, prefix=1, specials=2)
    [[101, 1, 2, 3, 102], [101, 3, 4, 5, 102]]
    """
    full = list(full)
    end = len(full) - (specials - prefix)
    head, content, tail = full[:prefix], full[prefix:end], full[end:]
    starts = range(0, max(len(content) - stride, 1), budget - stride)
    if max_windows is not None:
        starts = starts[:max_windows]
    return [head + content[start:start + budget] + tail for start in starts]

