"""``attention_dropout``: the encoder's attention-probability dropout, and the attention kernel it selects."""

import functools

import pytest
import torch
from torch.profiler import profile

from medtext import TextClassifier
from medtext.core import encoders
from medtext.core.errors import EncoderLoadError
from medtext.heads import MLPHead

LABELS = ["a", "b", "c"]
HEAD = functools.partial(MLPHead, pooling="cls")


def attention_ops(model: TextClassifier) -> set[str]:
    """Names of the scaled-dot-product attention ops one training forward and backward runs."""
    ids = torch.randint(5, 50, (2, 12))
    with profile() as trace:
        model(ids, torch.ones_like(ids)).sum().backward()
    return {event.key for event in trace.key_averages() if "scaled_dot_product" in event.key}


def test_default_keeps_the_encoders_attention_dropout(tiny_encoder):
    model = TextClassifier(tiny_encoder, LABELS, head=HEAD)
    assert model.encoder.config.attention_probs_dropout_prob == pytest.approx(0.1)


def test_attention_dropout_sets_only_the_attention_dropout(tiny_encoder):
    model = TextClassifier(tiny_encoder, LABELS, head=HEAD, attention_dropout=0.0)
    assert model.encoder.config.attention_probs_dropout_prob == 0.0
    assert model.encoder.config.hidden_dropout_prob == pytest.approx(0.1), "hidden dropout is untouched"
    assert model.encoder.training


def test_zero_attention_dropout_trains_with_the_fused_kernel(tiny_encoder):
    fused = attention_ops(TextClassifier(tiny_encoder, LABELS, head=HEAD, attention_dropout=0.0))
    with_dropout = attention_ops(TextClassifier(tiny_encoder, LABELS, head=HEAD))
    assert any("flash" in op for op in fused), fused
    assert not any("flash" in op for op in with_dropout), with_dropout


def test_out_of_range_attention_dropout_is_refused(tiny_encoder):
    with pytest.raises(ValueError, match=r"attention_dropout must be in \[0, 1\), got 1.5"):
        TextClassifier(tiny_encoder, LABELS, head=HEAD, attention_dropout=1.5)


def test_encoder_without_an_attention_dropout_setting_is_named(tiny_encoder, monkeypatch):
    monkeypatch.setattr(encoders, "ATTENTION_DROPOUT_KEYS", ("no_such_key",))
    with pytest.raises(EncoderLoadError, match="BertConfig.*has none of no_such_key"):
        TextClassifier(tiny_encoder, LABELS, head=HEAD, attention_dropout=0.0)
