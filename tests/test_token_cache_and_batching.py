"""Tokenizing with truncation counts, the on-disk token cache, dynamic padding and length bucketing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import data_modules.token_cache as token_cache
from conftest import write
from data_modules import AbstractsDataModule
from data_modules.batching import EncodedAbstracts, PadCollator
from data_modules.sampling import TrainingSampler
from data_modules.token_cache import TokenizedTexts, cache_key, encode, load_or_encode, tokenizer_fingerprint
from medtext.encoders import load_tokenizer

MAX_LENGTH = 16  # [CLS] + 14 words + [SEP]


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder):
    return load_tokenizer(tiny_encoder)


def words(n: int) -> str:
    """``n`` copies of a word that the tiny tokenizer maps to exactly one token."""
    return " ".join(["a"] * n)


def no_encoding(*args, **kwargs):
    raise AssertionError("encode() was called although the cache should have been used")


def npz_files(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("*.npz"))


# ------------------------------------------------------------------------------------------ encode
def test_single_word_is_one_token(tokenizer):
    assert len(tokenizer(words(5))["input_ids"]) == 7


def test_encode_counts_truncated_texts(tokenizer):
    texts = [words(1), words(14), words(15), words(100), words(3), words(40)]
    tokens = encode(tokenizer, texts, MAX_LENGTH)
    assert len(tokens) == len(texts)
    assert tokens.lengths.tolist() == [3, 16, 16, 16, 5, 16]
    assert tokens.num_truncated == 3  # 15, 100 and 40 words; 14 words fit exactly
    for i, text in enumerate(texts):
        expected = tokenizer(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        assert tokens[i].tolist() == expected
        assert tokens[i][0] == tokenizer.cls_token_id and tokens[i][-1] == tokenizer.sep_token_id
    assert tokens.ids.dtype == np.int32


def test_encode_nothing_truncated(tokenizer):
    tokens = encode(tokenizer, [words(n) for n in range(1, 15)], MAX_LENGTH)
    assert tokens.num_truncated == 0
    assert tokens.lengths.tolist() == [n + 2 for n in range(1, 15)]


def test_encode_across_chunks_matches_single_chunk(tokenizer, monkeypatch):
    texts = [words(n) for n in (20, 2, 30, 14, 15, 1, 50)]
    whole = encode(tokenizer, texts, MAX_LENGTH)
    monkeypatch.setattr(token_cache, "ENCODE_CHUNK", 2)
    chunked = encode(tokenizer, texts, MAX_LENGTH)
    assert np.array_equal(whole.ids, chunked.ids)
    assert np.array_equal(whole.offsets, chunked.offsets)
    assert whole.num_truncated == chunked.num_truncated == 4


def test_encode_empty_list(tokenizer):
    tokens = encode(tokenizer, [], MAX_LENGTH)
    assert len(tokens) == 0 and tokens.num_truncated == 0


# ------------------------------------------------------------------------------------------ cache
def test_load_or_encode_writes_one_file_and_reuses_it(tokenizer, tmp_path, monkeypatch):
    texts = [words(3), words(30), words(10)]
    cache = tmp_path / "tokens"
    first = load_or_encode(tokenizer, texts, cache, "file-digest", MAX_LENGTH)
    assert len(npz_files(cache)) == 1
    assert first.num_truncated == 1

    monkeypatch.setattr(token_cache, "encode", no_encoding)
    second = load_or_encode(tokenizer, texts, cache, "file-digest", MAX_LENGTH)
    assert len(npz_files(cache)) == 1
    assert np.array_equal(first.ids, second.ids)
    assert np.array_equal(first.offsets, second.offsets)
    assert second.num_truncated == 1
    assert [second[i].tolist() for i in range(3)] == [first[i].tolist() for i in range(3)]


def test_no_temporary_files_left_in_cache(tokenizer, tmp_path):
    load_or_encode(tokenizer, [words(3)], tmp_path / "tokens", "k", MAX_LENGTH)
    leftovers = [p.name for p in (tmp_path / "tokens").iterdir() if p.suffix not in (".npz", ".lock")]
    assert leftovers == []


def test_cache_key_changes_with_max_length_and_content(tokenizer, tmp_path, monkeypatch):
    base = cache_key("digest-a", tokenizer, MAX_LENGTH)
    assert cache_key("digest-a", tokenizer, MAX_LENGTH) == base
    assert cache_key("digest-a", tokenizer, MAX_LENGTH * 2) != base
    assert cache_key("digest-b", tokenizer, MAX_LENGTH) != base

    cache = tmp_path / "tokens"
    load_or_encode(tokenizer, [words(30)], cache, "digest-a", MAX_LENGTH)
    longer = load_or_encode(tokenizer, [words(30)], cache, "digest-a", 64)
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
    before = cache_key("digest", tokenizer, MAX_LENGTH)
    encode(tokenizer, [words(3)], MAX_LENGTH)
    assert cache_key("digest", tokenizer, MAX_LENGTH) == before


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


# ------------------------------------------------------------------------------------------ datasets
def ragged(lengths: list[int]) -> TokenizedTexts:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.arange(1, offsets[-1] + 1, dtype=np.int32)  # never 0, the pad id below
    return TokenizedTexts(ids=ids, offsets=offsets, num_truncated=0)


def test_encoded_abstracts_subset_keeps_row_index():
    tokens = ragged([3, 5, 2, 4])
    dataset = EncodedAbstracts(tokens, np.array([0, 1, 1, 0]), indices=np.array([3, 1]))
    assert len(dataset) == 2
    assert dataset.lengths.tolist() == [4, 5]
    item = dataset[0]
    assert item["index"] == 3 and item["labels"] == 0
    assert item["input_ids"].tolist() == tokens[3].tolist()
    assert "labels" not in EncodedAbstracts(tokens)[0]


# ------------------------------------------------------------------------------------------ padding
def test_pad_collator_pads_to_batch_max():
    tokens = ragged([3, 7, 1])
    dataset = EncodedAbstracts(tokens, np.array([2, 0, 1]))
    batch = PadCollator(pad_token_id=0)([dataset[i] for i in range(3)])
    assert batch["input_ids"].shape == (3, 7)
    assert batch["input_ids"].dtype == torch.long and batch["attention_mask"].dtype == torch.long
    assert batch["attention_mask"].sum(dim=1).tolist() == [3, 7, 1]
    for row, length in enumerate([3, 7, 1]):
        assert batch["input_ids"][row, :length].tolist() == tokens[row].tolist()
        assert batch["attention_mask"][row, :length].eq(1).all()
        assert batch["input_ids"][row, length:].eq(0).all()
        assert batch["attention_mask"][row, length:].eq(0).all()
    assert batch["labels"].tolist() == [2, 0, 1]
    assert batch["index"].tolist() == [0, 1, 2]


def test_pad_collator_uses_pad_token_id():
    batch = PadCollator(pad_token_id=99)([{"input_ids": np.array([5, 6]), "index": 4},
                                          {"input_ids": np.array([7]), "index": 9}])
    assert batch["input_ids"].tolist() == [[5, 6], [7, 99]]
    assert batch["attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert "labels" not in batch


@pytest.mark.parametrize("longest, multiple, width", [(5, 8, 8), (8, 8, 8), (9, 8, 16), (1, 4, 4), (6, None, 6)])
def test_pad_to_multiple_of(longest, multiple, width):
    items = [{"input_ids": np.arange(1, longest + 1), "index": 0}, {"input_ids": np.array([1]), "index": 1}]
    batch = PadCollator(pad_token_id=0, pad_to_multiple_of=multiple)(items)
    assert batch["input_ids"].shape == (2, width)
    assert batch["attention_mask"].sum(dim=1).tolist() == [longest, 1]


def test_multilabel_labels_are_stacked():
    items = [{"input_ids": np.array([1, 2]), "index": 0, "labels": np.array([1, 0, 1], dtype=np.float32)},
             {"input_ids": np.array([3]), "index": 1, "labels": np.array([0, 0, 1], dtype=np.float32)}]
    batch = PadCollator(pad_token_id=0)(items)
    assert batch["labels"].shape == (2, 3)
    assert batch["labels"].tolist() == [[1, 0, 1], [0, 0, 1]]


# ------------------------------------------------------------------------------------------ bucketing
LENGTHS = np.random.default_rng(0).integers(1, 512, size=2000)


def batches_of(order: list[int], batch_size: int) -> list[np.ndarray]:
    return [np.asarray(order[i:i + batch_size]) for i in range(0, len(order), batch_size)]


def mean_spread(order: list[int], batch_size: int) -> float:
    return float(np.mean([np.ptp(LENGTHS[b]) for b in batches_of(order, batch_size)]))


def bucketed(lengths, batch_size=16, seed=0, **kwargs) -> TrainingSampler:
    return TrainingSampler(lengths, batch_size, bucket_by_length=True, seed=seed, **kwargs)


def test_sampler_yields_a_permutation_every_epoch():
    sampler = bucketed(LENGTHS, bucket_factor=10)
    assert len(sampler) == len(LENGTHS)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        epochs.append(list(sampler))
    for order in epochs:
        assert sorted(order) == list(range(len(LENGTHS)))
        assert all(isinstance(i, int) for i in order[:10])
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2] and epochs[0] != epochs[2]
    sampler.set_epoch(1)
    assert list(sampler) == epochs[1], "an epoch's order depends only on (seed, epoch)"


def test_sampler_is_seeded_and_follows_set_epoch():
    first, second, other = bucketed(LENGTHS, seed=3), bucketed(LENGTHS, seed=3), bucketed(LENGTHS, seed=4)
    order = list(first)
    assert order == list(second)
    assert order != list(other)
    first.set_epoch(5)
    second.set_epoch(5)
    assert list(first) == list(second) != order


def test_sampler_batches_have_similar_lengths():
    batch_size = 16
    sampler = bucketed(LENGTHS, batch_size, bucket_factor=20)
    spread = mean_spread(list(sampler), batch_size)
    random = mean_spread(np.random.default_rng(1).permutation(len(LENGTHS)).tolist(), batch_size)
    assert spread < 0.1 * random, (spread, random)
    unbucketed = TrainingSampler(LENGTHS, batch_size, bucket_by_length=False, seed=0)
    assert mean_spread(list(unbucketed), batch_size) > 0.5 * random


def test_sampler_batch_order_is_shuffled():
    """Batches are not served longest first: the first batches are not all the longest ones."""
    batch_size = 16
    order = list(bucketed(LENGTHS, batch_size, bucket_factor=20))
    means = [LENGTHS[b].mean() for b in batches_of(order, batch_size)]
    assert not all(a >= b for a, b in zip(means, means[1:]))
    assert abs(np.corrcoef(np.arange(len(means)), means)[0, 1]) < 0.5


def test_sampler_handles_fewer_rows_than_a_batch():
    assert sorted(bucketed(np.array([3, 1, 2]))) == [0, 1, 2]


def test_sampler_shards_across_ranks_and_keeps_buckets():
    ranks = [bucketed(LENGTHS[:1001], 8, num_replicas=3, rank=r) for r in range(3)]
    shards = [list(s) for s in ranks]
    assert all(len(shard) == len(s) == 334 for shard, s in zip(shards, ranks))
    covered = sorted(i for shard in shards for i in shard)
    assert set(covered) == set(range(1001)) and len(covered) == 1002  # one repeat evens out the ranks
    assert mean_spread(shards[0], 8) < 0.2 * mean_spread(np.random.default_rng(1).permutation(1001).tolist(), 8)


def test_sampler_resumes_mid_epoch():
    sampler = bucketed(LENGTHS, 16)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.skip_on_resume(epoch=2, samples=5 * 16)
    assert list(sampler) == full[80:]
    assert list(sampler) == full, "the skip applies to one pass only"
    sampler.skip_on_resume(epoch=1, samples=16)
    assert list(sampler) == full, "a skip saved in another epoch does not apply"


def test_train_loader_with_bucketing_pads_per_batch(tiny_encoder, tmp_path):
    rows = [(n, "xy"[n % 2]) for n in range(1, 41)]
    train = write(tmp_path / "train.csv", "text,label\n" + "".join(f"{words(n)},{label}\n" for n, label in rows))
    module = AbstractsDataModule(train_file=str(train), tokenizer_name=tiny_encoder, max_length=64, batch_size=4,
                                 bucket_by_length=True, pad_to_multiple_of=4, val_fraction=0.2)
    module.prepare_data()
    module.setup("fit")
    loader = module.train_dataloader()
    assert isinstance(loader.sampler, TrainingSampler) and loader.sampler.bucket_by_length
    seen = []
    for batch in loader:
        lengths = batch["attention_mask"].sum(dim=1)
        assert batch["input_ids"].shape[1] % 4 == 0
        assert batch["input_ids"].shape[1] - int(lengths.max()) < 4
        assert batch["input_ids"][batch["attention_mask"] == 0].eq(module.tokenizer.pad_token_id).all()
        seen.extend(batch["index"].tolist())
    assert sorted(seen) == sorted(module.datasets["train"].indices.tolist())
    assert len(seen) == 32
    assert not set(seen) & set(module.datasets["val"].indices.tolist())
