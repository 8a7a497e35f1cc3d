"""One resolved TokenizationSpec: built once by the data module, recorded in the checkpoint and the
export, rebuilt from the saved settings by every later command; max_length within the encoder's positions."""

from __future__ import annotations

import logging

import pytest
from transformers import BertConfig, RobertaConfig

from data_helpers import module, spec
from data_modules.long_text import Windows
from data_modules.tokenization import SETTINGS, TokenizationSpec, encoder_positions
from medtext.core.encoders import load_tokenizer


def test_the_data_module_resolves_its_spec_once(tiny_encoder):
    data = module(tiny_encoder, max_length=16, long_text="windows")
    resolved = data.tokenization
    assert resolved is data.tokenization  # one spec per data module
    assert resolved.budget == 14 and resolved.window_stride == 3 and resolved.windows == Windows(3, 8)  # [CLS] + 14 + [SEP]
    assert data.state_dict()["tokenization"] == resolved.settings()  # what the checkpoint records


def test_the_saved_settings_give_back_the_same_spec(tiny_encoder):
    tokenizer = load_tokenizer(tiny_encoder)
    for made in (spec(tokenizer, 16, "head_tail", 5), spec(tokenizer, 16, windows=Windows(4, 2)), spec(tokenizer, 16)):
        saved = made.settings()
        assert set(SETTINGS) < saved.keys() and TokenizationSpec.from_settings(saved, tokenizer) == made


def test_max_length_beyond_the_encoders_positions_is_lowered_with_one_line(tiny_encoder, caplog):
    with caplog.at_level(logging.INFO):
        data = module(tiny_encoder, max_length=4096)
        assert data.tokenization.max_length == 512 and data.tokenization.budget == 510
    lines = [r.getMessage() for r in caplog.records if "max_length" in r.getMessage()]
    assert lines == ["max_length 4096 is more than the encoder's 512 positions: using max_length 512"]


@pytest.mark.parametrize("config, positions", [
    (BertConfig(max_position_embeddings=512), 512),
    (RobertaConfig(max_position_embeddings=514, pad_token_id=1), 512),  # positions start after the padding index
    (BertConfig(max_position_embeddings=128), 128),
])
def test_encoder_positions(config, positions):
    assert encoder_positions(config) == positions


def test_a_bad_max_length_is_one_line(tiny_encoder):
    from medtext.core.errors import DataError

    with pytest.raises(DataError, match="^max_length must be a whole number >= 1, not 0$"):
        _ = module(tiny_encoder, max_length=0).tokenization
