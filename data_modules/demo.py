"""The demo data module: generates a synthetic labelled corpus (no external data) and uses it.

    python -m medtext fit --config configs/demo.yaml
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .abstracts import AbstractsDataModule, default_cache_dir
from .synthetic import CONDITIONS, generate_abstracts, write_csv


class SyntheticAbstractsDataModule(AbstractsDataModule):
    """Writes ``train.csv``, ``val.csv``, ``test.csv`` of generated abstracts into ``data_dir``
    (default ``<cache_dir>/synthetic-<seed>``) unless they are there, then reads them.

    Args:
        num_train, num_val, num_test: rows per split. seed: generator seed.
        Other arguments as in :class:`AbstractsDataModule`.
    """

    def __init__(self, data_dir: Optional[str] = None, num_train: int = 400, num_val: int = 100,
                 num_test: int = 100, seed: int = 0, predict_file: Optional[str] = None,
                 tokenizer_name: str = "bert-base-uncased", max_length: int = 128, batch_size: int = 16,
                 eval_batch_size: Optional[int] = None, bucket_by_length: bool = False,
                 num_workers: int = 0, cache_dir: Optional[str] = None,
                 label_map: Optional[dict[str, str]] = None):
        folder = Path(data_dir or Path(cache_dir or default_cache_dir())
                      / f"synthetic-{seed}-{num_train}-{num_val}-{num_test}")
        files = {split: str(folder / f"{split}.csv") for split in ("train", "val", "test")}
        super().__init__(train_file=files["train"], val_file=files["val"], test_file=files["test"],
                         predict_file=predict_file, label_map=label_map or {n: n for n in CONDITIONS},
                         tokenizer_name=tokenizer_name, max_length=max_length, batch_size=batch_size,
                         eval_batch_size=eval_batch_size, bucket_by_length=bucket_by_length,
                         num_workers=num_workers, cache_dir=cache_dir)
        self.save_hyperparameters()
        self.folder, self.sizes, self.seed = folder, (num_train, num_val, num_test), seed

    def resolve_files(self) -> dict[str, Optional[str]]:
        for offset, (split, size) in enumerate(zip(("train", "val", "test"), self.sizes)):
            path = Path(self.files[split])
            if not path.is_file():
                write_csv(path, generate_abstracts(size, seed=self.seed * 1000 + offset))
        return self.files
