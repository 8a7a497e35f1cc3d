"""Dataset recipe for Hallmarks of Cancer (HoC; Baker et al. 2016), multi-label, 10 hallmarks, in the
split of Nguyen & Ji (2021), read from ``data_dir``.

    python -m medtext fit --config configs/hoc/minilm_mlp.yaml --data.data_dir ../shared/data/hoc
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from medtext.core.errors import DataError

from .abstracts import AbstractsDataModule
from .readers import load_label_texts

# tab-separated despite the suffix: the abstract in the first column, whose header is empty, then one
# 0/1 column per hallmark; hoc_test.csv is optional
SPLITS = {"train": "hoc_train.csv", "val": "hoc_val.csv", "test": "hoc_test.csv"}
LABEL_FILES = ("labels.json", "hoc_labels.json")


def find_labels_file(folder: Path) -> Path:
    """``labels.json`` (or ``hoc_labels.json``): ``{label column: "Name: description"}``; its keys are
    the default label columns."""
    for name in LABEL_FILES:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: expected {' or '.join(LABEL_FILES)} mapping label columns to 'Name: description'")


class HoCDataModule(AbstractsDataModule):
    """Hallmarks of Cancer (10 labels, multi-label). Other arguments as in :class:`AbstractsDataModule`.

    Files given explicitly (``test_file``: a held-out file in the same format) win over ``data_dir``'s.
    Without ``data_dir`` (predicting with a checkpoint elsewhere), the label columns are the keys of
    ``label_map``.

    Args:
        data_dir: folder with ``hoc_train.csv``, ``hoc_val.csv``, optional ``hoc_test.csv`` and
            ``labels.json``.
        text_column: the abstract's column (HoC's has an empty header).
        label_columns: the 0/1 label columns; default: the keys of ``labels.json``.
        labels_file: ``{label column: "Name: description"}``; default: ``data_dir``'s ``labels.json``.
    """

    def __init__(self, data_dir: Optional[str] = None, text_column: str = "",
                 label_columns: Optional[list[str]] = None, labels_file: Optional[str] = None, **kwargs):
        self.folder = Path(data_dir) if data_dir else None
        found = str(find_labels_file(self.folder)) if self.folder is not None and self.folder.is_dir() else None
        labels = labels_file or found
        columns = label_columns or (list(load_label_texts(labels)) if labels else list(kwargs.get("label_map") or []))
        if not columns:
            raise DataError(f"{data_dir}: data_dir not found; it should hold {', '.join(SPLITS.values())} "
                            "and labels.json")
        super().__init__(text_column=text_column, label_columns=columns, labels_file=labels, **kwargs)

    def resolve_files(self) -> dict[str, Optional[str]]:
        folder = self.folder
        if folder is None or not folder.is_dir():
            raise DataError(f"{folder}: data_dir not found; it should hold {', '.join(SPLITS.values())} and labels.json")
        files = {split: str(folder / name) if (folder / name).is_file() else None for split, name in SPLITS.items()}
        if files["train"] is None:
            raise DataError(f"{folder}: {SPLITS['train']} not found")
        return {**files, "predict": None}
