"""``truncation: head_tail`` keeps a long abstract's first ``head_tokens`` and its end (Sun et al., 2019)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run, tiny_config
from conftest import write

from data_modules import AbstractsDataModule
from data_modules.corpus import CorpusBatches
from data_modules.token_cache import (
    CACHE_FORMAT,
    cache_key,
    encode,
    head_tail_ids,
    special_prefix,
    tokenizer_fingerprint,
)
from medtext.core.errors import DataError

from data_helpers import spec, text_of

MAX_LENGTH = 16  # [CLS] + 14 content tokens + [SEP]


def test_head_tail_keeps_first_head_tokens_and_the_end(tokenizer, vocabulary):
    text = text_of(vocabulary, 50)
    content = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(content) == 50 and len(set(content)) == 50
    tokens = encode(tokenizer, [text], spec(tokenizer, MAX_LENGTH, "head_tail", head_tokens=5))
    kept = tokens[0].tolist()
    assert kept == [tokenizer.cls_token_id, *content[:5], *content[-9:], tokenizer.sep_token_id]
    assert tokens.num_truncated == 1 and len(kept) == MAX_LENGTH
    full = tokenizer(text)["input_ids"]  # the tokenizer's own special tokens, where it puts them
    assert kept == full[:6] + full[-10:]
    head = encode(tokenizer, [text], spec(tokenizer, MAX_LENGTH))
    assert head[0].tolist() == [tokenizer.cls_token_id, *content[:14], tokenizer.sep_token_id]


@pytest.mark.parametrize("head_tokens, expected_head", [(0, 0), (14, 14), (100, 14)])
def test_head_tokens_edge_values(tokenizer, vocabulary, head_tokens, expected_head):
    content = tokenizer(text_of(vocabulary, 30), add_special_tokens=False)["input_ids"]
    kept = encode(tokenizer, [text_of(vocabulary, 30)], spec(tokenizer, MAX_LENGTH, "head_tail", head_tokens))[0].tolist()
    tail = 14 - expected_head
    assert kept[1:-1] == content[:expected_head] + (content[-tail:] if tail else [])


def test_short_texts_are_identical_to_head(tokenizer, vocabulary):
    texts = [text_of(vocabulary, n, shift=n) for n in (1, 5, 13, 14, 15, 40, 3)]
    head = encode(tokenizer, texts, spec(tokenizer, MAX_LENGTH))
    head_tail = encode(tokenizer, texts, spec(tokenizer, MAX_LENGTH, "head_tail", 4))
    assert head.num_truncated == head_tail.num_truncated == 2
    assert head.lengths.tolist() == head_tail.lengths.tolist()
    for i in (0, 1, 2, 3, 6):
        assert head_tail[i].tolist() == head[i].tolist()
    assert head_tail[4].tolist() != head[4].tolist()  # 15 tokens: the 15th replaces the 14th


def test_cache_keys_differ_between_modes(tokenizer):
    head = cache_key("digest", tokenizer, spec(tokenizer, MAX_LENGTH))
    assert cache_key("digest", tokenizer, spec(tokenizer, MAX_LENGTH, "head", 7)) == head  # head ignores head_tokens
    keys = {head, cache_key("digest", tokenizer, spec(tokenizer, MAX_LENGTH, "head_tail", 4)),
            cache_key("digest", tokenizer, spec(tokenizer, MAX_LENGTH, "head_tail", 5))}
    assert len(keys) == 3
    old = hashlib.sha256("\0".join([CACHE_FORMAT, "digest", tokenizer_fingerprint(tokenizer), str(MAX_LENGTH)])
                         .encode()).hexdigest()[:32]
    assert head == old  # caches written before ``truncation`` existed stay valid for head


@pytest.mark.parametrize("kwargs, message", [({"head_tokens": -1}, "head_tokens must be a whole number >= 0"),
                                             ({"truncation": "tail"}, "truncation must be one of head, head_tail")])
def test_bad_settings_stop_with_one_line(tiny_encoder, kwargs, message):
    with pytest.raises(DataError, match=message) as err:
        AbstractsDataModule(tokenizer_name=tiny_encoder, **kwargs)
    assert "\n" not in str(err.value)


def test_head_tail_ids_keeps_specials_in_place(tokenizer):
    assert special_prefix(tokenizer) == 1 and tokenizer.num_special_tokens_to_add() == 2
    assert head_tail_ids([2, 7, 8, 9, 3], 14, 5, 1, 2) == [2, 7, 8, 9, 3]  # fits: unchanged
    assert head_tail_ids([2, *range(10, 30), 3], 4, 1, 1, 2) == [2, 10, 27, 28, 29, 3]
    assert head_tail_ids([0, 1, *range(10, 30), 9], 3, 2, 2, 3) == [0, 1, 10, 11, 29, 9]  # other layouts


def test_fit_and_config_free_predict_use_head_tail(tiny_encoder, vocabulary, tokenizer, tmp_path):
    rows = [(text_of(vocabulary, 10 + 7 * i, shift=i), "xy"[i % 2]) for i in range(24)]
    train = tmp_path / "train.csv"
    with open(train, "w", newline="") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows])
    config = tiny_config(tmp_path / "fit.yaml", tiny_encoder, {"train_file": str(train), "max_length": MAX_LENGTH})
    cli = run("fit", "--config", str(config), "--data.truncation", "head_tail", "--data.head_tokens", "4")
    assert cli.datamodule.truncation == "head_tail"
    fitted = cli.datamodule.datasets["train"].tokens
    expected = encode(tokenizer, [t for t, _ in rows], spec(tokenizer, MAX_LENGTH, "head_tail", 4))
    assert np.array_equal(fitted.ids, expected.ids) and fitted.num_truncated == 23  # all but 10 words

    checkpoint = Path(cli.trainer.checkpoint_callback.best_model_path)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)["datamodule_hyper_parameters"]
    assert saved["truncation"] == "head_tail" and saved["head_tokens"] == 4

    texts = [text_of(vocabulary, 40, shift=3), text_of(vocabulary, 5)]
    predict_file = write(tmp_path / "new.csv", "text\n" + "".join(f"{t}\n" for t in texts))
    out = tmp_path / "predictions.csv"
    predicted = run("predict", "--ckpt_path", str(checkpoint), "--data.predict_file", str(predict_file),
                    "--predictions.output_file", str(out))
    assert predicted.datamodule.hparams["truncation"] == "head_tail"
    streamed = CorpusBatches(predicted.datamodule.predict_source(), predicted.datamodule.tokenization, tokenizer)
    batches = [b for b in streamed if len(b["index"])]
    ids = {int(i): row[mask.bool()].tolist() for b in batches
           for i, row, mask in zip(b["index"], b["input_ids"], b["attention_mask"])}
    expected = encode(tokenizer, texts, spec(tokenizer, MAX_LENGTH, "head_tail", 4))
    assert [ids[0], ids[1]] == [expected.sequence(0).tolist(), expected.sequence(1).tolist()]
    assert len(out.read_text().splitlines()) == 3


def test_the_length_warning_flag_that_full_tokenizations_set_exists(tokenizer):
    """token_cache.silence_length_warning sets a transformers internal: fail loudly if it moves."""
    from data_modules.token_cache import silence_length_warning

    assert isinstance(tokenizer.deprecation_warnings, dict)
    silence_length_warning(tokenizer)
    assert tokenizer.deprecation_warnings["sequence-length-is-longer-than-the-specified-maximum"] is True
