"""Seeded stratified splits (data_modules/sampling.py): a partition that keeps class proportions."""

import numpy as np
import pytest

from data_modules.sampling import stratified_split

LABELS = np.array([0] * 100 + [1] * 50 + [2] * 10 + [3] * 2 + [4] * 1)
np.random.default_rng(0).shuffle(LABELS)


def test_stratified_split_is_a_partition():
    train, val = stratified_split(LABELS, 0.2, seed=1)
    assert len(np.intersect1d(train, val)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(LABELS)))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)


def test_stratified_split_keeps_class_proportions():
    train, val = stratified_split(LABELS, 0.2, seed=1)
    val_counts = np.bincount(LABELS[val], minlength=5).tolist()
    train_counts = np.bincount(LABELS[train], minlength=5).tolist()
    assert val_counts == [20, 10, 2, 1, 0]
    assert train_counts == [80, 40, 8, 1, 1]


def test_stratified_split_small_classes_keep_a_row_on_each_side():
    labels = np.array([0] * 40 + [1] * 2 + [2] * 3)
    train, val = stratified_split(labels, 0.05, seed=0)
    for cls in (0, 1, 2):
        assert (labels[val] == cls).sum() >= 1
        assert (labels[train] == cls).sum() >= 1


def test_stratified_split_is_seeded():
    first = stratified_split(LABELS, 0.2, seed=7)
    again = stratified_split(LABELS, 0.2, seed=7)
    other = stratified_split(LABELS, 0.2, seed=8)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])
    # the other seed still keeps the proportions
    assert np.bincount(LABELS[other[1]], minlength=5).tolist() == [20, 10, 2, 1, 0]


def test_stratified_split_multilabel_by_combination():
    combos = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    labels = np.repeat(combos, [40, 20, 10, 10], axis=0)
    train, val = stratified_split(labels, 0.25, seed=3)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(labels)
    for combo, total in zip(combos, [40, 20, 10, 10]):
        in_val = int(np.all(labels[val] == combo, axis=1).sum())
        assert abs(in_val - 0.25 * total) <= 1, (combo, in_val)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_stratified_split_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(LABELS, fraction, seed=0)
