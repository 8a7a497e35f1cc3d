"""The demo data module: generates a synthetic labelled corpus (no external data) and uses it.

    python -m medtext fit --config configs/demo.yaml
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .abstracts import AbstractsDataModule
from .synthetic import CONDITIONS, generate_abstracts, write_csv


class SyntheticAbstractsDataModule(AbstractsDataModule):
    """Writes ``train.csv``, ``val.csv``, ``test.csv`` of generated abstracts into ``data_dir``
    unless they are there, then reads them. Other arguments as in :class:`AbstractsDataModule`.

    Args:
        data_dir: folder of the generated files (default: ``<cache_dir>/synthetic-<seed>-<sizes>``).
        num_train: training abstracts to generate.
        num_val: validation abstracts to generate.
        num_test: test abstracts to generate.
        seed: generator seed.
    """

    def __init__(self, data_dir: Optional[str] = None, num_train: int = 400, num_val: int = 100,
                 num_test: int = 100, seed: int = 0, max_length: int = 128,
                 label_map: Optional[dict[str, str]] = None, **kwargs):
        default_map = None if label_map or kwargs.get("labels_file") else {name: name for name in CONDITIONS}
        super().__init__(max_length=max_length, label_map=label_map or default_map, **kwargs)
        self.save_hyperparameters()
        self.folder = Path(data_dir or Path(self.cache_dir) / f"synthetic-{seed}-{num_train}-{num_val}-{num_test}")
        self.sizes, self.seed = (num_train, num_val, num_test), seed

    def resolve_files(self) -> dict[str, Optional[str]]:
        files: dict[str, Optional[str]] = {"predict": None}
        for offset, (split, size) in enumerate(zip(("train", "val", "test"), self.sizes)):
            path = self.folder / f"{split}.csv"
            if not path.is_file():
                write_csv(path, generate_abstracts(size, seed=self.seed * 1000 + offset))
            files[split] = str(path)
        return files
