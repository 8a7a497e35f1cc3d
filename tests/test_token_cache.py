"""Tokenizing with truncation counts and the on-disk token cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import data_modules.token_cache as token_cache
from conftest import write
from data_helpers import spec, words
from data_modules import AbstractsDataModule
from data_modules.token_cache import cache_key, encode, load_or_encode, tokenizer_fingerprint
from medtext.core.encoders import load_tokenizer

MAX_LENGTH = 16  # [CLS] + 14 words + [SEP]


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder):
    return load_tokenizer(tiny_encoder)


def no_encoding(*args, **kwargs):
    raise AssertionError("encode() was called although the cache should have been used")


def npz_files(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("*.npz"))


# ------------------------------------------------------------------------------------------ encode
def test_single_word_is_one_token(tokenizer):
    assert len(tokenizer(words(5))["input_ids"]) == 7


def test_encode_counts_truncated_texts(tokenizer):
    texts = [words(1), words(14), words(15), words(100), words(3), words(40)]
    tokens = encode(tokenizer, texts, spec(tokenizer, MAX_LENGTH))
    assert len(tokens) == len(texts)
    assert tokens.lengths.tolist() == [3, 16, 16, 16, 5, 16]
    assert tokens.num_truncated == 3  # 15, 100 and 40 words; 14 words fit exactly
    for i, text in enumerate(texts):
        expected = tokenizer(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        assert tokens[i].tolist() == expected
        assert tokens[i][0] == tokenizer.cls_token_id and tokens[i][-1] == tokenizer.sep_token_id
    assert tokens.ids.dtype == np.int32


def test_encode_nothing_truncated(tokenizer):
    tokens = encode(tokenizer, [words(n) for n in range(1, 15)], spec(tokenizer, MAX_LENGTH))
    assert tokens.num_truncated == 0
    assert tokens.lengths.tolist() == [n + 2 for n in range(1, 15)]


def test_encode_across_chunks_matches_single_chunk(tokenizer, monkeypatch):
    texts = [words(n) for n in (20, 2, 30, 14, 15, 1, 50)]
    whole = encode(tokenizer, texts, spec(tokenizer, MAX_LENGTH))
    monkeypatch.setattr(token_cache, "ENCODE_CHUNK", 2)
    chunked = encode(tokenizer, texts, spec(tokenizer, MAX_LENGTH))
    assert np.array_equal(whole.ids, chunked.ids)
    assert np.array_equal(whole.offsets, chunked.offsets)
    assert whole.num_truncated == chunked.num_truncated == 4


def test_encode_empty_list(tokenizer):
    tokens = encode(tokenizer, [], spec(tokenizer, MAX_LENGTH))
    assert len(tokens) == 0 and tokens.num_truncated == 0


# ------------------------------------------------------------------------------------------ cache
def test_load_or_encode_writes_one_file_and_reuses_it(tokenizer, tmp_path, monkeypatch):
    texts = [words(3), words(30), words(10)]
    cache = tmp_path / "tokens"
    first = load_or_encode(tokenizer, texts, cache, "file-digest", spec(tokenizer, MAX_LENGTH))
    assert len(npz_files(cache)) == 1
    assert first.num_truncated == 1

    monkeypatch.setattr(token_cache, "encode", no_encoding)
    second = load_or_encode(tokenizer, texts, cache, "file-digest", spec(tokenizer, MAX_LENGTH))
    assert len(npz_files(cache)) == 1
    assert np.array_equal(first.ids, second.ids)
    assert np.array_equal(first.offsets, second.offsets)
    assert second.num_truncated == 1
    assert [second[i].tolist() for i in range(3)] == [first[i].tolist() for i in range(3)]


def test_no_temporary_files_left_in_cache(tokenizer, tmp_path):
    load_or_encode(tokenizer, [words(3)], tmp_path / "tokens", "k", spec(tokenizer, MAX_LENGTH))
    leftovers = [p.name for p in (tmp_path / "tokens").iterdir() if p.suffix not in (".npz", ".lock")]
    assert leftovers == []


def test_cache_key_changes_with_max_length_and_content(tokenizer, tmp_path, monkeypatch):
    base = cache_key("digest-a", tokenizer, spec(tokenizer, MAX_LENGTH))
    assert cache_key("digest-a", tokenizer, spec(tokenizer, MAX_LENGTH)) == base
    assert cache_key("digest-a", tokenizer, spec(tokenizer, MAX_LENGTH * 2)) != base
    assert cache_key("digest-b", tokenizer, spec(tokenizer, MAX_LENGTH)) != base

    cache = tmp_path / "tokens"
    load_or_encode(tokenizer, [words(30)], cache, "digest-a", spec(tokenizer, MAX_LENGTH))
    longer = load_or_encode(tokenizer, [words(30)], cache, "digest-a", spec(tokenizer, 64))
    assert len(npz_files(cache)) == 2
    assert longer.num_truncated == 0 and longer.lengths.tolist() == [32]


def test_tokenizer_fingerprint_depends_on_vocabulary(tiny_encoder):
    from transformers import BertTokenizerFast

    fresh = load_tokenizer(tiny_encoder)
    assert tokenizer_fingerprint(load_tokenizer(tiny_encoder)) == tokenizer_fingerprint(fresh)
    vocab = dict(fresh.get_vocab())
    vocab["zzzextra"] = len(vocab)
    other = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    assert tokenizer_fingerprint(other) != tokenizer_fingerprint(fresh)
    cased = BertTokenizerFast(vocab=dict(fresh.get_vocab()), do_lower_case=False)
    assert tokenizer_fingerprint(cased) != tokenizer_fingerprint(fresh)




def test_tokenizer_fingerprint_ignores_previous_calls(tiny_encoder):
    tokenizer = load_tokenizer(tiny_encoder)
    before = cache_key("digest", tokenizer, spec(tokenizer, MAX_LENGTH))
    encode(tokenizer, [words(3)], spec(tokenizer, MAX_LENGTH))
    assert cache_key("digest", tokenizer, spec(tokenizer, MAX_LENGTH)) == before


def test_test_file_tokenized_during_fit_is_reused_by_a_later_test_run(tiny_encoder, tmp_path, monkeypatch):
    """``fit`` tokenizes train, then test; a later ``test`` run (fresh tokenizer) should hit the cache."""
    train = write(tmp_path / "train.csv", TRAIN)
    test = write(tmp_path / "test.csv", "text,label\n" + "".join(f"{words(n)},{'xy'[n % 2]}\n" for n in range(1, 9)))
    make_module(tiny_encoder, train, test_file=str(test)).prepare_data()
    assert len(npz_files(tmp_path / "cache")) == 2
    monkeypatch.setattr(token_cache, "encode", no_encoding)
    later = AbstractsDataModule(test_file=str(test), label_map={"x": "x", "y": "y"}, tokenizer_name=tiny_encoder,
                                max_length=MAX_LENGTH)
    later.prepare_data()
    assert len(npz_files(tmp_path / "cache")) == 2


def make_module(tiny_encoder, train: Path, **kwargs) -> AbstractsDataModule:
    return AbstractsDataModule(train_file=str(train), tokenizer_name=tiny_encoder, max_length=MAX_LENGTH,
                               batch_size=4, **kwargs)


TRAIN = "text,label\n" + "".join(f"{words(n)},{'xy'[n % 2]}\n" for n in (2, 5, 20, 9, 30, 3, 12, 16))


def test_data_module_caches_tokens_by_file_content(tiny_encoder, tmp_path, monkeypatch):
    train = write(tmp_path / "train.csv", TRAIN)
    cache = tmp_path / "cache"  # MEDTEXT_CACHE_DIR, set by the isolated_cache fixture
    module = make_module(tiny_encoder, train)
    module.prepare_data()
    assert module.cache_dir == str(cache)
    assert len(npz_files(cache)) == 1
    tokens = module.load_split("train")["tokens"]
    assert tokens.num_truncated == 3  # 20, 30 and 16 words; 12 words + 2 special tokens fit in 16

    # an unchanged file in a fresh module is served from the cache
    with monkeypatch.context() as patch:
        patch.setattr(token_cache, "encode", no_encoding)
        again = make_module(tiny_encoder, train)
        again.prepare_data()
        assert np.array_equal(again.load_split("train")["tokens"].ids, tokens.ids)

    # edited content -> new key; other max_length -> new key
    write(train, TRAIN.replace("x\n", "y\n", 1))
    make_module(tiny_encoder, train).prepare_data()
    assert len(npz_files(cache)) == 2
    AbstractsDataModule(train_file=str(train), tokenizer_name=tiny_encoder, max_length=32).prepare_data()
    assert len(npz_files(cache)) == 3


def test_data_module_text_column_is_part_of_the_key(tiny_encoder, tmp_path):
    train = write(tmp_path / "train.csv", "a,b,label\n" + "".join(
        f"{words(n)},{words(n + 1)},{'xy'[n % 2]}\n" for n in range(1, 7)))
    first = make_module(tiny_encoder, train, text_column="a")
    second = make_module(tiny_encoder, train, text_column="b")
    first.prepare_data()
    second.prepare_data()
    assert len(npz_files(tmp_path / "cache")) == 2
    lengths_a = first.load_split("train")["tokens"].lengths
    lengths_b = second.load_split("train")["tokens"].lengths
    assert np.array_equal(lengths_b, lengths_a + 1)
