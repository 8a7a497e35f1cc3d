"""Encoded datasets, dynamic padding, length bucketing and the training loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import write
from data_helpers import words
from data_modules import AbstractsDataModule
from data_modules.dataset import EncodedAbstracts, PadCollator
from data_modules.sampling import LengthSortedSampler, TrainingSampler
from data_modules.token_cache import TokenizedTexts


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


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_evaluation_sampler_visits_each_abstract_once_longest_first(world_size):
    lengths = np.random.default_rng(0).integers(1, 300, size=101)
    shards = [list(LengthSortedSampler(lengths, world_size, rank)) for rank in range(world_size)]
    assert sorted(i for shard in shards for i in shard) == list(range(101))
    for shard in shards:
        assert all(lengths[a] >= lengths[b] for a, b in zip(shard, shard[1:]))
