"""Small helpers shared by the data-module test files."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_modules import AbstractsDataModule
from medtext.core.errors import DataError

GOOD = "text,label\nFever and cough.,x\nChest pain at rest.,y\nHeadache and nausea.,x\nItchy rash.,y\n"


def module(tiny_encoder, **kwargs) -> AbstractsDataModule:
    kwargs.setdefault("max_length", 32)
    return AbstractsDataModule(tokenizer_name=tiny_encoder, **kwargs)


def check_message(err: pytest.ExceptionInfo, path: Path, where: str | None = None, contains: str = "") -> str:
    message = str(err.value)
    assert isinstance(err.value, DataError)
    assert "\n" not in message and "\r" not in message, message
    assert message.strip() == message and message
    assert message.startswith(f"{path}: "), message
    if where:
        assert f": {where}: " in message, message
    assert contains in message, message
    return message


def words(n: int) -> str:
    """``n`` copies of a word that the tiny tokenizer maps to exactly one token."""
    return " ".join(["a"] * n)


def text_of(vocabulary: list[str], n: int, shift: int = 0) -> str:
    """``n`` distinct one-token words (the ``vocabulary`` fixture) from ``shift`` on: ``n`` tokens."""
    return " ".join(vocabulary[(i + shift) % len(vocabulary)] for i in range(n))


def spec(tokenizer, max_length: int, truncation: str = "head", head_tokens: int = 128, windows=None):
    """The ``TokenizationSpec`` of these settings (``windows``: a ``data_modules.long_text.Windows``)."""
    from data_modules.tokenization import TokenizationSpec

    if windows is None:
        return TokenizationSpec.resolve(tokenizer, max_length, truncation, head_tokens)
    return TokenizationSpec.resolve(tokenizer, max_length, truncation, head_tokens, "windows", windows.stride,
                                    windows.max_windows)
