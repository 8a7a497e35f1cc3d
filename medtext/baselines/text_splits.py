"""A task's splits as the baselines read them: texts, labels and row ids, never token ids.

TF-IDF reads words, and the embedding baselines tokenize with their own encoder and ``--baseline.max_length``,
so the data module's tokenization would be time spent (and a tokenizer loaded) for nothing, and its line
"N of M abstracts truncated to ..." would speak of a ``data.max_length`` no baseline uses. The files are
read and checked as the data module reads them; :class:`TestRows` serves the test split to ``trainer.test``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from data_modules.labels import warn_conflicting_duplicates, warn_empty_classes
from data_modules.readers import read_row_ids, read_table, read_texts
from data_modules.sampling import stratified_split
from medtext.core.errors import MedtextError


@dataclass
class TextSplit:
    """One split: every row of its file (``texts``, ``labels``, ``row_ids``) and the rows it holds
    (``indices``: a validation split carved from train is a subset of the train file's rows)."""

    texts: list[str]
    labels: np.ndarray
    row_ids: list
    indices: np.ndarray

    def part(self) -> tuple[list[str], np.ndarray]:
        return [self.texts[i] for i in self.indices], self.labels[self.indices]


def read_split(datamodule, name: str) -> TextSplit:
    """One split's file, read and checked as the data module's ``load_split`` reads it, without tokenizing."""
    path = datamodule.split_file(name)
    frame = read_table(path, datamodule.file_format)
    row_ids = read_row_ids(frame, path, datamodule.id_column)
    texts = read_texts(frame, path, datamodule.text_column, row_ids if datamodule.id_column else None)
    labels = datamodule.read_labels(frame, path)
    if name == "train":  # the warnings fit gives about the same file
        warn_conflicting_duplicates(texts, labels, path)
        warn_empty_classes(labels, datamodule.label_map, path)
    return TextSplit(texts, labels, row_ids, np.arange(len(texts)))


def read_splits(datamodule) -> dict[str, TextSplit]:
    """Train, validation and test; without a validation file, the validation rows ``fit`` carves from
    train (``val_fraction``, ``split_seed``), so a baseline chooses on the rows a fine-tuned run validates on."""
    for name in ("train", "test"):  # before reading anything: a missing file is one line, at once
        if not datamodule.split_file(name):
            raise MedtextError(f"the baseline needs data.{name}_file (or a recipe's data_dir holding one)")
    splits = {name: read_split(datamodule, name) for name in ("train", "val", "test") if datamodule.split_file(name)}
    if "val" not in splits:
        train = splits["train"]
        train_idx, val_idx = stratified_split(train.labels, datamodule.val_fraction, datamodule.split_seed)
        splits["train"], splits["val"] = replace(train, indices=train_idx), replace(train, indices=val_idx)
    return splits


class RowBatch:
    """Collates row positions into ``{"index", "labels"}``: all that ``StoredScores.test_step`` reads."""

    def __init__(self, labels: np.ndarray):
        self.labels = labels

    def __call__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        return {"index": torch.tensor(rows, dtype=torch.long), "labels": torch.as_tensor(self.labels[rows])}


class TestRows(pl.LightningDataModule):
    """The test split for ``trainer.test``: batches of row positions and labels, the row ids that
    ``test_predictions.csv`` names its rows by, and the task data module's settings as hyperparameters
    (so the run's hparams.yaml and W&B config list them as a fine-tuned run's do)."""

    __test__ = False  # not a pytest class, whatever its name

    def __init__(self, datamodule, test: TextSplit, batch_size: int = 256):
        super().__init__()
        self.save_hyperparameters(dict(datamodule.hparams_initial))
        self.id_column = datamodule.id_column
        self.test, self.batch_size = test, batch_size

    def row_ids(self, split: str) -> list:
        if split != "test":
            raise ValueError(f"TestRows holds the test split only, not {split!r}")
        return self.test.row_ids

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test.indices.tolist(), batch_size=self.batch_size, collate_fn=RowBatch(self.test.labels))
