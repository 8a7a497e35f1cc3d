"""Dataset recipe for Hallmarks of Cancer (HoC; Baker et al. 2016), multi-label, 10 hallmarks.

Reads the split of Nguyen & Ji (2021) from ``data_dir``: ``hoc_train.csv``, ``hoc_val.csv`` and,
if present, ``hoc_test.csv`` (tab-separated despite the suffix; the abstract in the first column,
whose header is empty; one 0/1 column per hallmark), and ``labels.json`` (or ``hoc_labels.json``)
mapping each label column to ``"Name: description"``. The label columns are the keys of that file.

    python -m medtext fit --config configs/hoc/minilm_mlp.yaml --data.data_dir ../shared/data/hoc
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from medtext.errors import DataError

from .abstracts import AbstractsDataModule
from .labels import load_label_texts

SPLITS = {"train": "hoc_train.csv", "val": "hoc_val.csv", "test": "hoc_test.csv"}
LABEL_FILES = ("labels.json", "hoc_labels.json")


def find_labels_file(folder: Path) -> Path:
    for name in LABEL_FILES:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: expected {' or '.join(LABEL_FILES)} mapping label columns to 'Name: description'")


class HoCDataModule(AbstractsDataModule):
    """Hallmarks of Cancer from ``data_dir``; ``test_file`` (same format) overrides ``hoc_test.csv``.
    Other arguments as in :class:`AbstractsDataModule`."""

    def __init__(self, data_dir: str, test_file: Optional[str] = None, predict_file: Optional[str] = None, descriptions_file: Optional[str] = None,
                 tokenizer_name: str = "bert-base-uncased", max_length: int = 512, batch_size: int = 16,
                 eval_batch_size: Optional[int] = None, bucket_by_length: bool = False,
                 pad_to_multiple_of: Optional[int] = None, num_workers: int = 0, cache_dir: Optional[str] = None,
                 label_map: Optional[dict[str, str]] = None):
        folder = Path(data_dir)
        if not folder.is_dir():
            raise DataError(f"{folder}: data_dir not found; it should hold {', '.join(SPLITS.values())} and labels.json")
        labels_file = find_labels_file(folder)
        files = {split: str(folder / name) if (folder / name).is_file() else None for split, name in SPLITS.items()}
        files["test"] = test_file or files["test"]
        if files["train"] is None:
            raise DataError(f"{folder}: {SPLITS['train']} not found")
        super().__init__(train_file=files["train"], val_file=files["val"], test_file=files["test"],
                         predict_file=predict_file, text_column="", file_format="tsv",
                         label_columns=list(load_label_texts(labels_file)), labels_file=str(labels_file),
                         label_map=label_map, descriptions_file=descriptions_file, tokenizer_name=tokenizer_name,
                         max_length=max_length, batch_size=batch_size, eval_batch_size=eval_batch_size,
                         bucket_by_length=bucket_by_length, pad_to_multiple_of=pad_to_multiple_of,
                         num_workers=num_workers, cache_dir=cache_dir)
        self.save_hyperparameters()
