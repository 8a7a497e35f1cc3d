"""Dataset recipe for the Medical Abstracts corpus (Schopf et al., 2022; 5 patient-condition classes).

    python -m medtext fit --config configs/medical_abstracts/minilm_mlp.yaml \\
        --data.data_dir ../shared/data/medical_abstracts
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from medtext.core.errors import DataError

from .abstracts import AbstractsDataModule
from .token_cache import default_cache_dir
from .download import fetch

REPOSITORY = "https://raw.githubusercontent.com/sebischair/Medical-Abstracts-TC-Corpus"
COMMIT = "547596568102fe3ec008d94a486fd7f55876c433"
# sha256 of the files at COMMIT; None where not known in advance: the first download is recorded.
OFFICIAL_FILES = {
    "train": ("medical_tc_train.csv", None),
    "test": ("medical_tc_test.csv", None),
    "labels": ("medical_tc_labels.csv", "8a27ae03339c798103678efa8012f744a723ff71a80f2b2c1355ee249564adc5"),
}
PARTIAL_TRAIN = "medical_tc_train_partial.csv"


class MedicalAbstractsDataModule(AbstractsDataModule):
    """The Medical Abstracts corpus: ``condition_label`` (1..5) and ``medical_abstract`` columns.
    Other arguments as in :class:`AbstractsDataModule`.

    Files given explicitly (``test_file``: e.g. your own held-out split) win over ``data_dir``'s.
    ``descriptions_file``: the project ships ``configs/medical_abstracts/label_descriptions.json``.

    Args:
        data_dir: folder with the official CSV files; ``None`` downloads them.
        use_test_file: use ``medical_tc_test.csv`` as the test split when present.
        text_column: the abstract's column.
        label_column: the label's column (1..5).
    """

    def __init__(self, data_dir: Optional[str] = None, use_test_file: bool = True,
                 text_column: str = "medical_abstract", label_column: str = "condition_label", **kwargs):
        super().__init__(text_column=text_column, label_column=label_column, **kwargs)
        self.data_dir = data_dir
        self.use_test_file = use_test_file
        self._resolved: Optional[dict] = None

    def resolve_files(self) -> dict[str, Optional[str]]:
        """``data_dir``'s official files (``medical_tc_train.csv``, else the partial
        ``medical_tc_train_partial.csv``; optional ``medical_tc_test.csv``; ``medical_tc_labels.csv``);
        without ``data_dir``, downloaded ones."""
        if self._resolved is None:
            folder = Path(self.data_dir) if self.data_dir else self._download()
            if not folder.is_dir():
                raise DataError(f"{folder}: data_dir not found")
            train = next((folder / n for n in (OFFICIAL_FILES["train"][0], PARTIAL_TRAIN)
                          if (folder / n).is_file()), None)
            labels = folder / OFFICIAL_FILES["labels"][0]
            if train is None or not labels.is_file():
                raise DataError(f"{folder}: expected {OFFICIAL_FILES['train'][0]} (or {PARTIAL_TRAIN}) and "
                                f"{OFFICIAL_FILES['labels'][0]} from {REPOSITORY.replace('raw.githubusercontent', 'github')}")
            test = folder / OFFICIAL_FILES["test"][0]
            if self.files["test"] is None and self.use_test_file and test.is_file():
                self.files["test"] = str(test)
            self.labels.labels_file = self.labels.labels_file or str(labels)
            self._resolved = {"train": str(train), "val": None, "test": self.files["test"],
                              "predict": self.files["predict"]}
        return self._resolved

    def split_file(self, split: str) -> Optional[str]:
        """As :class:`AbstractsDataModule`'s; ``data_dir``'s labels file names the classes also when the
        split's file is given (``--data.train_file fold.csv``: classes by name, not ``1``..``5``)."""
        labels = Path(self.data_dir) / OFFICIAL_FILES["labels"][0] if self.data_dir else None
        if labels is not None and not self.labels.labels_file and labels.is_file():
            self.labels.labels_file = str(labels)
        return super().split_file(split)

    def _download(self) -> Path:
        """Fetch the official files from the corpus's GitHub repository, at a pinned commit, into
        ``<cache_dir>/medical_abstracts``."""
        folder = Path(self.cache_dir or default_cache_dir()) / "medical_abstracts"
        try:
            for name, sha256 in OFFICIAL_FILES.values():
                fetch(f"{REPOSITORY}/{COMMIT}/{name}", folder / name, sha256)
        except DataError as err:
            names = ", ".join(name for name, _ in OFFICIAL_FILES.values())
            raise DataError(f"the Medical Abstracts files could not be downloaded ({err}); place {names} "
                            f"in a folder and pass it as --data.data_dir (or put them in {folder})") from None
        return folder
